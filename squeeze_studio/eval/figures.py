"""The stage-balance trade-off figure: identity against adherence and against copy-paste, one labelled
point per (tau1, tau2) setting (with its seconds per image), the copy-reference baseline as a reference
mark. Matplotlib's Agg canvas, no display needed.

With SynthSubjects truth: subject PSNR vs instructed adherence, and subject PSNR vs copy-paste rate.
Without it (DreamBench metrics only): DINO vs CLIP-T, the paper's own trade-off axes.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# The exact-target baseline is left out: its capped PSNR would squash every other point.
BASELINE_MARKS = {"copy_reference": ("s", "tab:red")}


def _synth_value(block: dict, key: str):
    synth = block.get("synth")
    if not synth:
        return None
    value = synth[key]
    return value.get("rate") if isinstance(value, dict) else value


def _db_value(block: dict, key: str):
    db = block.get("dreambench")
    return db.get(key) if db else None


def _panels(report: dict) -> list[tuple[str, str, Callable, Callable]]:
    """(x label, y label, x getter, y getter) per panel, from what the report holds."""
    first = next(iter(report["results"].values()))
    if first.get("synth"):
        identity = ("subject PSNR (dB)", lambda b: _synth_value(b, "subject_psnr"))
        return [
            ("adherence (instructed attributes)", identity[0], lambda b: _synth_value(b, "adherence_instructed"),
             identity[1]),
            ("copy-paste rate", identity[0], lambda b: _synth_value(b, "copy_paste"), identity[1]),
        ]
    if first.get("dreambench") and "dino" in first["dreambench"] and "clip_t" in first["dreambench"]:
        return [("CLIP-T (instruction)", "DINO (identity)", lambda b: _db_value(b, "clip_t"),
                 lambda b: _db_value(b, "dino"))]
    raise ValueError("--figure needs SynthSubjects truth in the data, or both --dino and --clip")


def _label(label: str, block: dict) -> str:
    seconds = block.get("seconds_per_image")
    return f"{label}, {seconds:.2g} s/img" if seconds is not None else label


def _overlaps(earlier: list, x: float, y: float) -> int:
    """How many earlier points sit (almost) where this one does, so its label can go above theirs."""
    xs, ys = [p[1] for p in earlier] + [x], [p[2] for p in earlier] + [y]
    dx, dy = max(max(xs) - min(xs), 1.0) * 0.03, max(max(ys) - min(ys), 1.0) * 0.03
    return sum(abs(p[1] - x) <= dx and abs(p[2] - y) <= dy for p in earlier)


def plot_tradeoff(report: dict, path: str | os.PathLike) -> Path:
    """Draw the trade-off figure of ``report`` (``evaluate.evaluate``'s result) to ``path`` (PNG)."""
    # The Agg canvas attached to this figure only: no global backend switch (the app may run Qt).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(report)
    labels = {s["name"]: s["label"] for s in report["settings"]}
    fig = Figure(figsize=(5.2 * len(panels), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (xlabel, ylabel, get_x, get_y) in zip(axes, panels, strict=True):
        unit_x = "rate" in xlabel or "adherence" in xlabel  # shares in [0, 1]: a fixed axis compares runs
        points = [(_label(labels[n], b), get_x(b), get_y(b)) for n, b in report["results"].items()]
        points = [p for p in points if p[1] is not None and p[2] is not None]
        if points:
            ax.scatter([p[1] for p in points], [p[2] for p in points], color="tab:blue", zorder=3)
        for k, (label, x, y) in enumerate(points):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4 + 10 * _overlaps(points[:k], x, y)),
                        fontsize=8)
        for name, (marker, colour) in BASELINE_MARKS.items():
            block = report["baselines"].get(name, {})
            x, y = get_x(block), get_y(block)
            if x is not None and y is not None:
                ax.plot([x], [y], marker, color=colour, label=f"baseline: {name}", markersize=9)
        if unit_x:
            ax.set_xlim(-0.05, 1.05)
        ax.margins(y=0.15)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    n = report["counts"]["examples"]
    fig.suptitle(f"Stage balance (tau1/tau2), {n} examples, {report['generation']['steps']} steps", fontsize=10)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
