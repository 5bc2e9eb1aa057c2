"""One short piece of blocking work (verify a model, list the cache, download, delete) in a ``QThread``.

The work gets the task itself, so it can report ``progress`` and read ``cancel``; ``done`` carries its
return value, ``failed`` the exception, both queued to the GUI thread. The engine worker is not used for
this: it may be busy generating, and these jobs must not wait behind it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

log = logging.getLogger(__name__)
REPORT_INTERVAL_S = 0.1  # a download reports every 64 kB chunk; the window needs ten updates a second at most


class ThreadTask(QThread):
    """Public signals are emitted on the GUI thread, so any callable (a lambda too) may take them."""

    done = Signal(object)              # the work's return value
    failed = Signal(object)            # the exception it raised
    progress = Signal(object, object)  # whatever the work reports, e.g. (done bytes, total bytes)
    _done = Signal(object)             # the same, emitted in the task's thread and relayed (queued) from there
    _failed = Signal(object)
    _progress = Signal(object, object)

    def __init__(self, work: Callable[[ThreadTask], Any], parent: QObject | None = None):
        super().__init__(parent)
        self._work = work
        self.cancel = threading.Event()
        self._last_report = float("-inf")
        self._report_lock = threading.Lock()
        # Bound methods of this object (which lives in the GUI thread): queued across threads.
        self._done.connect(self._relay_done)
        self._failed.connect(self._relay_failed)
        self._progress.connect(self._relay_progress)
        self.finished.connect(self.deleteLater)

    def report(self, first: Any, second: Any) -> None:
        """Called by the work, from any thread (e.g. as a download's ``progress(done, total)``); at most one
        report per ``REPORT_INTERVAL_S`` goes on to the GUI thread."""
        now = time.monotonic()
        with self._report_lock:
            if now - self._last_report < REPORT_INTERVAL_S:
                return
            self._last_report = now
        self._progress.emit(first, second)

    def run(self) -> None:
        try:
            result = self._work(self)
        except Exception as error:  # noqa: BLE001 - handed to the GUI thread as one line
            log.info("background task failed: %s", error)
            self._failed.emit(error)
        else:
            self._done.emit(result)

    def _relay_done(self, result: Any) -> None:
        self.done.emit(result)

    def _relay_failed(self, error: Any) -> None:
        self.failed.emit(error)

    def _relay_progress(self, first: Any, second: Any) -> None:
        self.progress.emit(first, second)

    def stop(self) -> None:
        """Ask the work to stop (it polls ``cancel``) and wait for the thread to end."""
        self.cancel.set()
        self.wait()
