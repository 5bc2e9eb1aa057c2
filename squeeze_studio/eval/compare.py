"""``squeeze compare``: two evaluated settings on the same examples, metric by metric, paired.

    squeeze compare docs/demo-model/eval-test.json:0.95/0.85 docs/demo-model/controls/mllm-only-eval.json:0/0

Each side is a report written by ``squeeze eval --json`` and one of its settings (or baselines). Both must
have scored the same examples in the same order (same data, same seeds), so that each example's difference
can be taken; the interval is the bootstrap's (``intervals``).
"""
from __future__ import annotations

import json
from pathlib import Path

from . import intervals

LABELS = {"subject_psnr": ("subject PSNR", " dB", 2), "aligned_subject_psnr": ("aligned subject PSNR", " dB", 2),
          "psnr": ("PSNR", " dB", 2), "identity_top1": ("identity top-1", "", 3),
          "adherence_instructed": ("adherence", "", 3), "orientation_changed": ("orientation (changed)", "", 3),
          "copy_paste": ("copy-paste", "", 3)}


def load_side(spec: str) -> tuple[str, str, list[dict]]:
    """``"REPORT.json:SETTING"`` -> (report path, setting, records); a one-line ``ValueError`` otherwise."""
    path, sep, setting = spec.rpartition(":")
    if not sep or not path:
        raise ValueError(f"want REPORT.json:SETTING, e.g. eval.json:0.95/0.85 (got {spec!r})")
    if not Path(path).is_file():
        raise ValueError(f"report not found: {path}")
    try:
        report = json.loads(Path(path).read_text())
        records = report["examples"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path} is not a squeeze eval report with per-example records") from None
    names = list(report.get("results", {})) + list(report.get("baselines", {}))
    if setting not in names:
        raise ValueError(f"{path} has no setting {setting!r}; it has: {', '.join(names)}")
    return path, setting, records


def compare(side_a: str, side_b: str) -> list[dict]:
    """Per metric: {"metric", "a", "b", "delta", "ci95", "verdict"} for mean(a) - mean(b), paired by example."""
    _, name_a, records_a = load_side(side_a)
    _, name_b, records_b = load_side(side_b)
    if [r["index"] for r in records_a] != [r["index"] for r in records_b]:
        raise ValueError("the two reports scored different examples; compare reports of the same data and limit")
    values_a, values_b = intervals.per_example(records_a, name_a), intervals.per_example(records_b, name_b)
    rows = []
    for metric in intervals.METRICS:
        pair = intervals.difference(values_a[metric], values_b[metric])
        rows.append({"metric": metric, "a": _nanmean(values_a[metric]), "b": _nanmean(values_b[metric]), **pair,
                     "verdict": intervals.verdict(pair["ci95"])})
    return rows


def _nanmean(values) -> float | None:
    import numpy as np

    return None if np.isnan(values).all() else float(np.nanmean(values))


def markdown(rows: list[dict], side_a: str, side_b: str) -> str:
    def fmt(value, digits):
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [f"| metric | A: {side_a} | B: {side_b} | A − B [95 % CI] | reading |", "|---|---|---|---|---|"]
    for row in rows:
        label, unit, digits = LABELS[row["metric"]]
        delta = intervals.format_difference(row, digits, unit)
        lines.append(f"| {label} | {fmt(row['a'], digits)} | {fmt(row['b'], digits)} | {delta} | {row['verdict']} |")
    return "\n".join(lines)
