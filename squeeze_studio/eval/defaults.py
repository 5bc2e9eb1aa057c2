"""``squeeze eval --write-default``: store the stage setting that measured best as the model's default.

The chosen setting goes into the add-on (or the Squeeze folder) with the metric, its value and the data it
was chosen on, so the window and the CLI can say where a default came from.
"""
from __future__ import annotations

# metric name -> (report block, key); higher is better for all of them
METRICS = {
    "adherence": ("synth", "adherence_instructed"),
    "subject_psnr": ("synth", "subject_psnr"),
    "aligned_subject_psnr": ("synth", "aligned_subject_psnr"),
    "dino": ("dreambench", "dino"),
    "clip_i": ("dreambench", "clip_i"),
    "clip_t": ("dreambench", "clip_t"),
}


def best_setting(report: dict, metric: str) -> tuple[dict, float]:
    """The report's setting with the highest ``metric`` and that value; ``ValueError`` when none has it."""
    block, key = METRICS[metric]
    scored = []
    for setting in report["settings"]:
        value = (report["results"][setting["name"]].get(block) or {}).get(key)
        if value is not None:
            scored.append((float(value), setting))
    if not scored:
        raise ValueError(f"the report has no {metric} scores to choose a default from")
    value, setting = max(scored, key=lambda pair: pair[0])
    return setting, value


def write_best_default(report: dict, metric: str, model, addon) -> str:
    """Write the best setting into ``model``/``addon``; returns a one-line account of what was stored where."""
    from ..hub.defaults import StageDefaults
    from ..hub.resolve import resolve_model, write_stage_defaults

    setting, value = best_setting(report, metric)
    count = report["counts"]["examples"]
    origin = (f"squeeze eval --tau-sweep: best {metric} ({value:.3f}) of {len(report['settings'])} settings "
              f"on {count} examples of {report['data']}")
    defaults = StageDefaults(setting["tau1"], setting["tau2"], report["generation"]["cfg"], origin)
    path = write_stage_defaults(resolve_model(model, addon), defaults)
    return f"stored tau1 {defaults.tau1:g} / tau2 {defaults.tau2:g} / cfg {defaults.guidance_scale:g} in {path}"
