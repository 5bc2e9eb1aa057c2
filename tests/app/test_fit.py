"""The window fits any screen (issue 22): a first start on a 1366 x 768 laptop and on 2560 x 1440 at scale 2 (1280 x 720
logical) puts the whole window, its status bar and its history on the screen, with Generate in view and the
advanced controls folded. It once opened at a fixed 1280 x 820: the status bar and the history were off-screen.

Each screen is a process of its own: Qt's offscreen platform takes the screen's size from a config file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import QRect, QSize

from squeeze_studio.app.ui.screen_fit import first_geometry

from .test_startup import ROOT

CHECK = """
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QApplication
    from tests.app.fake_engine import FakeEngineFactory
    from squeeze_studio.app.main import configure_application
    from squeeze_studio.app.ui.main_window import MainWindow

    app = QApplication([])
    configure_application(app)
    window = MainWindow(engine_factory=FakeEngineFactory())
    window.first_start()
    window.show()
    app.processEvents()
    available = app.primaryScreen().availableGeometry()

    def on_screen(widget):
        return widget.isVisible() and available.contains(QRect(widget.mapToGlobal(QPoint(0, 0)), widget.size()))

    workspace = window.workspace
    print("AVAILABLE", available.width(), available.height())
    print("FITS", available.contains(window.geometry()) and window.geometry().top() >= available.top() + 20)
    print("MINIMUM FITS", window.minimumSizeHint().width() <= available.width()
          and window.minimumSizeHint().height() <= available.height() - 48)
    print("STATUS BAR", on_screen(window.statusBar()))
    print("HISTORY", on_screen(workspace.history_dock))
    print("GENERATE IN VIEW", not workspace.generate_button.visibleRegion().isEmpty())
    print("ADVANCED FOLDED", not workspace.controls_panel.advanced.expanded)
    window.close()
"""


def first_start_on(tmp_path, width: int, height: int, scale: int = 1) -> str:
    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "screen", "x": 0, "y": 0, "width": width, "height": height,
                                               "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}", "QT_SCALE_FACTOR": str(scale),
           "SQUEEZE_STUDIO_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECK)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("width, height, scale", [(1366, 768, 1), (2560, 1440, 2)], ids=["1366x768", "1440p-at-2x"])
def test_a_first_start_fits_the_screen(tmp_path, width, height, scale):
    out = first_start_on(tmp_path, width, height, scale)
    assert f"AVAILABLE {width // scale} {height // scale}" in out
    found = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in out.splitlines() if " " in line}
    for check in ("FITS", "MINIMUM FITS", "STATUS BAR", "HISTORY", "GENERATE IN VIEW", "ADVANCED FOLDED"):
        assert found[check] == "True", out


def test_the_first_size_comes_from_the_available_area():
    assert first_geometry(QRect(0, 0, 1920, 1050)).size() == QSize(1280, 820)  # room: the preferred size
    laptop = first_geometry(QRect(0, 32, 1366, 736))  # a top panel takes 32 pixels
    assert laptop.size() == QSize(1280, 688) and QRect(0, 32, 1366, 736).contains(laptop)
    small = first_geometry(QRect(0, 0, 1024, 600))
    assert small.width() <= 1024 - 16 and small.bottom() < 600
