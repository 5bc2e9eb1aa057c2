"""The stage-balance sweep: which tau settings (and seeds) one click compares, from one MLLM encoding."""
from __future__ import annotations

from ...request import DEFAULT_TAU1, DEFAULT_TAU2

# MLLM + VAE at every step (the joint baseline), the paper's default, a longer MLLM-only opening, MLLM only
# throughout. The user's current setting is added when it differs; the columns run from identity to freedom (τ1, then
# τ2, falling).
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
        taus.append(current)
    taus.sort(key=lambda pair: (-pair[0], -pair[1]))
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
    """What a sweep cell is, in the results' one caption format: e.g. "seed 8 · τ1 0.95 · τ2 0.85 (paper default)"."""
    parts = [f"seed {variation['seed']}"] if "seed" in variation else []
    parts += [f"{name} {variation[key]:.2f}" for key, name in (("tau1", "τ1"), ("tau2", "τ2")) if key in variation]
    parts += [f"CFG {variation['guidance_scale']:g}"] if "guidance_scale" in variation else []
    preset = PRESET_NAMES.get((variation.get("tau1"), variation.get("tau2")))
    return " · ".join(parts) + (f" ({preset})" if preset else "")


def sweep_axes(variations: list[dict], columns: int) -> tuple[list[str], list[str]]:
    """The grid's axis labels: one per column (its τ1 / τ2 and the preset's name) and one per row (its seed; none
    when the sweep keeps one seed)."""
    column_labels = []
    for variation in variations[:columns]:
        tau1, tau2 = variation["tau1"], variation["tau2"]
        preset = PRESET_NAMES.get((tau1, tau2), "your setting")
        column_labels.append(f"τ1 {tau1:.2f} / τ2 {tau2:.2f}\n{preset}")
    rows = variations[::columns] if columns else []
    row_labels = [f"seed {v['seed']}" for v in rows if "seed" in v]
    return column_labels, row_labels
