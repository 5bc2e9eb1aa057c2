"""``squeeze-studio``: open the window; files given on the command line become references.

Start-up order matters (see ``AppStart``): the window is on screen with little more than Qt loaded;
the rest of the window follows right after its first paint, and only then does the worker thread
start loading the engine (and with it torch).

Before Qt starts, ``startup_check`` makes sure a window can open here (else one message and exit 2); a start
while the app is already open hands its files to that window and exits (``single_instance``). Also:
``--self-test``, ``--install-desktop-entry``, ``--uninstall-desktop-entry``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from .ui.main_window import MainWindow

if TYPE_CHECKING:
    from .single_instance import SingleInstance
    from .worker import EngineFactory

# One clean name: Qt's per-app folders (QStandardPaths' AppDataLocation, CacheLocation, …) become
# ".../squeeze-studio" with no organisation level. Up to 0.1.0 the organisation was "squeeze-studio" and the
# application "Squeeze Studio", which gave "~/.local/share/squeeze-studio/Squeeze Studio" (moved on first use,
# see persistence.paths).
APP_NAME = "squeeze-studio"
ORGANIZATION = ""
DISPLAY_NAME = "Squeeze Studio"
PRELOAD_FALLBACK_MS = 1000  # the model loads after the complete window's first paint, or after this at the latest
DESKTOP_FILE_NAME = "squeeze-studio"  # desktop.APP_ID: the .desktop file, so Wayland shows the icon


def parse_args(arguments: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="squeeze-studio", description="Subject-driven image generation.")
    parser.add_argument("references", nargs="*", help="images or folders to use as references")
    parser.add_argument("--self-test", action="store_true",
                        help="load the demo model without a window, generate one image, check it, print one line")
    parser.add_argument("--install-desktop-entry", action="store_true",
                        help="add Squeeze Studio to the desktop's application menu and 'Open with' (this user)")
    parser.add_argument("--uninstall-desktop-entry", action="store_true",
                        help="remove the menu entry and icons --install-desktop-entry wrote")
    return parser.parse_args(arguments)


def configure_application(app: QApplication) -> None:
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationDisplayName(DISPLAY_NAME)
    app.setDesktopFileName(DESKTOP_FILE_NAME)
    app.setWindowIcon(application_icon())


def application_icon():
    """The project's icon at every shipped size (files are read when a size is first drawn)."""
    from PySide6.QtGui import QIcon

    from .desktop import icon_files

    icon = QIcon()
    for size, path in sorted(icon_files().items()):
        if size:
            icon.addFile(str(path))
    return icon


def create_window(engine_factory: EngineFactory | None = None) -> MainWindow:
    """The complete window, built at once, without starting the model load."""
    return MainWindow(engine_factory=engine_factory)


