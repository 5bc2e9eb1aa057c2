"""Pairwise picks -> the stage setting this user prefers: a Bradley-Terry fit over the settings they compared.

Each pick says "result A is better than result B". What differs between A and B that the studio can learn from
is the stage setting, (τ1, τ2, guidance): picks between two results of the same setting (two seeds) say nothing
about settings and are left out. Every setting that took part in a pick gets a strength ``s``, with
P(A beats B) = σ(s_A − s_B) (Bradley and Terry 1952), fitted by maximum a posteriori with a Gaussian prior of
standard deviation ``PRIOR_SD`` on each strength, so a setting seen in one pick is not crowned by it. Plain
Python: a few hundred picks over a few dozen settings fit in milliseconds, and the window imports no numpy.

The paper ran a user study to choose its defaults; this is the same question at the scale of one user.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MIN_PICKS = 8        # informative picks before "your default" is shown at all
MIN_APPEARANCES = 2  # a setting must have taken part in this many picks to be named
PRIOR_SD = 1.0
ITERATIONS = 400
STEP = 0.25

Setting = tuple[float, float, float]  # tau1, tau2, guidance_scale (rounded to 2 decimals)


def setting_of(values: dict) -> Setting:
    """The (τ1, τ2, guidance) of a request's or recipe's fields, rounded as the stage bar rounds them."""
    return (round(float(values["tau1"]), 2), round(float(values["tau2"]), 2), round(float(values["guidance_scale"]), 2))


@dataclass(frozen=True)
class Preference:
    setting: Setting
    strength: float     # the fitted log-strength (0 = the prior's mean)
    appearances: int    # picks this setting took part in
    picks: int          # informative picks the whole fit rests on

    def words(self) -> str:
        tau1, tau2, guidance = self.setting
        return f"your default τ1 {tau1:.2f} / τ2 {tau2:.2f}, guidance {guidance:g} (from {self.picks} picks)"


def informative(picks: Iterable[tuple[Setting, Setting]]) -> list[tuple[Setting, Setting]]:
    """The (winner, loser) pairs whose settings differ."""
    return [(winner, loser) for winner, loser in picks if winner != loser]


def fit_strengths(picks: Iterable[tuple[Setting, Setting]], prior_sd: float = PRIOR_SD) -> dict[Setting, float]:
    """MAP Bradley-Terry log-strengths of every setting in ``picks`` (winner, loser). The objective is strictly
    concave (the prior), so plain gradient ascent from zero converges; ``STEP`` is below 1 / its curvature bound
    for the pick counts a person makes."""
    pairs = informative(picks)
    strengths = {setting: 0.0 for pair in pairs for setting in pair}
    if not pairs:
        return strengths
    appearances = {setting: 0 for setting in strengths}
    for winner, loser in pairs:
        appearances[winner] += 1
        appearances[loser] += 1
    precision = 1.0 / prior_sd**2
    for _ in range(ITERATIONS):
        gradient = {setting: -precision * value for setting, value in strengths.items()}
        for winner, loser in pairs:
            surprise = 1.0 / (1.0 + math.exp(strengths[winner] - strengths[loser]))  # 1 - P(winner beats loser)
            gradient[winner] += surprise
            gradient[loser] -= surprise
        # Each coordinate's curvature is at most precision + appearances / 4: scale the step by it (Jacobi).
        for setting in strengths:
            strengths[setting] += STEP * 4 * gradient[setting] / (4 * precision + appearances[setting])
    return strengths


def preferred_setting(picks: Iterable[tuple[Setting, Setting]], min_picks: int = MIN_PICKS) -> Preference | None:
    """The strongest setting that took part in at least ``MIN_APPEARANCES`` picks, once ``min_picks`` informative
    picks exist; ``None`` before (the stage bar then shows only the paper's and the model's defaults)."""
    pairs = informative(picks)
    if len(pairs) < min_picks:
        return None
    strengths = fit_strengths(pairs)
    appearances: dict[Setting, int] = {}
    for pair in pairs:
        for setting in pair:
            appearances[setting] = appearances.get(setting, 0) + 1
    named = [s for s in strengths if appearances[s] >= MIN_APPEARANCES]
    if not named:
        return None
    best = max(named, key=lambda s: (strengths[s], appearances[s]))
    return Preference(best, strengths[best], appearances[best], len(pairs))
