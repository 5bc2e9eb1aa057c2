"""``squeeze-studio``: open the window; files given on the command line become references.

Start-up order matters (see ``AppStart``): the window is on screen with little more than Qt loaded;
the rest of the window follows right after its first paint, and only then does the worker thread
start loading the engine (and with it torch).
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication

from .ui.main_window import MainWindow

if TYPE_CHECKING:
    from .worker import EngineFactory

APP_NAME = "Squeeze Studio"
ORGANIZATION = "squeeze-studio"


def parse_args(arguments: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="squeeze-studio", description="Subject-driven image generation.")
    parser.add_argument("references", nargs="*", help="images or folders to use as references")
    return parser.parse_args(arguments)


def configure_application(app: QApplication) -> None:
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationDisplayName(APP_NAME)


def create_window(engine_factory: EngineFactory | None = None) -> MainWindow:
    """The complete window, built at once, without starting the model load."""
    return MainWindow(engine_factory=engine_factory)


def add_references(window: MainWindow, paths: list[str]) -> None:
    """Command-line files become references, in a subject of their own if the restored one has images."""
    subjects = window.studio.subjects
    if subjects.current.images:
        subjects.add_subject("From command line")
    window.studio.drop_paths(paths, allow_recipe=False)


def install_asyncio_loop(app: QApplication):
    """qasync's asyncio loop on top of Qt's already running one, for file I/O that must not block the
    window (folder scans, image decoding; see ``background_io``). Imported only now, after the first
    paint: asyncio and qasync would otherwise add a noticeable share to the time to a visible window."""
    import asyncio

    import qasync

    loop = qasync.QEventLoop(app, already_running=True)
    asyncio.set_event_loop(loop)
    return loop


def close_asyncio_loop(loop) -> None:
    import asyncio

    loop.stop()
    loop.close()
    asyncio.events._set_running_loop(None)  # qasync set it for the "already running" Qt loop


class AppStart:
    """What ``main()`` does, in order (the start-up benchmark runs exactly this).

    1. show the window shell (a bare ``QMainWindow`` plus the saved geometry);
    2. after its first paint: the asyncio loop, then the workspace (session, history, widgets);
    3. then the engine starts loading in the worker thread, and command-line references are taken in.
    """

    def __init__(self, app: QApplication, references: list[str] | None = None):
        self.app, self.references, self.loop = app, references or [], None
        self.window = MainWindow(build=False)
        self.window.first_painted.connect(self._after_first_paint)
        sys.excepthook = self._report_unexpected

    def _report_unexpected(self, kind, error, trace) -> None:
        """A bug in a slot: the traceback goes to the log, the user gets one line, the work stays."""
        logging.getLogger("squeeze_studio.app").error("unexpected error", exc_info=(kind, error, trace))
        text = str(error).strip().splitlines()
        self.window.show_message(f"Unexpected error: {text[0] if text else kind.__name__} (details in the log)")

    def _after_first_paint(self) -> None:
        self.loop = install_asyncio_loop(self.app)
        self.window.build()
        self.window.studio.preload_model()
        if self.references:
            add_references(self.window, self.references)

    def run(self) -> int:
        self.window.show()
        code = self.app.exec()
        if self.loop is not None:
            close_asyncio_loop(self.loop)
        return int(code or 0)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication(sys.argv if argv is None else [sys.argv[0], *argv])
    configure_application(app)
    # From Qt's copy of sys.argv, which no longer holds Qt's own options (-platform, -style, …).
    args = parse_args(app.arguments()[1:] if argv is None else argv)
    return AppStart(app, args.references).run()


if __name__ == "__main__":
    sys.exit(main())
