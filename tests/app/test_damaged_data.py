"""A damaged data folder (issue 22, faults 2-3): a history database of random bytes, cut short, or in a folder that
cannot be written is moved aside and rebuilt from the results' PNG recipes, and the window says so (it once was an
empty grey frame with no menus, every restart); a data folder that is a file is one line and exit status 2."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from PIL import Image

from squeeze_studio.app.persistence import history_repair
from squeeze_studio.app.persistence.history_index import HistoryIndex, history_db_path
from squeeze_studio.recipe import save_png
from squeeze_studio.request import GenerationRequest

from .test_startup import ROOT


def results_with_recipes(home, count: int = 2) -> list[str]:
    day = home / "results" / "2025-01-01"
    paths = []
    for seed in range(count):
        request = GenerationRequest(instruction=f"the toy number {seed}", seed=seed, width=16, height=16)
        paths.append(str(save_png(Image.new("RGB", (16, 16), (seed * 60, 90, 30)), day / f"r{seed}.png", request)))
    return paths


def assert_rebuilt(window, paths: list[str]) -> None:
    assert window.workspace is not None and window.menuBar().actions()  # a full window, menus and all
    assert sorted(r.path for r in window.studio.history.records) == sorted(paths)
    assert {r.request.instruction for r in window.studio.history.records} == {"the toy number 0", "the toy number 1"}
    assert window.workspace.history_strip.list.count() == len(paths)
    text = window.workspace.problems.text("history")
    assert text.startswith("The history database could not be opened") and f"rebuilt from {len(paths)} results" in text


def test_a_history_database_of_random_bytes_is_set_aside_and_rebuilt(make_window, studio_home):
    paths = results_with_recipes(studio_home)
    garbage = os.urandom(64 * 1024)
    history_db_path().write_bytes(garbage)
    window = make_window()
    assert_rebuilt(window, paths)
    kept = list(studio_home.glob("history.damaged-*.sqlite"))
    assert [p.read_bytes() == garbage for p in kept] == [True]
    assert kept[0].name in window.workspace.problems.text("history")
    window.close()
    again = make_window()  # the next start opens the rebuilt index quietly
    assert again.workspace.problems.text("history") == ""
    assert len(again.studio.history.records) == 2


def test_a_history_database_cut_short_is_set_aside_and_rebuilt(make_window, studio_home):
    paths = results_with_recipes(studio_home)
    index = HistoryIndex()
    for number in range(300):
        index.add(f"/gone/{number}.png", GenerationRequest(instruction="x" * 200, seed=number), 1.0, "", b"t" * 500)
    index.close()
    data = history_db_path().read_bytes()
    history_db_path().write_bytes(data[: len(data) // 2])
    window = make_window()
    assert_rebuilt(window, paths)
    assert len(list(studio_home.glob("history.damaged-*.sqlite"))) == 1


def test_a_history_database_in_a_folder_that_cannot_be_written_lives_in_memory(make_window, studio_home,
                                                                                monkeypatch):
    """Simulated (the tests may run as root, whom a read-only folder does not stop): SQLite cannot open a file in
    the data folder and nothing can be moved there, as in a read-only folder."""
    paths = results_with_recipes(studio_home)
    history_db_path().write_bytes(b"")

    class ReadOnlyFolder(HistoryIndex):
        def __init__(self, path=None):
            if str(path) != ":memory:":
                raise sqlite3.OperationalError("attempt to write a readonly database")
            super().__init__(path)

    monkeypatch.setattr(history_repair, "HistoryIndex", ReadOnlyFolder)
    monkeypatch.setattr(history_repair, "_move_aside", lambda path: None)  # nothing can be renamed there
    window = make_window()
    assert_rebuilt(window, paths)
    assert "cannot be written, so the history is rebuilt from 2 results" in window.workspace.problems.text("history")
    assert "for this session only" in window.workspace.problems.text("history")


def test_a_window_that_cannot_be_built_says_why_and_quits(make_window, studio_home, monkeypatch):
    """Whatever else goes wrong while building: a message in the window and a working Quit, not a grey frame."""
    def broken():
        raise RuntimeError("something unforeseen")

    monkeypatch.setattr("squeeze_studio.app.model.studio.open_history", broken)
    from squeeze_studio.app.ui.main_window import MainWindow

    window = MainWindow()
    try:
        assert window.studio is None and "something unforeseen" in window.centralWidget().text()
        quit_action = next(a for m in window.menuBar().actions() for a in m.menu().actions() if a.text() == "Quit")
        assert not quit_action.shortcut().isEmpty()
    finally:
        window.close()


def test_a_data_folder_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SQUEEZE_STUDIO_HOME": str(blocker),
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "squeeze_studio.app.main"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[0] and "is a file, not a folder" in lines[0]
