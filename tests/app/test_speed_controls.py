"""The speed settings in the window (step cache, compile) and what the schedule costs: the stage bar's figures and
an ETA that weighs each step by its stage."""
from __future__ import annotations

import pytest

from squeeze_studio.app.model.generation import GenerationState
from squeeze_studio.app.ui.stage_bar import StageBar
from squeeze_studio.request import GenerationRequest


def test_the_speed_row_fills_the_request_and_follows_a_restored_recipe(make_window):
    window = make_window()
    panel, controls = window.workspace.controls_panel, window.studio.controls
    panel.cache.activated.emit(panel.cache.findData("taylorseer"))
    panel.compile.setChecked(True)
    request = controls.to_request([])
    assert (request.cache, request.compile) == ("taylorseer", True)
    controls.apply_request(GenerationRequest(instruction="x", cache="first-block"))
    assert panel.cache.currentData() == "first-block" and not panel.compile.isChecked()
    with pytest.raises(ValueError, match="unknown cache mode 'teacache'"):
        controls.set("cache", "teacache")
    controls.load_dict({"cache": "teacache"})  # a session from elsewhere
    assert controls.get("cache") == "none"


def test_the_stage_bar_says_what_each_stage_costs(qapp):
    bar = StageBar()
    bar.set_values(0.95, 0.85)
    bar.set_run(20, 2.5, 2)
    assert bar.words()["work"] == "≈0.53× CFG work"  # 2 | 2 | 16 steps: (2 / 3 + 2 + 16 / 2) / 20
    assert "Layout 0.33, Identity 1.00, Detail 0.50. At 20 steps (2 | 2 | 16)" in bar.cost_text()
    bar.set_run(20, 1.0, 0)  # no guidance, no references: every step is one pass over the output alone
    assert bar.words()["work"] == "≈0.50× CFG work"
    bar.set_values(1.0, 0.0)
    bar.set_run(20, 2.5, 2)
    assert bar.words()["work"] == "≈1.00× CFG work"  # MLLM + VAE at every step is stock CFG


def test_the_eta_weighs_every_step_by_its_stage(qapp):
    now = [0.0]
    state = GenerationState(clock=lambda: now[0])
    request = GenerationRequest(instruction="x", references=["a.png", "b.png"], num_inference_steps=20)
    state.start(1, 20, request)
    now[0] = 4.0
    state.advance(4, 20, 0, None)  # 2 layout steps (1/3 of a CFG step each) and 2 identity steps (1 each): 8/3
    # 16 detail steps of half a CFG step are left: 8 units at 1.5 s a unit. Unweighted it would say 16 s.
    assert state.eta_seconds == pytest.approx(12.0)
