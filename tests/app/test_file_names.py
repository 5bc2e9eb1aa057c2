"""File names that are not UTF-8 (issue 22, fault 1): handled as paths on the command line, through "Open with" and
the second-instance hand-off, in drops and inside dropped folders. Such a name once crashed the app (SIGSEGV in
``QApplication``), and inside a folder the image was skipped as "No images"."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QUrl

from squeeze_studio.app.single_instance import SingleInstance, server_name

from .helpers import drop
from .test_startup import ROOT, run_python

pytestmark = pytest.mark.skipif(os.name != "posix" or sys.getfilesystemencoding() != "utf-8",
                                reason="file names are bytes on POSIX only")
BAD = b"bad\xff\xfename.png"


@pytest.fixture
def bad_image(tmp_path) -> str:
    """A valid PNG whose name is not UTF-8, alone in a folder; the path as Python spells it (surrogates)."""
    folder = tmp_path / "odd"
    folder.mkdir()
    path = os.fsencode(folder) + b"/" + BAD
    with open(path, "wb") as handle:
        Image.new("RGB", (40, 30), "orange").save(handle, format="PNG")
    return os.fsdecode(path)


def test_a_name_that_is_not_utf8_on_the_command_line_becomes_a_reference(tmp_path, bad_image):
    result = run_python(f"""
        import os, sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from squeeze_studio.app.main import main
        from squeeze_studio.app.ui.main_window import MainWindow

        path = os.fsdecode({os.fsencode(bad_image)!r})
        def check(tries=[]):
            tries.append(1)
            windows = [w for w in QApplication.topLevelWidgets()
                       if isinstance(w, MainWindow) and w.isVisible() and w.studio is not None]
            if windows and (windows[0].studio.subjects.references() or len(tries) > 3000):
                print("SAME FILE", windows[0].studio.subjects.references() == [path])
                windows[0].close()
            else:
                QTimer.singleShot(20, check)
        QTimer.singleShot(0, check)
        sys.exit(main([path]))
    """, tmp_path / "home")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SAME FILE True" in result.stdout


def test_a_second_start_hands_a_name_that_is_not_utf8_to_the_open_window(make_window, qtbot, studio_home,
                                                                         bad_image):
    """Through the real entry point in a second process, as the desktop's "Open with" starts it."""
    window = make_window()
    instance = SingleInstance(server_name(studio_home))
    assert instance.listen()
    instance.files_received.connect(window.open_files)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    second = subprocess.Popen([sys.executable, "-m", "squeeze_studio.app.main", os.fsencode(bad_image)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=60_000)
    finally:
        if second.poll() is None:
            second.kill()
        instance.close()
    assert second.returncode == 0, second.stderr.read()[-2000:]
    qtbot.waitUntil(lambda: window.studio.subjects.references() == [bad_image], timeout=10_000)


def test_a_dropped_folder_holding_a_name_that_is_not_utf8_adds_it(make_window, qtbot, bad_image):
    window = make_window()
    gallery = window.workspace.gallery
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(Path(bad_image).parent))])
    drop(gallery.list.viewport(), mime)
    qtbot.waitUntil(lambda: window.studio.subjects.references() == [bad_image], timeout=10_000)
    assert "No images" not in window.last_message
    qtbot.waitUntil(lambda: not gallery.list.item(0).icon().isNull(), timeout=10_000)  # its thumbnail is shown
    assert "\ufffd" in gallery.list.item(0).text()  # shown with U+FFFD where the bytes are not text


def test_a_dropped_url_with_bytes_that_are_not_utf8_is_that_file(make_window, qtbot, bad_image):
    """The file manager percent-encodes the name's bytes; ``QUrl.toLocalFile`` would make them U+FFFD."""
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromEncoded(b"file://" + os.fsencode(bad_image).replace(b"\xff", b"%FF")
                                   .replace(b"\xfe", b"%FE"))])
    drop(window.workspace.canvas.view.viewport(), mime)
    qtbot.waitUntil(lambda: window.studio.subjects.references() == [bad_image], timeout=10_000)