def add_references(window: MainWindow, paths: list[str]) -> None:
    """Command-line files become references, in a subject of their own if the restored one has images."""
    subjects = window.studio.subjects
    if subjects.current.images:
        subjects.add_subject("From command line")
    window.studio.inputs.drop_paths(paths, allow_recipe=False)


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

    def __init__(self, app: QApplication, references: list[str] | None = None,
                 instance: SingleInstance | None = None):
        self.app, self.references, self.loop = app, references or [], None
        self._preloaded = False
        self.window = MainWindow(build=False)
        self.window.wait_for_load_on_close = False  # Quit during a model load ends the process at once
        self.window.first_painted.connect(self._after_first_paint)
        self.instance = instance
        self._handed: list[list[str]] = []  # files a later start handed over before the window was built
        if instance is not None:
            instance.files_received.connect(self._files_handed_over)
        sys.excepthook = self._report_unexpected

    def _files_handed_over(self, files: list[str]) -> None:
        if self.window.studio is None:
            self._handed.append(files)
        else:
            self.window.open_files(files)

    def _report_unexpected(self, kind, error, trace) -> None:
        """A bug in a slot: the traceback goes to the log, the user gets one line, the work stays."""
        logging.getLogger("squeeze_studio.app").error("unexpected error", exc_info=(kind, error, trace))
        text = str(error).strip().splitlines()
        self.window.show_message(f"Unexpected error: {text[0] if text else kind.__name__} (details in the log)")

    def _after_first_paint(self) -> None:
        self.loop = install_asyncio_loop(self.app)
        self.window.build()
        if self.window.studio is None:
            return  # the window says why it could not be built (``build_failure``); Quit still works
        self.window.first_start(load_sample=not self.references)
        # The model loads once the complete window is on screen: the worker's torch import holds the GIL for
        # long stretches, and started here it doubled the time to the complete first paint (docs/performance.md).
        # A window that is never painted (started minimized) loads it after a second all the same.
        self.window.complete_painted.connect(self._preload_model)
        QTimer.singleShot(PRELOAD_FALLBACK_MS, self._preload_model)
        if self.references:
            add_references(self.window, self.references)
        for files in self._handed:
            self.window.open_files(files)
        self._handed.clear()

    def _preload_model(self) -> None:
        if not self._preloaded and self.window.studio is not None:
            self._preloaded = True
            self.window.studio.models.preload_model()

    def run(self) -> int:
        self.window.show()
        code = self.app.exec()
        if self.instance is not None:
            self.instance.close()
        if self.loop is not None:
            close_asyncio_loop(self.loop)
        if not self.window.worker_joined:
            self._end_during_load(int(code or 0))
        return int(code or 0)

    @staticmethod
    def _end_during_load(code: int) -> None:
        """Quit while a model was loading: the session is saved and the history closed, only the load (which
        cannot be interrupted, and writes nothing the user made) is still running. Ending the process now is clean;
        letting Python finalise under a running QThread would abort."""
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raw = sys.argv[1:] if argv is None else list(argv)
    options = {"--self-test", "--install-desktop-entry", "--uninstall-desktop-entry"}
    if options & set(raw):  # commands that need no window (and no display)
        known, _qt_options = parse_args_known(raw)
        if known.self_test:
            from .self_test import run_self_test

            return run_self_test(configure_application)
        from .desktop import main_install

        return main_install(uninstall=known.uninstall_desktop_entry)
    from .persistence.paths import data_folder_problem

    problem = data_folder_problem()
    if problem:  # e.g. a file where the data folder should be: one line naming it, not a traceback
        print(problem, file=sys.stderr)
        return 2
    from .file_names import qt_safe_arguments, restore_arguments

    # Qt crashes on an argument that is not UTF-8 (a file name is bytes): it gets a placeholder, put back below.
    safe, originals = qt_safe_arguments(raw)
    app = QApplication.instance()
    if app is None:
        from .startup_check import exit_if_no_window

        exit_if_no_window(safe)  # one message and exit 2 instead of Qt's abort
        app = QApplication([sys.argv[0], *safe])
    configure_application(app)
    # From Qt's copy of sys.argv, which no longer holds Qt's own options (-platform, -style, …).
    args = parse_args(restore_arguments(app.arguments()[1:], originals) if argv is None else argv)
    from .single_instance import SingleInstance, default_name

    instance = SingleInstance(default_name())
    if instance.hand_over(args.references):
        return 0  # the window already open took the files and came to the front
    if not instance.listen() and instance.hand_over(args.references):
        return 0  # one started at the same moment as this one
    return AppStart(app, args.references, instance).run()


def parse_args_known(arguments: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``parse_args`` that leaves Qt's own options (``-platform xcb``) alone, for the commands run before Qt."""
    parser = argparse.ArgumentParser(prog="squeeze-studio", add_help=False)
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--install-desktop-entry", action="store_true")
    parser.add_argument("--uninstall-desktop-entry", action="store_true")
    return parser.parse_known_args(arguments)


if __name__ == "__main__":
    sys.exit(main())
