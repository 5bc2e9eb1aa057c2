"""Drops from the file manager (QMimeData with URLs), pastes, and restoring a generated PNG's recipe."""
from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtGui import QGuiApplication, QImage

from squeeze_studio.recipe import save_png
from squeeze_studio.request import GenerationRequest

from .helpers import drop_files


def test_dropping_image_files_on_the_gallery_adds_them_in_order(make_window, images):
    window = make_window()
    assert drop_files(window.workspace.gallery.list.viewport(), images[:2])
    assert window.studio.subjects.references() == images[:2]
    assert window.workspace.gallery.paths() == images[:2]
    assert all(not window.workspace.gallery.list.item(row).icon().isNull() for row in range(2))  # thumbnails
    assert "Added 2 images" in window.last_message


def test_dropping_a_folder_adds_the_images_inside_it(make_window, images, tmp_path):
    window = make_window()
    folder = Path(images[0]).parent
    (folder / "readme.txt").write_text("skipped quietly inside a folder")
    drop_files(window.workspace.gallery.list.viewport(), [str(folder)])
    assert window.studio.subjects.references() == images
    assert window.workspace.gallery.list.count() == 3


def test_dropping_a_non_image_is_refused_with_a_message_and_nothing_changes(make_window, images, tmp_path):
    window = make_window()
    drop_files(window.workspace.gallery.list.viewport(), images[:1])
    before = (window.studio.subjects.to_dict(), window.studio.controls.to_dict())

    drop_files(window.workspace.gallery.list.viewport(), [str(tmp_path / "notes.txt")])

    assert window.last_message == "Not an image: notes.txt"
    # In a banner above the subject's images, where the drop landed, not a passing status-bar line (issue 22).
    assert window.workspace.problems.text("subjects") == "Not an image: notes.txt"
    assert window.workspace.problems.banners["subjects"].isVisible()
    assert (window.studio.subjects.to_dict(), window.studio.controls.to_dict()) == before


def test_a_png_with_a_fake_extension_and_a_renamed_text_file_are_judged_by_content(make_window, tmp_path):
    window = make_window()
    looks_like_text = tmp_path / "photo.dat"
    Image.new("RGB", (8, 8), "white").save(looks_like_text, format="PNG")
    fake_png = tmp_path / "fake.png"
    fake_png.write_text("hello")
    drop_files(window.workspace.gallery.list.viewport(), [str(looks_like_text), str(fake_png)])
    assert window.studio.subjects.references() == [str(looks_like_text)]
    assert "Not an image: fake.png" in window.last_message


def test_files_dropped_anywhere_in_the_window_are_taken(make_window, images):
    window = make_window()
    drop_files(window.workspace.canvas.view.viewport(), images[:1])
    drop_files(window.workspace.editor.viewport(), images[1:2])
    assert window.studio.subjects.references() == images[:2]
    assert window.workspace.editor.toPlainText() == ""  # a path was not pasted in as text


def test_dropping_a_generated_png_restores_instruction_controls_and_references(make_window, images, tmp_path):
    missing = tmp_path / "deleted.png"
    request = GenerationRequest(instruction="the toy in the snow", references=[images[0], str(missing)],
                                tau1=0.8, tau2=0.4, guidance_scale=4.0, num_inference_steps=9, seed=1234,
                                width=96, height=64, batch_count=2)
    generated = save_png(Image.new("RGB", (96, 64), "gray"), tmp_path / "out" / "result.png", request)

    window = make_window()
    drop_files(window.workspace.gallery.list.viewport(), images[1:3])  # the user's current subject
    drop_files(window.workspace.canvas.view.viewport(), [str(generated)])

    controls = window.studio.controls
    assert window.workspace.editor.toPlainText() == "the toy in the snow"
    assert (controls.get("tau1"), controls.get("tau2"), controls.get("guidance_scale")) == (0.8, 0.4, 4.0)
    assert (controls.get("num_inference_steps"), controls.get("seed"), controls.seed_locked) == (9, 1234, True)
    assert (controls.get("width"), controls.get("height"), controls.get("batch_count")) == (96, 64, 2)
    assert window.workspace.controls_panel.stage_bar.values() == (0.8, 0.4)
    assert window.workspace.controls_panel.steps.value() == 9
    # The existing reference comes back as a new subject; the user's own subject is untouched.
    subjects = window.studio.subjects.subjects
    assert [s.images for s in subjects] == [images[1:3], [images[0]]]
    assert window.studio.subjects.current_index == 1
    assert "Restored settings from result.png" in window.last_message
    assert "1 of its references no longer exists" in window.last_message


def test_a_recipe_naming_paths_outside_the_users_folders_restores_without_following_them(make_window, images,
                                                                                         tmp_path):
    elsewhere = "/srv/shared/elsewhere/secret-model"
    request = GenerationRequest(instruction="the toy in the snow", references=[images[0], "/srv/shared/ref.png"],
                                model=elsewhere, tau1=0.8, tau2=0.4)
    generated = save_png(Image.new("RGB", (64, 64), "gray"), tmp_path / "out" / "result.png", request)
    window = make_window()
    model_before = window.studio.controls.get("model")
    drop_files(window.workspace.canvas.view.viewport(), [str(generated)])
    assert window.workspace.editor.toPlainText() == "the toy in the snow"
    assert window.studio.controls.get("model") == model_before  # the outside model folder is not loaded
    assert window.studio.subjects.references() == [images[0]]
    assert "left out 2 paths outside your folders (ref.png, …): drop them directly to use them" in window.last_message


def test_a_png_with_a_broken_recipe_says_so_in_one_line(make_window, tmp_path):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("squeeze_studio", "{not json")
    path = tmp_path / "broken.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    window = make_window()
    drop_files(window.workspace.canvas.view.viewport(), [str(path)])
    assert "broken.png" in window.last_message and "\n" not in window.last_message


def test_pasting_an_image_from_the_clipboard_adds_it_as_a_reference(make_window, studio_home):
    window = make_window()
    image = QImage(20, 10, QImage.Format.Format_RGB32)
    image.fill(0x336699)
    QGuiApplication.clipboard().setImage(image)
    window.workspace.paste()
    [path] = window.studio.subjects.references()
    assert Path(path).is_file() and Path(path).is_relative_to(studio_home)
    assert QImage(path).size() == image.size()


def test_pasting_files_from_the_clipboard(make_window, images):
    from .helpers import url_mime

    window = make_window()
    QGuiApplication.clipboard().setMimeData(url_mime(images[:1]))  # the clipboard now owns the mime data
    try:
        window.workspace.paste()
        assert window.studio.subjects.references() == images[:1]
    finally:
        QGuiApplication.clipboard().clear()  # let Qt free it now, not during interpreter shutdown (segfault)


def test_dropping_a_result_of_this_app_restores_what_made_it(make_window, qtbot, images):
    from .helpers import LONG, prepare

    window = make_window()
    studio = window.studio
    prepare(window, images[:2], instruction="the toy on a swing", steps=3)
    studio.controls.set("tau1", 0.9)
    with qtbot.waitSignal(studio.job_finished, timeout=LONG):
        studio.generate()
    result = studio.history.records[0].path

    window.workspace.editor.setPlainText("something else")
    studio.controls.set("tau1", 0.5)
    studio.controls.set("seed", 99)
    studio.subjects.remove_image(0)
    drop_files(window.workspace.history_strip.list.viewport(), [result])

    assert window.workspace.editor.toPlainText() == "the toy on a swing"
    assert (studio.controls.get("tau1"), studio.controls.get("seed")) == (0.9, 7)
    assert studio.subjects.references() == images[:2]
