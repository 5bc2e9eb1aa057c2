"""Subject libraries: a subject saved as a folder of its images plus ``subject.json``, reopened later.

The images are copied in, so a library keeps working after the originals move or are deleted.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .paths import atomic_write_bytes, libraries_dir

MANIFEST = "subject.json"


@dataclass
class Library:
    name: str
    folder: Path
    images: list[str]


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return slug or "subject"


def save_library(name: str, images: list[str], root: Path | None = None) -> Library:
    """Copy ``images`` into ``root/<slug(name)>/``, replacing an older library of that name.

    The copy goes to a staging folder that is swapped in at the end, so re-saving a library from
    its own images (reordered, some removed) never overwrites a file it still has to read.
    """
    folder = (root or libraries_dir()) / _slug(name)
    staging = folder.with_name(folder.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    copied: list[str] = []
    for index, source in enumerate(images):
        base = re.sub(r"^\d{3}-", "", Path(source).name)  # drop the order prefix of an earlier save
        copied.append(f"{index:03d}-{base}")
        shutil.copy2(source, staging / copied[-1])
    manifest = {"name": name, "images": copied}
    atomic_write_bytes(staging / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return Library(name, folder, [str(folder / image) for image in copied])


def list_libraries(root: Path | None = None) -> list[Library]:
    root = root or libraries_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.suffix in (".saving", ".old"):
            continue
        library = open_library(folder)
        if library is not None:
            found.append(library)
    return found


def open_library(folder: Path) -> Library | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        images = [str(folder / name) for name in manifest["images"] if (folder / name).exists()]
        return Library(str(manifest["name"]), folder, images)
    except (OSError, ValueError, KeyError, TypeError):
        return None
