"""The copy-paste badge: a result that is a reference pasted back says so under the canvas, from the real measure,
its button moves the stage handles toward freedom, and the score comes back with the result from the history."""
from __future__ import annotations

from PIL import Image
from PySide6.QtCore import Qt

from squeeze_studio.recipe import inspect_recipe

from .fake_engine import FakeEngineFactory
from .helpers import LONG, prepare, real_engine_window


def textured(path, seed):
    """A reference with structure to align on (a flat colour would match anything)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).resize((48, 48), Image.NEAREST).save(path)
    return str(path)


def test_a_pasted_result_gets_the_badge_and_its_remedy_moves_the_stages(make_window, qtbot, tmp_path):
    refs = [textured(tmp_path / "a.png", 1), textured(tmp_path / "b.png", 2)]
    window = make_window(FakeEngineFactory(paste_reference=True))
    studio, badge = window.studio, window.workspace.canvas.copy_paste_badge
    prepare(window, refs, steps=2)
    with qtbot.waitSignal(studio.job_finished, timeout=LONG):
        assert studio.generate()
    assert badge.isVisible() and "Looks pasted from reference 1" in badge.label.text()
    saved = inspect_recipe(studio.outputs.results[-1].path).copy_paste
    assert saved is not None and saved.over and saved.reference == 0  # the recipe keeps the score

    tau1, tau2 = studio.controls.get("tau1"), studio.controls.get("tau2")
    qtbot.mouseClick(badge.remedy, Qt.MouseButton.LeftButton)
    assert (studio.controls.get("tau1"), studio.controls.get("tau2")) == (round(tau1 - 0.1, 2), round(tau2 - 0.1, 2))
    assert window.workspace.controls_panel.stage_bar.values() == (round(tau1 - 0.1, 2), round(tau2 - 0.1, 2))

    studio.subjects.remove_image(0)  # the next result is a flat colour: no badge
    studio.subjects.add_images([textured(tmp_path / "c.png", 3)])
    studio.client.worker.engine.paste_reference = False
    with qtbot.waitSignal(studio.job_finished, timeout=LONG):
        assert studio.generate()
    assert not badge.isVisible()
    studio.outputs.show_record(studio.history.records[1])  # the pasted one, from the history
    qtbot.waitUntil(badge.isVisible, timeout=LONG)


def test_a_real_engine_result_is_scored_and_unpasted_noise_gets_no_badge(make_window, qtbot, tiny_model, images):
    window = real_engine_window(make_window, tiny_model)
    studio = window.studio
    prepare(window, images[:1], steps=2)
    with qtbot.waitSignal(studio.job_finished, timeout=LONG):
        assert studio.generate()
    score = studio.outputs.results[-1].copy_paste
    assert score is not None and len(score.scores) == 1 and not score.over  # random weights: noise, not a paste
    assert not window.workspace.canvas.copy_paste_badge.isVisible()
