"""The job queue on disk: ``queue.json`` in the data folder, replaced whole (written, synced, renamed over) on
every change by one writer thread, a millisecond or so after the change. Off the GUI thread because a write can
wait on a busy disk for over 100 ms (measured with ``benchmarks/bench_queue.py``), and a job is queued per
keypress. An unreadable file is moved aside, never deleted.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .paths import data_home, set_aside_name

QUEUE_VERSION = 1
log = logging.getLogger(__name__)
_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-writer")
_lock = threading.Lock()
_latest: dict[Path, str] = {}  # the newest text not yet written, per file


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


def save_queue(paused: bool, jobs: list[str], path: Path | None = None) -> None:
    """Have the file replaced with ``jobs`` (each already a JSON object's text) by the writer thread: changes made
    while it writes are coalesced, the latest wins, in order."""
    path = path or queue_path()
    text = f'{{"version": {QUEUE_VERSION}, "paused": {json.dumps(paused)}, "jobs": [{", ".join(jobs)}]}}'
    with _lock:
        idle = path not in _latest
        _latest[path] = text
    if idle:
        _writer.submit(_write, path)


def flush() -> None:
    """Until every change saved so far is on disk (at quit, and for tests)."""
    _writer.submit(lambda: None).result()


def _write(path: Path) -> None:
    with _lock:
        text = _latest.pop(path)
    tmp = path.with_name(path.name + ".tmp")  # one fixed name: a write cut short leaves nothing that piles up
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:  # a full disk must not take the window down; the queue still runs
        log.warning("the job queue could not be saved to %s: %s", path, error)
