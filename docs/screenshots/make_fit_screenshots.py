"""Screenshots of a first start on a small screen: the whole X screen, so anything off-screen or clipped shows.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python docs/screenshots/make_fit_screenshots.py first-run
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/screenshots/make_fit_screenshots.py fit-1366x768
    QT_SCALE_FACTOR=2 xvfb-run -a -s "-screen 0 2560x1440x24" \
        .venv/bin/python docs/screenshots/make_fit_screenshots.py fit-2560x1440-scale2

Writes ``NAME-first-start.png`` (a fresh data folder: the sample subject, its instruction, the welcome panel) and
``NAME-result.png`` (after one generation with the built-in demo model) next to this file. There is no window
manager under Xvfb, so there is no title bar: the window's first size leaves room for one.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from make_screenshots import wait  # noqa: E402  (the one waiting loop of both screenshot scripts)


def grab_screen(window, name: str) -> None:
    from PySide6.QtWidgets import QApplication

    for _ in range(30):
        QApplication.processEvents()
        time.sleep(0.01)
    window.repaint()
    pixmap = window.screen().grabWindow(0)  # the whole screen, not just the window
    pixmap.save(str(HERE / name), "PNG")
    print("wrote", HERE / name, pixmap.width(), "x", pixmap.height(), flush=True)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "fit"
    os.environ["SQUEEZE_STUDIO_HOME"] = tempfile.mkdtemp(prefix="squeeze-fit-")
    from PySide6.QtWidgets import QApplication

    from squeeze_studio.app.main import configure_application
    from squeeze_studio.app.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    configure_application(app)
    window = MainWindow()
    window.show()
    window.first_start()
    studio = window.studio
    studio.models.preload_model()
    wait(lambda: studio.models.loaded is not None)
    grab_screen(window, f"{name}-first-start.png")
    studio.controls.set_seed_locked(True)
    studio.controls.set("seed", 3)
    assert studio.generate(), window.last_message
    wait(lambda: not studio.busy)
    grab_screen(window, f"{name}-result.png")
    window.close()


if __name__ == "__main__":
    main()
