"""Session autosave and restore (after a crash too), history across restarts, window layout, libraries."""
from __future__ import annotations

import json

from PySide6.QtWidgets import QDockWidget

from squeeze_studio.app.persistence import libraries
from squeeze_studio.app.persistence.session import session_path

from .helpers import LONG, drop_files, prepare


def _saved(name: str):
    path = session_path()
    if not path.exists():
        return None
    return json.loads(path.read_text())["controls"].get(name)


def test_session_is_restored_after_a_crash(make_window, qtbot, images):
    first = make_window()
    drop_files(first.workspace.gallery.list.viewport(), images[:2])
    first.studio.subjects.add_subject("Mug", [images[2]])
    first.studio.subjects.select(0)
    first.workspace.editor.setPlainText("the toy on the moon")
    first.workspace.controls_panel.stage_bar.set_values(0.9, 0.5, emit=True)
    first.workspace.controls_panel.steps.setValue(33)
    first.workspace.controls_panel.seed_lock.setChecked(True)
    # The autosave runs by itself shortly after the last edit; no clean shutdown happens here.
    qtbot.waitUntil(lambda: _saved("num_inference_steps") == 33 and _saved("seed_locked") is True, timeout=LONG)

    second = make_window()  # the first window is still "running": as if it had crashed

    studio = second.studio
    assert [s.name for s in studio.subjects.subjects] == ["Subject 1", "Mug"]
    assert studio.subjects.references() == images[:2]
    assert second.workspace.gallery.paths() == images[:2]
    assert second.workspace.editor.toPlainText() == "the toy on the moon"
    assert second.workspace.controls_panel.stage_bar.values() == (0.9, 0.5)
    assert second.workspace.controls_panel.steps.value() == 33
    assert second.workspace.controls_panel.seed_lock.isChecked()


def test_a_corrupt_session_file_is_kept_aside_and_the_window_still_opens(make_window, studio_home):
    studio_home.mkdir(parents=True, exist_ok=True)
    session_path().write_text("{ half a file")
    window = make_window()
    assert "could not be read" in window.last_message
    kept = list(studio_home.glob("session.unreadable-*.json"))
    assert [p.read_text() for p in kept] == ["{ half a file"]
    assert kept[0].name in window.last_message
    assert window.studio.subjects.references() == []


def test_a_second_bad_session_does_not_overwrite_the_first_one_kept(studio_home):
    """The set-aside file once had a fixed name (``session.unreadable.json``): a second bad session replaced the
    first."""
    from squeeze_studio.app.persistence.session import load_session

    studio_home.mkdir(parents=True, exist_ok=True)
    messages = []
    for text in ("{ first bad", "{ second bad"):
        session_path().write_text(text)
        data, message = load_session()
        assert data is None
        messages.append(message)
    kept = sorted(studio_home.glob("session.unreadable-*.json"))
    assert sorted(p.read_text() for p in kept) == ["{ first bad", "{ second bad"]
    assert all(p.name in " ".join(messages) for p in kept)


def test_history_is_listed_newest_first_across_restarts(make_window, qtbot, images):
    first = make_window()
    prepare(first, images[:1], steps=2)
    for seed in (1, 2):
        first.studio.controls.set("seed", seed)
        with qtbot.waitSignal(first.studio.job_finished, timeout=LONG):
            first.studio.generate()
    first.close()

    second = make_window()
    assert [r.request.seed for r in second.studio.history.records] == [2, 1]
    strip = second.workspace.history_strip.list
    assert strip.count() == 2
    assert all(not strip.item(row).icon().isNull() for row in range(2))  # thumbnails from the index
    # Clicking a result shows it on the canvas.
    item = second.workspace.history_strip.list.item(1)
    second.workspace.history_strip.list.itemClicked.emit(item)
    assert second.workspace.canvas.view.has_image()
    assert "seed 1" in second.workspace.canvas.caption.text()


def test_window_layout_is_kept_in_qsettings(make_window, studio_home):
    first = make_window()
    first.resize(1000, 700)
    first.findChild(QDockWidget, "history_dock").hide()
    first.close()
    second = make_window()
    assert second.findChild(QDockWidget, "history_dock").isHidden()
    assert (studio_home / "window.ini").exists()


def test_a_subject_saved_as_a_library_reopens_later(make_window, images, studio_home):
    window = make_window()
    window.studio.subjects.rename(0, "Red toy")
    window.studio.subjects.add_images(images[:2])
    window.studio.inputs.save_library()
    [library] = libraries.list_libraries()
    assert library.name == "Red toy" and library.folder.is_relative_to(studio_home)
    assert len(library.images) == 2

    later = make_window()
    later.studio.inputs.open_library(library)
    assert later.studio.subjects.current.name == "Red toy"
    assert later.studio.subjects.references() == library.images
    assert "Opened library" in later.last_message


def test_resaving_a_library_from_its_own_images_after_a_reorder(images, studio_home):
    first = libraries.save_library("toy", images)
    reordered = [first.images[2], first.images[0]]
    second = libraries.save_library("toy", reordered)
    assert [p.rsplit("/", 1)[1] for p in second.images] == ["000-ref2.png", "001-ref0.png"]
    assert sorted(p.name for p in second.folder.iterdir()) == ["000-ref2.png", "001-ref0.png", "subject.json"]
