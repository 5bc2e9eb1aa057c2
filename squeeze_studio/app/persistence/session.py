"""Session autosave: references, instruction and controls (with the device and memory mode the engine runs with),
written on every change and restored at start. A field an older session lacks keeps its default.

The file is rewritten atomically a moment after each change (debounced), so a crash loses at most
the last fraction of a second and never leaves a torn file. An unreadable file is moved aside, not
deleted, so nothing the user made is lost.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from .paths import atomic_write_bytes, data_home, set_aside_name

SESSION_VERSION = 1
AUTOSAVE_DELAY_MS = 300
log = logging.getLogger(__name__)


def session_path() -> Path:
    return data_home() / "session.json"


def load_session(path: Path | None = None) -> tuple[dict[str, Any] | None, str]:
    """The saved session dict (or None) and a one-line message when the file could not be used."""
    path = path or session_path()
    if not path.exists():
        return None, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != SESSION_VERSION:
            raise ValueError("unknown session format")
        return data, ""
    except (OSError, ValueError) as error:
        aside = set_aside_name(path, "unreadable")
        try:
            path.replace(aside)
        except OSError as move_error:
            log.warning("could not keep %s aside: %s", path, move_error)
            return None, f"Last session could not be read ({path}); it was left where it is"
        log.warning("session file %s unreadable: %s", path, error)
        return None, f"Last session could not be read; it was kept as {aside.name}"


def save_session(data: dict[str, Any], path: Path | None = None) -> None:
    payload = {"version": SESSION_VERSION, **data}
    atomic_write_bytes(path or session_path(), json.dumps(payload, indent=1).encode("utf-8"))


class SessionAutosaver(QObject):
    """Calls ``snapshot()`` and writes it, at most once per ``delay_ms`` after the last change."""

    def __init__(self, snapshot, path: Path | None = None, delay_ms: int = AUTOSAVE_DELAY_MS, parent=None):
        super().__init__(parent)
        self._snapshot = snapshot
        self._path = path or session_path()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.save_now)
        self.saves = 0  # tests wait on this instead of sleeping

    def schedule(self, *_args) -> None:
        self._timer.start()

    def save_now(self) -> None:
        self._timer.stop()
        try:
            save_session(self._snapshot(), self._path)
            self.saves += 1
        except OSError as error:  # a full disk must not take the window down
            log.warning("autosave failed: %s", error)
