"""The stage-balance sweep: which tau settings (and seeds) one click compares, from one MLLM encoding."""
from __future__ import annotations

from ...request import DEFAULT_TAU1, DEFAULT_TAU2

# Left to right: MLLM + VAE at every step (the joint baseline), the paper's default, a longer
# MLLM-only opening, MLLM only throughout. The user's current setting is added when it differs.
SWEEP_TAUS: list[tuple[float, float]] = [(1.0, 0.0), (DEFAULT_TAU1, DEFAULT_TAU2), (0.8, 0.5), (0.0, 0.0)]
PRESET_NAMES = {
    (1.0, 0.0): "MLLM + VAE throughout",
    (DEFAULT_TAU1, DEFAULT_TAU2): "paper default",
    (0.8, 0.5): "longer MLLM-only start",
    (0.0, 0.0): "MLLM only",
}
SWEEP_SEEDS = 2  # seeds per tau setting when "vary seed" is on


def sweep_variations(tau1: float, tau2: float, seed: int, vary_seed: bool) -> tuple[list[dict], int]:
    """The variations for ``engine.sweep`` (rows of seeds, columns of tau settings) and the column count."""
    taus = list(SWEEP_TAUS)
    current = (round(tau1, 3), round(tau2, 3))
    if current not in [(round(a, 3), round(b, 3)) for a, b in taus]:
        taus.insert(0, current)
    seeds = [seed + i for i in range(SWEEP_SEEDS)] if vary_seed else [None]
    variations = []
    for row_seed in seeds:
        for t1, t2 in taus:
            variation: dict = {"tau1": float(t1), "tau2": float(t2)}
            if row_seed is not None:
                variation["seed"] = row_seed
            variations.append(variation)
    return variations, len(taus)


def variation_label(variation: dict) -> str:
    """What a sweep cell shows, e.g. "τ1 0.95 · τ2 0.85 · seed 8 (paper default)"."""
    names = {"tau1": "τ1", "tau2": "τ2", "seed": "seed", "guidance_scale": "CFG"}
    parts = [f"{names.get(key, key)} {value:g}" if isinstance(value, float) else f"{names.get(key, key)} {value}"
             for key, value in variation.items()]
    preset = PRESET_NAMES.get((variation.get("tau1"), variation.get("tau2")))
    return " · ".join(parts) + (f" ({preset})" if preset else "")
