"""Image helpers shared by the window and the worker: PIL <-> QImage, file checks, folder scans.

QImage (unlike QPixmap) may be made in any thread, so the worker converts previews and results
here and the GUI thread only turns them into pixmaps.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from .file_names import qt_can_name

if TYPE_CHECKING:  # PIL is only needed by the worker, which imports it itself
    from PIL import Image

THUMBNAIL_SIZE = 128


def pil_to_qimage(image: Image.Image) -> QImage:
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    data = rgb.tobytes()
    qimage = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return qimage.copy()  # detach from ``data``, which Python frees when this returns


def qimage_to_png_bytes(image: QImage) -> bytes:
    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(array.data())


def thumbnail(image: QImage, size: int = THUMBNAIL_SIZE) -> QImage:
    return image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)


def image_reader(path: str | Path) -> QImageReader:
    """A reader for ``path``; a name Qt cannot spell (not UTF-8) is read by Python and given to Qt as bytes."""
    if qt_can_name(path):
        return QImageReader(str(path))
    buffer = QBuffer()
    buffer.setData(QByteArray(Path(path).read_bytes()))
    buffer.open(QIODevice.OpenModeFlag.ReadOnly)
    reader = QImageReader(buffer)
    reader._buffer = buffer  # the reader does not own its device: keep it alive as long as the reader
    return reader


def is_image_file(path: str | Path) -> bool:
    """True when Qt can decode the file; decided from its content, not its extension."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return image_reader(path).canRead()
    except OSError:
        return False


def image_size(path: str | Path) -> tuple[int, int]:
    """Width and height from the file's header, without decoding it ((0, 0) when unknown)."""
    try:
        size = image_reader(path).size()
    except OSError:
        return 0, 0
    return (size.width(), size.height()) if size.isValid() else (0, 0)


def images_in_folder(folder: str | Path) -> list[str]:
    """The decodable images directly inside ``folder``, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    found = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name.lower()):
        if not child.name.startswith(".") and is_image_file(child):
            found.append(str(child))
    return found


def load_thumbnail(path: str | Path, size: int = THUMBNAIL_SIZE) -> QImage:
    """A small QImage of the file; decoding at reduced size where the format allows (JPEG)."""
    reader = image_reader(path)
    reader.setAutoTransform(True)  # respect EXIF rotation of phone photos
    original = reader.size()
    if original.isValid() and max(original.width(), original.height()) > size:
        reader.setScaledSize(original.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return image
