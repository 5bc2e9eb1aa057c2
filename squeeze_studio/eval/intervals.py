"""Bootstrap 95 % intervals over examples, for one setting's means and for paired differences.

Every SynthSubjects metric is a mean over examples of a per-example value (``per_example``; NaN where an
example does not count, e.g. orientation on an example that keeps it). Resampling the examples with
replacement ``DRAWS`` times and taking the 2.5th and 97.5th percentiles of the resampled means gives the
interval. Two settings evaluated on the same examples with the same noise are compared *paired*: each
resample draws the same examples for both, so their shared difficulty cancels out.

A difference counts as measured only when its interval excludes zero (``verdict``); otherwise the honest
reading is "no difference measured", however the point estimates fall.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

DRAWS = 2000
SEED = 0
# The per-example values behind the headline numbers, as the JSON records of ``evaluate`` hold them.
METRICS = ("subject_psnr", "aligned_subject_psnr", "psnr", "identity_top1", "adherence_instructed",
           "orientation_changed", "copy_paste")


def per_example(records: Sequence[Mapping], method: str) -> dict[str, np.ndarray]:
    """``method``'s per-example values from ``evaluate``'s example records (NaN where one does not count)."""
    columns: dict[str, list[float]] = {name: [] for name in METRICS}
    for record in records:
        out = record["outputs"][method]
        adherence = list(out.get("adherence", {}).values())
        values = {
            "subject_psnr": out.get("subject_psnr"), "aligned_subject_psnr": out.get("aligned_subject_psnr"),
            "psnr": out.get("psnr"), "identity_top1": out.get("identity_top1"),
            "adherence_instructed": float(np.mean(adherence)) if adherence else None,
            "orientation_changed": out.get("orientation_correct") if record.get("orientation_changed") else None,
            "copy_paste": out.get("copy_paste"),
        }
        for name in METRICS:
            value = values[name]
            columns[name].append(math.nan if value is None else float(value))
    return {name: np.asarray(values, dtype=float) for name, values in columns.items()}


def _resamples(count: int, draws: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, count, size=(draws, count))


def _interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return None
    low, high = np.percentile(samples, [2.5, 97.5])
    return [float(low), float(high)]


def _nanmean_rows(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    picked = values[index]
    counts = (~np.isnan(picked)).sum(axis=1)
    sums = np.nansum(picked, axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def mean_interval(values: np.ndarray, draws: int = DRAWS, seed: int = SEED) -> list[float] | None:
    """The 95 % bootstrap interval of the mean of ``values`` (NaNs left out of each resample)."""
    values = np.asarray(values, dtype=float)
    if not len(values) or np.isnan(values).all():
        return None
    return _interval(_nanmean_rows(values, _resamples(len(values), draws, seed)))


def difference(a: np.ndarray, b: np.ndarray, draws: int = DRAWS, seed: int = SEED) -> dict:
    """Paired ``mean(a) - mean(b)`` over the same examples: {"delta", "ci95"}. An example counts where both
    values do (orientation: where the instruction changes it, for both)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same examples ({a.shape} vs {b.shape})")
    both = ~np.isnan(a) & ~np.isnan(b)
    if not both.any():
        return {"delta": None, "ci95": None}
    a, b = np.where(both, a, np.nan), np.where(both, b, np.nan)
    index = _resamples(len(a), draws, seed)
    delta = float(np.nanmean(a) - np.nanmean(b))
    return {"delta": delta, "ci95": _interval(_nanmean_rows(a, index) - _nanmean_rows(b, index))}


def intervals(records: Sequence[Mapping], method: str) -> dict[str, list[float] | None]:
    """Every metric's 95 % interval for ``method``."""
    return {name: mean_interval(values) for name, values in per_example(records, method).items()}


def format_interval(ci95: Sequence[float] | None, digits: int, signed: bool = False) -> str:
    """`` [low, high]`` to append to a mean or a difference (``signed``: with +/-), or "" without an interval."""
    if not ci95:
        return ""
    sign = "+" if signed else ""
    return f" [{ci95[0]:{sign}.{digits}f}, {ci95[1]:{sign}.{digits}f}]"


def format_difference(pair: Mapping, digits: int, unit: str = "") -> str:
    """A ``difference`` as text, e.g. ``+0.08 dB [+0.05, +0.12]``."""
    if pair.get("delta") is None:
        return "–" + unit
    return f"{pair['delta']:+.{digits}f}{unit}" + format_interval(pair.get("ci95"), digits, signed=True)


def verdict(ci95: Sequence[float] | None, paper_sign: int | None = None) -> str:
    """How a difference reads: "higher" / "lower" only when its interval excludes zero, else "no difference
    measured"; with ``paper_sign`` (+1 or -1, the paper's direction) "agrees with the paper" or "disagrees
    with the paper" instead of higher/lower."""
    if ci95 is None:
        return "not measured"
    low, high = ci95
    if low <= 0 <= high:
        return "no difference measured"
    sign = 1 if low > 0 else -1
    if paper_sign is None:
        return "higher" if sign > 0 else "lower"
    return "agrees with the paper" if sign == paper_sign else "disagrees with the paper"


def ratio_interval(numerators: np.ndarray, denominators: np.ndarray, draws: int = DRAWS, seed: int = SEED
                   ) -> list[float] | None:
    """The 95 % bootstrap interval of ``sum(numerators) / sum(denominators)`` with the examples (one entry of
    each per example, e.g. true positives and flagged outputs) resampled; resamples with no denominator are
    left out. ``None`` when there is nothing to divide by."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    if not len(den) or den.sum() == 0:
        return None
    index = _resamples(len(den), draws, seed)
    totals = den[index].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _interval(np.where(totals > 0, num[index].sum(axis=1) / totals, np.nan))
