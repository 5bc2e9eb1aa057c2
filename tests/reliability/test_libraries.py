"""Subject libraries whose files went missing still open, with the missing ones marked; a manifest naming paths
outside its folder never reaches them."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from squeeze_studio.app.persistence.libraries import MANIFEST, list_libraries, open_library, save_library


def saved(tmp_path, count=3):
    tmp_path.mkdir(parents=True, exist_ok=True)
    sources = []
    for i in range(count):
        path = tmp_path / f"src{i}.png"
        Image.new("RGB", (8, 8), (i * 60, 0, 0)).save(path)
        sources.append(str(path))
    return save_library("My toy", sources, root=tmp_path / "libraries")


def test_a_library_with_missing_files_loads_with_them_marked(tmp_path):
    library = saved(tmp_path)
    (library.folder / "001-src1.png").unlink()
    [found] = list_libraries(tmp_path / "libraries")
    assert [Path(p).name for p in found.images] == ["000-src0.png", "002-src2.png"]  # order kept
    assert found.missing == ["001-src1.png"]
    assert found.label() == "My toy (2 images, 1 missing)"
    assert saved(tmp_path / "again").label() == "My toy (3 images)"


def test_a_library_with_every_file_gone_still_lists_them(tmp_path):
    library = saved(tmp_path, count=2)
    for image in library.images:
        Path(image).unlink()
    found = open_library(library.folder)
    assert found.images == [] and found.missing == ["000-src0.png", "001-src1.png"]
    assert found.label() == "My toy (0 images, 2 missing)"


def test_manifest_entries_outside_the_folder_are_never_followed(tmp_path):
    library = saved(tmp_path, count=1)
    secret = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(secret)
    hostile = ["000-src0.png", "../secret.png", str(secret), "", "..", 7, None, "sub/000-src0.png"]
    (library.folder / MANIFEST).write_text(json.dumps({"name": "My toy", "images": hostile}))
    found = open_library(library.folder)
    assert found.images == [str(library.folder / "000-src0.png")]
    assert found.missing == ["../secret.png", str(secret), "", "..", "7", "None", "sub/000-src0.png"]


def test_unreadable_manifests_are_skipped_not_fatal(tmp_path):
    root = tmp_path / "libraries"
    good = saved(tmp_path)
    for name, text in [("broken", "{not json"), ("wrong-type", '{"name": "x", "images": "000-a.png"}'),
                       ("a-list", "[1, 2]")]:
        (root / name).mkdir()
        (root / name / MANIFEST).write_text(text)
    (root / "stray-file.txt").write_text("not a library")
    assert [lib.name for lib in list_libraries(root)] == [good.name]
