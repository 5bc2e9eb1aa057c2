"""One caption format for results, wherever they are shown (canvas, history, comparison), and the sweep groups of
the history strip.

A result reads "seed 7 · τ1 0.95 · τ2 0.85 · 1.2 s" (then, just made, "· 24 passes", or "· 15/24 passes" when the
step cache skipped some); under a history thumbnail, the same in two short lines.
"""
from __future__ import annotations

from collections.abc import Sequence

from ...request import GenerationRequest
from .sweep import SWEEP_SEEDS


def result_caption(request: GenerationRequest, seconds: float | None = None, info: dict | None = None) -> str:
    parts = [f"seed {request.seed}", f"τ1 {request.tau1:.2f} · τ2 {request.tau2:.2f}"]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    passes = (info or {}).get("forward_passes")
    if passes is not None:
        full = info.get("full_passes", passes)
        parts.append(f"{passes} passes" if full == passes else f"{full}/{passes} passes")
    return " · ".join(parts)


def thumbnail_caption(request: GenerationRequest) -> tuple[str, str]:
    """The two lines under a history thumbnail."""
    return f"seed {request.seed}", f"τ {request.tau1:.2f}/{request.tau2:.2f}"


def _base(request: GenerationRequest) -> GenerationRequest:
    """What every cell of one sweep shares: all but the stage settings and the seed."""
    return request.replace(tau1=0.0, tau2=0.0, seed=0)


def sweep_groups(records: Sequence) -> list[tuple[int, int]]:
    """``(first, last)`` index ranges (inclusive) of consecutive history records made by one sweep.

    The index keeps no job id, so a sweep is recognised by its cells: consecutive records with a sweep label that
    share everything but τ and the seed. A setting that comes back, or seeds further apart than one sweep draws,
    starts the next group (two sweeps of the same request, one after the other)."""
    groups: list[tuple[int, int]] = []
    start, seen, seeds, base = None, set(), set(), None
    for index, record in enumerate([*records, None]):
        request = record.request if record is not None and record.label else None
        key = None if request is None else (request.tau1, request.tau2, request.seed)
        fits = (request is not None and start is not None and _base(request) == base and key not in seen
                and max(seeds | {request.seed}) - min(seeds | {request.seed}) < SWEEP_SEEDS)
        if fits:
            seen.add(key)
            seeds.add(request.seed)
            continue
        if start is not None and index - start > 1:
            groups.append((start, index - 1))
        start, seen, seeds, base = (None, set(), set(), None) if request is None else \
            (index, {key}, {request.seed}, _base(request))
    return groups
