"""The sweep grid: one click, several tau settings (and seeds), one MLLM encoding."""
from __future__ import annotations

from squeeze_studio.app.model.captions import result_caption
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
    assert len(studio.outputs.results) == cells
    assert window.workspace.tabs.currentWidget() is window.workspace.comparison_view
    comparison = studio.comparison
    assert comparison.mode == GRID and comparison.columns == len(SWEEP_TAUS)
    assert all(item.path for item in comparison.items)
    labels = [cell.toolTip() for cell in window.workspace.comparison_view.cells]
    assert labels[0] == "seed 7 · τ1 1.00 · τ2 0.00 (MLLM + VAE throughout)"
    assert labels[-1] == "seed 8 · τ1 0.00 · τ2 0.00 (MLLM only)"
    for item, result in zip(comparison.items, studio.outputs.results, strict=True):
        assert result.label == item.label
        assert item.label.startswith(result_caption(result.request))  # one caption format
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
    assert "τ1 0.70 · τ2 0.30" in labels
    assert len(labels) == len(SWEEP_TAUS) + 1
    view = window.workspace.comparison_view  # one seed: one row, each cell under its own setting's label
    positions = [view.grid.getItemPosition(view.grid.indexOf(cell))[:2] for cell in view.cells]
    assert positions == [(1, column) for column in range(len(labels))]
    assert [label.text().split("\n")[0] for label in view.axis_labels] == \
        [label.replace(" · ", " / ").split(" (")[0] for label in labels]


def test_the_sweep_grid_has_equal_cells_in_tau_order_and_axis_labels(make_window, qtbot, images):
    window = make_window()
    window.resize(1200, 800)
    prepare(window, images[:1], steps=2)
    window.studio.controls.set("tau1", 0.7)
    window.studio.controls.set("tau2", 0.3)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.sweep(vary_seed=True)
    view = window.workspace.comparison_view
    at = view.grid.getItemPosition
    columns = [label.text() for label in view.axis_labels if at(view.grid.indexOf(label))[0] == 0]
    rows = [label.text() for label in view.axis_labels if label.text() not in columns]
    assert columns == ["τ1 1.00 / τ2 0.00\nMLLM + VAE throughout", "τ1 0.95 / τ2 0.85\npaper default",
                       "τ1 0.80 / τ2 0.50\nlonger MLLM-only start", "τ1 0.70 / τ2 0.30\nyour setting",
                       "τ1 0.00 / τ2 0.00\nMLLM only"]  # identity to freedom, left to right
    assert rows == ["seed 7", "seed 8"]
    taus = [(r.request.tau1, r.request.tau2) for r in window.studio.outputs.results]
    assert taus[:5] == sorted(taus[:5], reverse=True) and taus[5:] == taus[:5]
    qtbot.waitUntil(lambda: all(cell.view.isVisible() for cell in view.cells), timeout=LONG)
    sizes = {(cell.view.width(), cell.view.height()) for cell in view.cells}  # the images' room, not just the cells'
    widths, heights = {w for w, _ in sizes}, {h for _, h in sizes}
    assert max(widths) - min(widths) <= 1 and max(heights) - min(heights) <= 1, sizes  # equal cells
