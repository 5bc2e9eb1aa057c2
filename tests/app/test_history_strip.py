"""The history strip (issue 22, seen on screen 8): a selected thumbnail keeps its colours and gets a border, every
thumbnail has a caption, and the results of one sweep are grouped under a label."""
from __future__ import annotations

import re

from PySide6.QtGui import QColor, QImage, QPalette

from squeeze_studio.app.images import qimage_to_png_bytes
from squeeze_studio.app.model.sweep import SWEEP_TAUS
from squeeze_studio.app.ui.history_delegate import BORDER, CAPTION_ROLE, GROUP_ROLE, HEADER_ROLE, ICON, ID_ROLE
from squeeze_studio.request import GenerationRequest

from .helpers import LONG, prepare

ORANGE = QColor(255, 128, 0)


def test_a_selected_thumbnail_keeps_its_colours_and_gets_a_border(make_window, tmp_path):
    window = make_window()
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(ORANGE)
    path = tmp_path / "orange.png"
    image.save(str(path))
    request = GenerationRequest(instruction="an orange", seed=5, tau1=0.9, tau2=0.4)
    window.studio.history.add(str(path), request, 1.5, "", qimage_to_png_bytes(image))
    strip = window.workspace.history_strip.list
    item = strip.item(0)
    assert item.data(CAPTION_ROLE) == ("seed 5", "τ 0.90/0.40")  # the caption under the thumbnail
    assert "seed 5 · τ1 0.90 · τ2 0.40 · 1.5 s" in item.toolTip()

    for selected in (False, True):
        item.setSelected(selected)
        shot = strip.viewport().grab().toImage()
        rect = strip.visualItemRect(item)
        left, middle = rect.left() + (rect.width() - ICON) // 2, rect.top() + BORDER + 1 + ICON // 2
        assert shot.pixelColor(left + ICON // 2, middle) == ORANGE  # no tint: orange stays orange
        border = shot.pixelColor(left - 2, middle)
        highlight = strip.palette().color(QPalette.ColorRole.Highlight)
        assert (border == highlight) is selected  # the selection is a border in the highlight colour


def test_the_results_of_each_sweep_are_grouped_under_a_label(make_window, qtbot, images):
    window = make_window()
    prepare(window, images[:1], steps=2)
    studio = window.studio
    for _ in range(2):  # two sweeps of the same request, one after the other: two groups
        with qtbot.waitSignal(studio.job_finished, timeout=LONG):
            studio.sweep()
    with qtbot.waitSignal(studio.job_finished, timeout=LONG):
        studio.generate()
    cells = len(SWEEP_TAUS)

    def rows(strip):
        return [("header", strip.item(r).data(HEADER_ROLE)) if strip.item(r).data(HEADER_ROLE)
                else ("in", strip.item(r).data(ID_ROLE)) if strip.item(r).data(GROUP_ROLE)
                else ("out", strip.item(r).data(ID_ROLE)) for r in range(strip.count())]

    shown = rows(window.workspace.history_strip.list)
    kinds = [kind for kind, _ in shown]
    assert kinds == ["out", "header", *["in"] * cells, "header", *["in"] * cells]
    assert shown[1][1] == f"Sweep · {cells}"
    caption = window.workspace.canvas.caption
    one_format = re.compile(r"^seed \d+ · τ1 \d\.\d\d · τ2 \d\.\d\d · \d+\.\d s$")
    assert one_format.match(caption.text()), caption.text()  # a plain result
    strip = window.workspace.history_strip.list
    cell = studio.history.find(strip.item(2).data(ID_ROLE))
    strip.itemClicked.emit(strip.item(2))  # a sweep's cell, shown from the history: the same format
    qtbot.waitUntil(lambda: caption.text().startswith(f"seed {cell.request.seed} · τ1 {cell.request.tau1:.2f} · "
                                                      f"τ2 {cell.request.tau2:.2f} · "), timeout=LONG)
    assert one_format.match(caption.text()), caption.text()
    window.close()

    again = make_window()  # the groups come from the history itself, so they survive a restart
    assert [kind for kind, _ in rows(again.workspace.history_strip.list)] == kinds
