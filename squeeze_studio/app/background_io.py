"""Run blocking file I/O off the GUI thread when a qasync loop is running, inline otherwise.

``main()`` installs qasync's ``QEventLoop``, so in the app folder scans and image decoding go to a
worker thread and their result comes back on the GUI thread. Widgets and tests that run without
that loop get the same call done synchronously, which keeps them simple and deterministic.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def run_io(work: Callable[..., Any], *args: Any, on_done: Callable[[Any], None],
           on_error: Callable[[BaseException], None] | None = None) -> None:
    """Call ``work(*args)`` and hand its return value to ``on_done`` on the GUI thread."""

    def report(error: BaseException) -> None:
        if on_error is not None:
            on_error(error)
        else:
            log.warning("background I/O failed: %s", error)

    # asyncio is imported by main() only after the window is on screen; until then no loop can run.
    asyncio = sys.modules.get("asyncio")
    try:
        loop = asyncio.get_running_loop() if asyncio is not None else None
    except RuntimeError:
        loop = None
    if loop is None:
        try:
            result = work(*args)
        except Exception as error:  # noqa: BLE001 - reported as a one-line message, never raised
            report(error)
            return
        on_done(result)
        return

    future = loop.run_in_executor(None, work, *args)

    def finished(done) -> None:
        try:
            result = done.result()
        except Exception as error:  # noqa: BLE001
            report(error)
            return
        on_done(result)  # an exception here is logged by the loop's handler, never shown as a dialog

    future.add_done_callback(finished)
