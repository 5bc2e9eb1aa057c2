"""The job queue on disk: ``queue.json`` in the data folder, rewritten atomically (and synced) on every change, so
a crash or kill -9 loses no queued job. An unreadable file is moved aside, never deleted."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .paths import atomic_write_bytes, data_home, set_aside_name

QUEUE_VERSION = 1
log = logging.getLogger(__name__)


def queue_path() -> Path:
    return data_home() / "queue.json"


def load_queue(path: Path | None = None) -> tuple[dict[str, Any] | None, str]:
    """The saved queue (``{"paused": bool, "jobs": [...]}``, or None) and one line when it could not be used."""
    path = path or queue_path()
    if not path.exists():
        return None, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != QUEUE_VERSION or not isinstance(data.get("jobs"), list):
            raise ValueError("unknown queue format")
        return data, ""
    except (OSError, ValueError) as error:
        log.warning("queue file %s unreadable: %s", path, error)
        aside = set_aside_name(path, "unreadable")
        try:
            path.replace(aside)
        except OSError:
            return None, f"The job queue could not be read ({path}); it was left where it is"
        return None, f"The job queue could not be read; it was kept as {aside.name}"


def save_queue(data: dict[str, Any], path: Path | None = None) -> None:
    atomic_write_bytes(path or queue_path(), json.dumps({"version": QUEUE_VERSION, **data}).encode("utf-8"))
