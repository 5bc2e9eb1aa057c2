"""Subject libraries: a subject saved as a folder of its images plus ``subject.json``, reopened later.

The images are copied in, so a library keeps working after the originals move or are deleted. A library whose
images were later deleted from its folder still opens, with the missing ones listed in ``Library.missing``; a
manifest entry that is not a plain file name inside the library's folder counts as missing (never followed).
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .paths import atomic_write_bytes, libraries_dir

MANIFEST = "subject.json"


@dataclass
class Library:
    name: str
    folder: Path
    images: list[str]  # the images present, in the saved order
    missing: list[str] = field(default_factory=list)  # manifest entries whose file is gone (or not usable)

    def label(self) -> str:
        """``name (3 images)``, or ``name (2 images, 1 missing)``: what a menu shows."""
        count = f"{len(self.images)} image" + ("" if len(self.images) == 1 else "s")
        return f"{self.name} ({count}, {len(self.missing)} missing)" if self.missing else f"{self.name} ({count})"


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
    """The library in ``folder``, with the images its manifest lists that are gone in ``missing``; ``None`` when
    ``folder`` holds no readable manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        name, entries = manifest["name"], manifest["images"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(entries, list):
        return None
    images, missing = [], []
    for entry in entries:
        usable = isinstance(entry, str) and "\x00" not in entry and entry not in ("", ".", "..") \
            and Path(entry).name == entry  # a plain name: nothing outside the library's folder
        if usable and (folder / entry).is_file():
            images.append(str(folder / entry))
        else:
            missing.append(str(entry))
    return Library(str(name), folder, images, missing)
