"""Several subjects in one image through the window: join a second subject, the chips name its pictures, the real
engine's result records which reference shows whom, and dropping that PNG brings both subjects back."""
from __future__ import annotations

from PySide6.QtCore import Qt

from squeeze_studio.recipe import read_recipe

from .helpers import LONG, drop_files, prepare, real_engine_window


def test_two_subjects_go_into_one_image_and_come_back_from_its_recipe(make_window, qtbot, tiny_model, images):
    window = real_engine_window(make_window, tiny_model)
    studio, subjects = window.studio, window.studio.subjects
    prepare(window, images[:2], instruction="", steps=2)
    subjects.rename(0, "dog")
    toy = subjects.add_subject("toy", images[2:3])
    chips = window.workspace.subject_chips
    assert chips.isHidden() and not studio.subjects.request_subjects()  # one subject: no chips, no groups
    subjects.select(0)
    assert subjects.set_in_image(toy, True)
    assert subjects.references() == images[:3]
    assert subjects.request_subjects() == [{"name": "dog", "count": 2}, {"name": "toy", "count": 1}]
    gallery = window.workspace.gallery
    assert gallery.in_image.text() == "In this image: dog: Pictures 1 and 2 · toy: Picture 3"

    editor = window.workspace.editor
    editor.setPlainText("the dog from")
    editor.moveCursor(editor.textCursor().MoveOperation.End)
    assert [chip.text() for chip in chips.chips] == ["dog", "toy"]
    qtbot.mouseClick(chips.chips[0], Qt.MouseButton.LeftButton)
    editor.insertPlainText("plays with the toy")
    assert editor.toPlainText() == "the dog from Pictures 1 and 2 plays with the toy"

    with qtbot.waitSignal(studio.job_finished, timeout=LONG) as finished:
        assert studio.generate()
    assert finished.args == ["done"]
    result = studio.outputs.results[-1]
    recipe = read_recipe(result.path)
    assert recipe.references == images[:3] and recipe.subjects == subjects.request_subjects()

    subjects.set_in_image(toy, False)
    subjects.add_subject("cat", images[:1])  # the user moves on
    drop_files(window.workspace.canvas.view.viewport(), [result.path])
    assert [subjects.subjects[i].name for i in subjects.image_subjects()] == ["dog", "toy"]  # reused, both in
    assert subjects.references() == images[:3] and len(subjects.subjects) == 3


def test_at_most_three_subjects_share_an_image_and_the_choice_survives_a_restart(make_window, images):
    window = make_window()
    subjects = window.studio.subjects
    subjects.add_images(images[:1])
    for name in ("b", "c", "d"):
        subjects.add_subject(name, images[:1])
    subjects.select(0)
    assert subjects.set_in_image(1, True) and subjects.set_in_image(2, True)
    assert not subjects.set_in_image(3, True)  # a fourth is refused
    data = subjects.to_dict()
    subjects.load_dict(data)
    assert subjects.image_subjects() == [0, 1, 2]
    subjects.remove_subject(1)
    assert subjects.image_subjects() == [0, 1]  # "c" moved up one place and stays in
