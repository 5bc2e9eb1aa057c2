"""Pairwise picks through the window: a number key in the comparison view records picks from the results' own
recipes, and once there are enough, the stage bar shows "your default" and its menu applies it."""
from __future__ import annotations

import json

from PySide6.QtCore import Qt

from squeeze_studio.app.model.preferences import MIN_PICKS
from squeeze_studio.app.model.sweep import SWEEP_TAUS

from .helpers import LONG, prepare, real_engine_window


def test_number_keys_pick_the_best_and_the_stage_bar_learns_it(make_window, qtbot, tiny_model, images, tmp_path):
    window = real_engine_window(make_window, tiny_model)
    studio, view = window.studio, window.workspace.comparison_view
    prepare(window, images[:1], steps=2)
    with qtbot.waitSignal(studio.job_finished, timeout=LONG):
        assert studio.sweep(vary_seed=False)
    cells = len(studio.comparison.items)
    assert cells == len(SWEEP_TAUS) and view.pick_hint.text() == f"Best? press 1–{cells}"
    assert [cell.number for cell in view.cells] == list(range(1, cells + 1))
    bar = window.workspace.controls_panel.stage_bar
    assert studio.picks.preference is None and bar.user_default() is None

    presses = -(-MIN_PICKS // (cells - 1))  # each press: the picked result beat every other one shown
    for _ in range(presses):
        qtbot.keyClick(view, Qt.Key.Key_3)
    assert studio.picks.count() == presses * (cells - 1)
    tau1, tau2 = SWEEP_TAUS[2]
    assert studio.picks.preference is not None and studio.picks.preference.setting[:2] == (tau1, tau2)
    assert bar.user_default() == (tau1, tau2) and "your default" in bar.words()["user"]

    studio.controls.set("guidance_scale", 6.0)
    use = next(a for a in bar.defaults_menu().actions() if a.text().startswith("Use your default"))
    use.trigger()
    assert (studio.controls.get("tau1"), studio.controls.get("tau2")) == (tau1, tau2)
    assert studio.controls.get("guidance_scale") == studio.picks.preference.setting[2]

    assert studio.picks.export(str(tmp_path / "picks.jsonl")) == presses * (cells - 1)
    first = json.loads((tmp_path / "picks.jsonl").read_text().splitlines()[0])
    assert (first["winner"]["tau1"], first["winner"]["tau2"]) == (tau1, tau2)
    assert first["winner"]["path"] == studio.comparison.items[2].path

    qtbot.keyClick(view, Qt.Key.Key_9)  # no ninth result: nothing recorded
    assert studio.picks.count() == presses * (cells - 1)
