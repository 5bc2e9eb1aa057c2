"""The sweep grid: one click, several tau settings (and seeds), one MLLM encoding."""
from __future__ import annotations

from squeeze_studio.app.model.comparison import GRID
from squeeze_studio.app.model.sweep import SWEEP_TAUS
from squeeze_studio.app.ui.history_delegate import GROUP_ROLE, HEADER_ROLE

from .helpers import LONG, prepare, real_engine_window


def test_sweep_runs_the_mllm_once_and_labels_every_cell(make_window, qtbot, tiny_model, images):
    window = real_engine_window(make_window, tiny_model)
    studio = window.studio
    prepare(window, images[:2], steps=3)
    with qtbot.waitSignal(studio.job_finished, timeout=LONG) as finished:
        assert studio.sweep(vary_seed=True)
    assert finished.args == ["done"]

    assert studio.client.worker.engine.mllm_runs == 1
    cells = len(SWEEP_TAUS) * 2
    assert len(studio.results) == cells
    assert window.workspace.tabs.currentWidget() is window.workspace.comparison_view
    comparison = studio.comparison
    assert comparison.mode == GRID and comparison.columns == len(SWEEP_TAUS)
    assert all(item.path for item in comparison.items)
    labels = [cell.caption.text() for cell in window.workspace.comparison_view.cells]
    assert labels[0] == "τ1 1 · τ2 0 · seed 7 (MLLM + VAE throughout)"
    assert labels[-1] == "τ1 0 · τ2 0 · seed 8 (MLLM only)"
    for item, result in zip(comparison.items, studio.results, strict=True):
        assert result.label == item.label
        assert item.label.startswith(f"τ1 {result.request.tau1:g} · τ2 {result.request.tau2:g} · "
                                     f"seed {result.request.seed}")
    strip = window.workspace.history_strip.list
    assert strip.count() == cells + 1  # the results and one "Sweep" label before them
    assert strip.item(0).data(HEADER_ROLE) == f"Sweep · {cells}"
    assert all(strip.item(row).data(GROUP_ROLE) for row in range(1, cells + 1))


def test_sweep_includes_the_current_setting(make_window, qtbot, images):
    window = make_window()
    prepare(window, images[:1], steps=2)
    window.studio.controls.set("tau1", 0.7)
    window.studio.controls.set("tau2", 0.3)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.sweep()
    labels = [item.label for item in window.studio.comparison.items]
    assert labels[0] == "τ1 0.7 · τ2 0.3"
    assert len(labels) == len(SWEEP_TAUS) + 1
