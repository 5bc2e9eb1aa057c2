"""First start: a sample subject and instruction loaded, a welcome panel, results in the pictures folder, the old
data folder moved in without losing a history entry, and ``--self-test``."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from squeeze_studio.app.model.samples import load_samples
from squeeze_studio.app.persistence import paths
from squeeze_studio.app.persistence.history_index import SCHEMA
from squeeze_studio.recipe import save_png
from squeeze_studio.request import GenerationRequest

from .helpers import LONG

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_user(tmp_path, monkeypatch) -> Path:
    """A home folder with nothing in it and no $SQUEEZE_STUDIO_HOME: the folders a first-time user gets."""
    home = tmp_path / "user"
    home.mkdir()
    monkeypatch.delenv("SQUEEZE_STUDIO_HOME", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


def test_the_shipped_samples_have_references_and_measured_instructions():
    samples = load_samples()
    assert len(samples) >= 2
    for sample in samples:
        assert 2 <= len(sample.references) <= 3 and len(sample.instructions) == 3
        assert all(Image.open(p).size == (64, 64) for p in sample.references)
        assert [m["instruction"] for m in sample.measured] == sample.instructions
        assert all(0.0 <= m["adherence"] <= 1.0 for m in sample.measured)


def test_first_start_loads_a_sample_and_ctrl_enter_makes_a_result(window_maker, qtbot, studio_home):
    """With the fake engine, to stay fast: ``--self-test`` (below) runs the same window path with the real engine
    and the built-in demo model on the same first sample."""
    window = window_maker()
    assert window.fresh_start
    assert window.first_start()
    sample = load_samples()[0]
    studio = window.studio
    assert studio.subjects.current.name == sample.name
    assert studio.subjects.references() == sample.references
    assert window.workspace.editor.toPlainText() == sample.instructions[0]
    assert window.welcome is not None and window.welcome.isVisible()
    assert "not on photos" in window.welcome.text.text()
    assert "results" in window.welcome.text.text() and paths.results_dir().name in window.welcome.text.text()

    with qtbot.waitSignal(studio.job_finished, timeout=LONG) as finished:
        qtbot.keyClick(window.workspace.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert finished.args == ["done"]
    [result] = studio.outputs.results
    assert Path(result.path).is_file() and Path(result.path).is_relative_to(paths.results_dir())
    assert result.request.instruction == sample.instructions[0]
    assert Image.open(result.path).size == (32, 32)  # the fake engine's native size


def test_the_welcome_panel_once_dismissed_stays_away_and_a_second_start_keeps_the_session(window_maker, studio_home,
                                                                                          images):
    first = window_maker()
    first.first_start()
    first.welcome._dismiss()
    first.studio.subjects.add_subject("Mine", images[:1])
    first.close()

    second = window_maker()
    assert not second.fresh_start
    assert not second.first_start()
    assert second.welcome is None
    assert second.studio.subjects.current.name == "Mine"


def test_file_samples_brings_a_sample_back_beside_the_users_subject(window_maker, studio_home, images):
    window = window_maker()
    window.studio.subjects.add_images(images[:2])
    samples = load_samples()
    menu = window.samples_menu
    titles = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert titles == [s.name for s in samples] + ["Show welcome"]
    last = samples[-1]
    submenu = menu.actions()[len(samples) - 1].menu()
    submenu.actions()[2].trigger()  # its third suggested instruction
    studio = window.studio
    assert [s.images for s in studio.subjects.subjects] == [images[:2], last.references]
    assert studio.subjects.current.name == last.name
    assert studio.controls.get("instruction") == last.instructions[2]
    submenu.actions()[0].trigger()  # the same sample again: selected, not added twice
    assert len(studio.subjects.subjects) == 2


def test_results_go_to_the_pictures_folder_and_the_data_folder_is_the_engines(window_maker, qtbot, fresh_user, images):
    from squeeze_studio.hub.paths import user_data_dir

    assert paths.data_home() == user_data_dir() == fresh_user / ".local" / "share" / "squeeze-studio"
    assert paths.results_dir() == fresh_user / "Pictures" / "Squeeze Studio"
    window = window_maker()
    window.studio.subjects.add_images(images[:1])
    window.workspace.editor.setPlainText("the subject on a red background")
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    [result] = window.studio.outputs.results
    assert Path(result.path).parent.parent == fresh_user / "Pictures" / "Squeeze Studio"
    assert (fresh_user / ".local" / "share" / "squeeze-studio" / "history.sqlite").is_file()

    chosen = fresh_user / "elsewhere"
    window.set_results_folder(str(chosen))  # File > Results folder…
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    assert Path(window.studio.outputs.results[-1].path).is_relative_to(chosen)
    assert paths.results_dir() == chosen  # kept in the settings for the next start


def test_the_old_doubled_data_folder_is_moved_in_and_its_history_still_opens(window_maker, qtbot, fresh_user):
    old = fresh_user / ".local" / "share" / "squeeze-studio" / "Squeeze Studio"
    pasted = old / "pasted" / "pasted-1.png"
    pasted.parent.mkdir(parents=True)
    Image.new("RGB", (40, 40), "orange").save(pasted)
    request = GenerationRequest(instruction="old result", references=[str(pasted)], seed=3)
    result = save_png(Image.new("RGB", (32, 32), "teal"), old / "results" / "2026-01-01" / "old.png", request)
    db = sqlite3.connect(str(old / "history.sqlite"))
    db.execute(SCHEMA)
    db.execute("INSERT INTO results (path, created, instruction, request_json, seconds) VALUES (?, 1, ?, ?, 0.5)",
               (str(result), request.instruction, json.dumps(request.to_dict())))
    db.commit()
    db.close()
    session = {"version": 1, "subjects": [{"name": "Old subject", "images": [str(pasted)]}], "current_subject": 0,
               "controls": {"instruction": "old instruction"}}
    (old / "session.json").write_text(json.dumps(session))
    paths._migrated.clear()

    window = window_maker()
    home = fresh_user / ".local" / "share" / "squeeze-studio"
    assert not old.exists()  # one clean folder now
    [record] = window.studio.history.records
    assert record.path == str(home / "results" / "2026-01-01" / "old.png") and record.exists
    assert record.request.references == [str(home / "pasted" / "pasted-1.png")]
    assert window.studio.subjects.references() == [str(home / "pasted" / "pasted-1.png")]
    assert window.workspace.history_strip.list.count() == 1
    with qtbot.waitSignal(window.studio.canvas_image, timeout=LONG) as shown:
        window.studio.outputs.show_record(record)  # the old result still opens
    assert not shown.args[0].isNull()


@pytest.mark.slow  # a child process loads torch and the demo: about 11 s
def test_self_test_exits_0_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("SQUEEZE_STUDIO_HOME", None)
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("DISPLAY", None)  # it needs no display
    result = subprocess.run([sys.executable, "-m", "squeeze_studio.app.main", "--self-test"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = result.stdout.strip().splitlines()
    assert line.startswith("self-test passed: demo model on cpu, 64x64 in ")
    assert not any(tmp_path.rglob("*.png"))  # it wrote nothing to the user's folders
