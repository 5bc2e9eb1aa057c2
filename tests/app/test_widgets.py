"""Widgets on their own: stage bar, gallery editing, tooltips, comparison views, palette following."""
from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPalette, QWheelEvent
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLineEdit

from squeeze_studio.app.model.comparison import SIDE_BY_SIDE, SPLIT, CompareItem
from squeeze_studio.app.ui.stage_bar import StageBar

from .helpers import LONG, drop, drop_files, prepare


def test_stage_bar_drags_each_handle_and_keeps_tau2_below_tau1(qtbot):
    bar = StageBar()
    qtbot.addWidget(bar)
    bar.resize(400, bar.sizeHint().height())
    seen = []
    bar.values_changed.connect(lambda a, b: seen.append((a, b)))
    y = int(bar._bar().center().y())

    qtbot.mousePress(bar, Qt.MouseButton.LeftButton, pos=QPoint(int(bar._x(0.95)), y))
    qtbot.mouseMove(bar, QPoint(int(bar._x(0.6)), y))
    qtbot.mouseRelease(bar, Qt.MouseButton.LeftButton, pos=QPoint(int(bar._x(0.6)), y))
    tau1, tau2 = bar.values()
    assert abs(tau1 - 0.6) <= 0.01 and tau2 == tau1  # dragging tau1 past tau2 pushes tau2 along
    assert seen

    bar.set_values(0.95, 0.85)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=QPoint(int(bar._x(0.3)), y))  # nearest: tau2
    assert bar.values()[0] == 0.95 and abs(bar.values()[1] - 0.3) <= 0.01

    qtbot.mouseDClick(bar, Qt.MouseButton.LeftButton, pos=QPoint(int(bar._x(0.5)), y))
    assert bar.values() == (0.95, 0.85)  # double-click: the paper's default


