"""Training-loss curves from a work folder's ``*/progress.json`` logs (what ``squeeze train demo`` writes), one
line per stage, drawn end to end on one step axis. Matplotlib's Agg canvas, no display needed.

    squeeze train curves --run v4=work/demo:stage1,stage2,stage2-restart --out curves.png
"""
from __future__ import annotations

import json
from pathlib import Path


def stage_logs(work: str | Path, stages: list[str]) -> list[tuple[str, list[dict]]]:
    """(stage folder, its logged records) for each of ``stages`` under ``work``; a one-line ``ValueError`` when
    one has no log."""
    out = []
    for stage in stages:
        path = Path(work) / stage / "progress.json"
        if not path.is_file():
            raise ValueError(f"no training log at {path}")
        out.append((stage, json.loads(path.read_text()).get("log", [])))
    return out


def plot_curves(runs: dict[str, list[tuple[str, list[dict]]]], out: str | Path) -> Path:
    """``runs``: {run label: [(stage, records), ...]}. Each run's stages follow one another on the step axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.2), dpi=110)
    for color, (label, stages) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs.items(), strict=False):
        offset = 0
        for i, (stage, records) in enumerate(stages):
            steps = [offset + r["step"] for r in records]
            axis.plot(steps, [r["loss"] for r in records], color=color, linestyle=("-", "--", ":")[i % 3],
                      label=f"{label}: {stage}")
            offset = steps[-1] if steps else offset
    axis.set_xlabel("optimiser step (stages end to end)")
    axis.set_ylabel("flow-matching loss (mean of 50 steps)")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
