"""The evaluation loop: examples x stage settings -> outputs -> scores -> one JSON-ready report.

Settings run inside the example loop so the MLLM encoding of an example is made once and reused by
every setting (``counts.mllm_runs`` shows it). Each output is scored as soon as it exists and only its
scores are kept, so memory does not grow with the image size.
"""
from __future__ import annotations

import os
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence

from PIL import Image
from tqdm import tqdm

from . import dreambench, intervals, synth_metrics
from .baselines import BASELINES
from .data import EvalExample, load_examples
from .grid import save_grid
from .runner import Runner, as_array
from .settings import StageSetting, unique_settings

REPORT_VERSION = 1


def evaluate(
    data: str | os.PathLike,
    model: str | os.PathLike,
    settings: Sequence[StageSetting],
    *,
    limit: int | None = None,
    steps: int = 20,
    cfg: float = 2.5,
    seed: int = 0,
    size: int = 64,
    device: str | None = None,
    dino: str | os.PathLike | None = None,
    clip: str | os.PathLike | None = None,
    progress: bool = True,
    grid: str | os.PathLike | None = None,
    grid_rows: int = 12,
    addon: str | os.PathLike | None = None,
    memory: str = "auto",
) -> dict:
    """Evaluate ``model`` on the dataset at ``data`` at each stage setting; returns the report (see
    ``report.py`` for how it is written). Bad input raises a one-line ``ValueError`` before generating."""
    settings = unique_settings(settings)
    if not settings:
        raise ValueError("no stage settings to evaluate")
    examples = load_examples(data, limit)
    runner = Runner(model, device=device, steps=steps, cfg=cfg, size=size, seed=seed, addon=addon, memory=memory)
    scorer = dreambench.DreamBenchScorer(dino, clip, runner.device) if dino or clip else None
    methods = [s.name for s in settings] + list(BASELINES)

    synth_scores: dict[str, list] = defaultdict(list)
    db_scores: dict[str, list] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    encode_seconds: list[float] = []
    stages: dict[str, str] = {}
    records, grid_cells = [], []
    if examples:  # one untimed run first: lazy set-up must not land on the first setting's seconds
        first = examples[0]
        runner.generate(first.load_references(), first.instruction, settings[0], first.index)
    bar = tqdm(total=len(examples) * len(settings), desc="eval", unit="img", file=sys.stderr, disable=not progress)
    with bar:
        for ex in examples:
            references = ex.load_references()
            target = ex.load_target()
            encode_seconds.append(runner.encode(references, ex.instruction))
            outputs = {}
            for setting in settings:
                bar.set_postfix_str(f"#{ex.index} {setting.name}")
                generated = runner.generate(references, ex.instruction, setting, ex.index)
                outputs[setting.name] = generated.image
                seconds[setting.name].append(generated.seconds)
                stages.setdefault(setting.name, generated.stages)
                bar.update(1)
            target_image = Image.fromarray(target)
            for name, make in BASELINES.items():
                outputs[name] = make(references, target_image)
            records.append(_score_example(ex, references, target, outputs, scorer, synth_scores, db_scores))
            if grid is not None and len(grid_cells) < grid_rows:
                grid_cells.append([references[0], target_image] + [outputs[s.name] for s in settings])
    if grid is not None:
        save_grid(grid_cells, ["reference 1", "target"] + [s.label for s in settings], grid)

    def block(name: str) -> dict:
        synth = synth_metrics.aggregate(synth_scores[name]) if synth_scores[name] else None
        if synth is not None:  # per-example hits go to the records, then every metric gets its interval
            for record, hit in zip(scored, synth["identity_retrieval"].pop("hits"), strict=True):
                record["outputs"][name]["identity_top1"] = hit
            synth["ci95"] = intervals.intervals(scored, name)
        return {"synth": synth, "dreambench": dreambench.aggregate(db_scores[name]) if db_scores[name] else None}

    scored = [r for r in records if "target" in r]  # the examples with SynthSubjects truth, as scored

    results = {}
    for s in settings:
        results[s.name] = {**block(s.name), "seconds_per_image": statistics.fmean(seconds[s.name]),
                           "seconds_per_image_median": statistics.median(seconds[s.name])}
    return {
        "version": REPORT_VERSION,
        "data": str(data),
        "model": str(model),
        "addon": str(addon) if addon else None,
        "device": runner.device,
        "generation": {"steps": steps, "cfg": cfg, "seed": seed, "size": size,
                       "seeds": "seed + example index, the same for every setting"},
        "settings": [{**s.to_dict(), "stages": stages.get(s.name)} for s in settings],
        "counts": {
            "examples": len(examples),
            "synth_examples": len(synth_scores[methods[0]]),
            "dreambench_metrics": list(scorer.metrics) if scorer else [],
            "outputs": len(examples) * len(settings),
            "mllm_runs": runner.mllm_runs,
        },
        "results": results,
        "baselines": {name: block(name) for name in BASELINES},
        "timing": {"encode_seconds_per_example": statistics.fmean(encode_seconds)},
        "examples": records,
    }


def _score_example(ex: EvalExample, references, target, outputs: dict, scorer, synth_scores, db_scores) -> dict:
    """Scores every output of one example into the per-method lists; returns its small JSON record."""
    per_method: dict[str, dict] = {name: {} for name in outputs}
    mask = ex.load_target_mask(target) if ex.truth is not None else None
    if mask is not None:
        for name, image in outputs.items():
            score = synth_metrics.score_output(as_array(image), target, mask, ex.truth)
            synth_scores[name].append(score)
            per_method[name].update(score.to_record())
    if scorer is not None:
        embedded = scorer.references(references)
        for name, score in zip(outputs, scorer.score(list(outputs.values()), embedded, ex.instruction), strict=True):
            db_scores[name].append(score)
            per_method[name].update(score)
    record = {"index": ex.index, "instruction": ex.instruction, "references": len(references), "outputs": per_method}
    if ex.truth is not None:
        record.update(subject_seed=ex.truth.subject.seed, variant=ex.truth.variant,
                      target=ex.truth.target.to_dict(), instructed=list(ex.truth.instructed),
                      orientation_changed=synth_metrics.orientation_changed(ex.truth))
    return record