def test_stage_bar_keyboard_nudges_the_selected_handle(qtbot):
    bar = StageBar()
    qtbot.addWidget(bar)
    qtbot.keyClick(bar, Qt.Key.Key_Right)   # tau1 towards t = 0
    assert bar.values() == (0.94, 0.85)
    qtbot.keyClick(bar, Qt.Key.Key_Space)   # select tau2
    qtbot.keyClick(bar, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert bar.values() == (0.94, 0.9)


def test_stage_bar_is_painted_from_the_palette_in_light_and_dark(qtbot):
    bar = StageBar()
    qtbot.addWidget(bar)
    bar.resize(360, bar.sizeHint().height())
    for window, text in ((QColor("white"), QColor("black")), (QColor(30, 30, 30), QColor(230, 230, 230))):
        palette = bar.palette()
        palette.setColor(QPalette.ColorRole.Window, window)
        palette.setColor(QPalette.ColorRole.Base, window)
        palette.setColor(QPalette.ColorRole.WindowText, text)
        palette.setColor(QPalette.ColorRole.Text, text)
        bar.setPalette(palette)
        image = bar.grab().toImage()
        middle = image.pixelColor(int(bar._x(0.4)), int(bar._bar().top()) + 2)
        expected = bar.stage_colors()[2]  # the VAE-focused stage: a colour derived from the palette
        assert max(abs(a - b) for a, b in zip(middle.getRgb(), expected.getRgb(), strict=True)) <= 1
        assert (middle.lightnessF() > 0.5) == (window.lightnessF() > 0.5)


def test_every_control_says_what_it_does(make_window):
    window = make_window()
    ws = window.workspace
    panel = ws.controls_panel
    inputs = panel.findChildren(QAbstractSpinBox) + panel.findChildren(QComboBox) + \
        panel.findChildren(QAbstractButton) + [w for w in panel.findChildren(QLineEdit) if w.parent() is panel]
    inputs += [panel.stage_bar, ws.editor, ws.generate_button, ws.sweep_button, ws.sweep_seeds,
               ws.canvas.cancel_button, ws.gallery.list, ws.history_strip.list]
    missing = [type(w).__name__ for w in inputs if not w.toolTip() and not isinstance(w.parent(), QAbstractSpinBox)
               and not isinstance(w.parent(), QComboBox)]
    assert missing == []


def test_gallery_reorders_and_removes_thumbnails(make_window, qtbot, images):
    window = make_window()
    drop_files(window.workspace.gallery.list.viewport(), images)
    gallery = window.workspace.gallery
    # Drag the first thumbnail onto the last one: an internal move.
    gallery.list.setCurrentRow(0)
    mime = gallery.list.model().mimeData([gallery.list.model().index(0, 0)])
    target = gallery.list.visualItemRect(gallery.list.item(2)).center()
    from PySide6.QtGui import QDropEvent

    event = QDropEvent(QPointF(target), Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    event.source = lambda: gallery.list  # a synthetic event has no drag source; this one is the list itself
    gallery.list.dropEvent(event)
    assert window.studio.subjects.references() == [images[1], images[2], images[0]]
    assert gallery.paths() == [images[1], images[2], images[0]]

    gallery.list.setCurrentRow(1)
    gallery.list.item(1).setSelected(True)
    qtbot.keyClick(gallery.list, Qt.Key.Key_Delete)
    assert window.studio.subjects.references() == [images[1], images[0]]


def test_several_subjects_each_keep_their_own_images(make_window, images):
    window = make_window()
    drop_files(window.workspace.gallery.list.viewport(), images[:1])
    window.studio.subjects.add_subject()
    drop_files(window.workspace.gallery.list.viewport(), images[1:])
    assert window.workspace.gallery.subject_box.count() == 2
    assert window.workspace.gallery.subject_box.currentText() == "Subject 2 (2)"
    window.workspace.gallery.subject_box.activated.emit(0)
    assert window.workspace.gallery.paths() == images[:1]


def test_side_by_side_views_zoom_and_pan_together(make_window, qtbot, images):
    window = make_window()
    comparison = window.studio.comparison
    comparison.show([CompareItem(p, f"r{i}") for i, p in enumerate(images)], SIDE_BY_SIDE)
    window.workspace.tabs.setCurrentWidget(window.workspace.comparison_view)
    cells = window.workspace.comparison_view.cells
    assert len(cells) == 3
    qtbot.waitUntil(lambda: all(c.view.has_image() for c in cells), timeout=LONG)
    leader = cells[0].view
    centre = QPointF(leader.viewport().rect().center())
    wheel = QWheelEvent(centre, leader.viewport().mapToGlobal(centre), QPoint(), QPoint(0, 120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    for _ in range(3):
        QApplication.sendEvent(leader.viewport(), wheel)
    assert all(abs(c.view.zoom() - leader.zoom()) < 1e-6 for c in cells)
    leader.horizontalScrollBar().setValue(leader.horizontalScrollBar().maximum())
    assert all(abs(c.view.view_state()[1] - leader.view_state()[1]) < 0.02 for c in cells)


def test_ab_split_slider_moves_the_split(make_window, qtbot, images):
    window = make_window()
    window.studio.comparison.show([CompareItem(images[0], "A"), CompareItem(images[1], "B")], SPLIT)
    view = window.workspace.comparison_view
    assert view.stack.currentIndex() == 2
    qtbot.waitUntil(lambda: not view.split_view.image_b.isNull(), timeout=LONG)
    view.split_slider.setValue(250)
    assert view.split_view.split == 0.25
    view.split_view.resize(300, 200)
    image = view.split_view.grab().toImage()
    rect = view.split_view.image_rect()
    left = image.pixelColor(int(rect.left() + rect.width() * 0.1), int(rect.center().y()))
    right = image.pixelColor(int(rect.left() + rect.width() * 0.9), int(rect.center().y()))
    assert left == QColor("red") and right == QColor("green")


def test_history_selection_opens_the_comparison(make_window, qtbot, images):
    window = make_window()
    prepare(window, images[:1], steps=2)
    window.studio.controls.set("batch_count", 2)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    strip = window.workspace.history_strip
    strip.list.selectAll()
    assert strip.split_button.isEnabled()
    strip.split_button.click()
    assert window.workspace.tabs.currentWidget() is window.workspace.comparison_view
    assert window.studio.comparison.mode == SPLIT


def test_image_data_dropped_from_a_browser_becomes_a_reference(make_window):
    from PySide6.QtCore import QMimeData

    window = make_window()
    mime = QMimeData()
    image = QImage(16, 16, QImage.Format.Format_RGB32)
    image.fill(0xFF0000)
    mime.setImageData(image)
    drop(window.workspace.gallery.list.viewport(), mime)
    assert len(window.studio.subjects.references()) == 1


def test_choosing_a_model_folder_loads_it_and_remembers_it(make_window, qtbot, tmp_path, fake_factory):
    window = make_window(fake_factory)
    folder = tmp_path / "my-model"
    folder.mkdir()
    window.studio.models.choose_model(str(folder))
    qtbot.waitUntil(lambda: fake_factory.loads == 1 and window.studio.models.model_name == "fake-model", timeout=LONG)
    combo = window.workspace.controls_panel.model
    assert combo.currentText() == "my-model" and combo.currentData() == str(folder)
    assert window.studio.models.recent_models == [str(folder)]
    assert window.workspace.model_label.text() == "Model: fake-model"
    assert window.workspace.memory_label.text() == "RAM 0.1 GB"
