"""The user data folder and an atomic file write that every store here shares."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QStandardPaths

HOME_ENV = "SQUEEZE_STUDIO_HOME"


def data_home() -> Path:
    """``$SQUEEZE_STUDIO_HOME`` if set (tests point it at a tmp dir), else Qt's AppDataLocation."""
    override = os.environ.get(HOME_ENV)
    if override:
        home = Path(override).expanduser()
    else:
        location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        home = Path(location) if location else Path.home() / ".squeeze-studio"
    home.mkdir(parents=True, exist_ok=True)
    return home


def results_dir() -> Path:
    return data_home() / "results"


def libraries_dir() -> Path:
    return data_home() / "libraries"


def pasted_dir() -> Path:
    """Clipboard images are written here so a reference is always a file (recipes store paths)."""
    return data_home() / "pasted"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
