"""Reading reference images, with one-line errors for anything that is not a readable image."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def load_reference(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` as RGB, upright per its EXIF orientation; ``ValueError`` if unreadable."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"reference is a folder, not an image: {path}")
    if not path.exists():
        raise ValueError(f"reference not found: {path}")
    if not path.is_file():
        raise ValueError(f"reference is not a regular file (a device or a pipe?): {path}")
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"cannot read reference image {path}: {reason}") from None


def load_references(paths) -> list[Image.Image]:
    return [load_reference(p) for p in paths]
