"""Validates the copy-paste score (``squeeze_studio.copy_paste``) against the eval's copy-paste label on
SynthSubjects: the threshold is chosen on one split and precision and recall are reported on another.

Each example of a split gives several outputs, pasted and not:

- ``copy``: reference 1 unchanged (the eval's "copy reference 1" baseline);
- ``jitter``: a reference moved up to ``JITTER_PX`` px, resized by up to ``JITTER_SCALE``, re-lit and noised;
- ``moved``: the first reference's scene re-rendered with the target's position and orientation (same subject,
  background and scale: the pose and placement changed, nothing else);
- ``target``: the exact target;
- one per ``--taus`` setting: the model's output (generated once into ``--outputs``, then reused).

The label is the eval's (``synth.metrics.is_copy_paste`` on the attributes read from the output); outputs of
examples where it cannot tell (some reference already has the target's position and orientation) are left out,
as the eval leaves them out. Intervals: bootstrap over examples (all outputs of an example drawn together).

    python -m squeeze_studio.eval.copy_paste_check --choose work/cp/choose --report work/cp/report \\
        --outputs work/cp/outputs --json docs/copy-paste.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from .. import copy_paste
from ..synth import metrics
from ..synth.scene import render_scene
from .data import EvalExample, load_examples
from .intervals import ratio_interval
from .settings import parse_taus

JITTER_PX = 3 / 64  # of the image side
JITTER_SCALE = 0.08
MODEL_SETTINGS = ("0.95,0.85,text",)  # the demo's default


def jittered(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``image`` moved, resized about its centre, re-lit and noised a little; edges repeat outwards."""
    w, h = image.size
    pad = max(w, h) // 4
    array = np.pad(np.asarray(image.convert("RGB")), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    scale = 1 + rng.uniform(-JITTER_SCALE, JITTER_SCALE)
    dx, dy = (rng.integers(-round(JITTER_PX * s), round(JITTER_PX * s) + 1) for s in (w, h))
    cx, cy = pad + w / 2, pad + h / 2
    # output pixel p reads input (p - c - d) / scale + c
    matrix = (1 / scale, 0, cx - (cx + dx) / scale, 0, 1 / scale, cy - (cy + dy) / scale)
    moved = Image.fromarray(array).transform(array.shape[1::-1], Image.AFFINE, matrix, Image.BILINEAR)
    out = np.asarray(moved, dtype=np.float64)[pad : pad + h, pad : pad + w] * rng.uniform(0.9, 1.1)
    out += rng.normal(0, 4, out.shape)
    return Image.fromarray(np.clip(out, 0, 255).round().astype(np.uint8))


def free_outputs(example: EvalExample, references: list[Image.Image], rng: np.random.Generator) -> dict:
    """The outputs made without a model."""
    truth = example.truth
    size = references[0].size[0]
    pose = {"position": truth.target.position, "orientation": truth.target.orientation}
    moved = render_scene(truth.subject, replace(truth.references[0], **pose), size)[0]
    return {"copy": references[0], "jitter": jittered(references[int(rng.integers(len(references)))], rng),
            "moved": Image.fromarray(moved), "target": Image.fromarray(example.load_target())}


def model_outputs(examples: list[EvalExample], model: str | None, settings: list[str], folder: Path) -> None:
    """Generate the missing ``folder/SETTING/INDEX.png`` (fixed seeds: the eval's, seed = example index)."""
    missing = [(s, ex) for s in settings for ex in examples if not _output_path(folder, s, ex).is_file()]
    if not missing:
        return
    from .runner import Runner

    runner = Runner(model)
    for done, (setting, ex) in enumerate(missing, 1):
        image = runner.generate(ex.load_references(), ex.instruction, parse_taus(setting), ex.index).image
        path = _output_path(folder, setting, ex)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        print(f"\r{folder.name}: {done}/{len(missing)} generated", end="", file=sys.stderr)
    print(file=sys.stderr)


def _output_path(folder: Path, setting: str, example: EvalExample) -> Path:
    return folder / setting.replace(",", "_") / f"{example.index:06d}.png"


def label(image: Image.Image, example: EvalExample) -> bool | None:
    """The eval's copy-paste label of ``image`` (``None``: the example cannot tell)."""
    truth = example.truth
    target = example.load_target()
    array = np.asarray(image.convert("RGB").resize(target.shape[1::-1], Image.BILINEAR))
    return metrics.is_copy_paste(metrics.read_attributes(array, truth.subject), truth.target, truth.references)


def score_split(data: str, model: str | None, settings: list[str], outputs: Path, seed: int,
                limit: int | None = None) -> list[dict]:
    """One record per eligible (example, output): example index, source, label, score and reference."""
    examples = [ex for ex in load_examples(data, limit) if ex.truth is not None]
    folder = outputs / Path(data).name
    model_outputs(examples, model, settings, folder)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "labels.json"  # the labels take most of the time; the outputs they label are fixed
    labels = json.loads(cache.read_text()) if cache.is_file() else {}
    items = []
    for ex in examples:
        references = ex.load_references()
        made = free_outputs(ex, references, rng)
        made.update({s: Image.open(_output_path(folder, s, ex)).convert("RGB") for s in settings})
        for source, image in made.items():
            key = f"{ex.index}:{source}"
            if key not in labels:
                labels[key] = label(image, ex)
            truth = labels[key]
            if truth is None:
                continue
            found = copy_paste.copy_paste(image, references)
            items.append({"example": ex.index, "source": source, "label": truth, "score": round(found.score, 4),
                          "reference": found.reference})
        cache.write_text(json.dumps(labels))
        print(f"\r{folder.name}: {ex.index + 1}/{len(examples)} scored", end="", file=sys.stderr)
    print(file=sys.stderr)
    return items


def choose_threshold(items: list[dict]) -> float:
    """The threshold (two decimals) with the best F1 against the label (the lowest of equals)."""
    return max(np.round(np.arange(0.0, 1.0, 0.01), 2).tolist(), key=lambda t: _f1(items, t))


def compare_designs(data: str, model: str | None, settings: list[str], outputs: Path, limit: int | None
                    ) -> list[dict]:
    """The measure's design choices tried on the ``data`` split (the one the threshold is chosen on): windows
    weighted by information or not, alignments down to half or 80 % overlap. Each with its ROC AUC and best F1."""
    kept = copy_paste.WEIGHTED, copy_paste.MIN_OVERLAP
    rows = []
    try:
        for weighted, overlap in ((True, 0.5), (True, 0.8), (False, 0.5), (False, 0.8)):
            copy_paste.WEIGHTED, copy_paste.MIN_OVERLAP = weighted, overlap
            items = score_split(data, model, settings, outputs, 0, limit)
            threshold = choose_threshold(items)
            rows.append({"weighted": weighted, "min_overlap": overlap, "auc": round(_auc(items), 4),
                         "threshold": threshold, "f1": round(_f1(items, threshold), 4)})
    finally:
        copy_paste.WEIGHTED, copy_paste.MIN_OVERLAP = kept
    return rows


def _auc(items: list[dict]) -> float:
    scores = np.array([i["score"] for i in items])
    labels = np.array([i["label"] for i in items], dtype=bool)
    pos, neg = scores[labels][:, None], scores[~labels][None]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def _f1(items: list[dict], threshold: float) -> float:
    flagged = np.array([i["score"] >= threshold for i in items])
    labels = np.array([i["label"] for i in items], dtype=bool)
    return float(2 * (flagged & labels).sum() / max(1, flagged.sum() + labels.sum()))


def agreement(items: list[dict], threshold: float) -> dict:
    """Precision and recall against the label at ``threshold``, with 95 % intervals over examples; and each
    source's flagged share."""
    examples = sorted({i["example"] for i in items})
    row = {e: k for k, e in enumerate(examples)}

    def per_example(keep) -> np.ndarray:
        counts = np.zeros(len(examples))
        for i in items:
            counts[row[i["example"]]] += keep(i)
        return counts

    flagged = lambda i: i["score"] >= threshold  # noqa: E731
    tp = per_example(lambda i: flagged(i) and i["label"])
    out = {"threshold": threshold, "examples": len(examples), "outputs": len(items),
           "labelled_copy_paste": int(sum(i["label"] for i in items)), "flagged": int(sum(map(flagged, items)))}
    for name, den in (("precision", per_example(flagged)), ("recall", per_example(lambda i: i["label"]))):
        ci95 = ratio_interval(tp, den)
        out[name] = {"value": round(float(tp.sum() / den.sum()), 4) if den.sum() else None,
                     "ci95": [round(x, 4) for x in ci95] if ci95 else None}
    out["sources"] = {}
    for source in dict.fromkeys(i["source"] for i in items):
        mine = [i for i in items if i["source"] == source]
        out["sources"][source] = {
            "outputs": len(mine), "labelled_copy_paste": int(sum(i["label"] for i in mine)),
            "flagged": int(sum(map(flagged, mine))),
            "flagged_when_labelled": int(sum(flagged(i) and i["label"] for i in mine)),
            "median_score": round(float(np.median([i["score"] for i in mine])), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m squeeze_studio.eval.copy_paste_check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--choose", required=True, metavar="DIR", help="SynthSubjects split the threshold is chosen on")
    p.add_argument("--report", required=True, metavar="DIR", help="SynthSubjects split precision/recall come from")
    p.add_argument("--outputs", required=True, metavar="DIR", help="where the model's outputs are kept")
    p.add_argument("--model", default=None, help="model folder (default: the built-in demo)")
    p.add_argument("--taus", action="append", metavar="TAU1,TAU2[,text]",
                   help=f"the model's settings (repeatable; default {' and '.join(MODEL_SETTINGS)})")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="the first N examples of each split")
    p.add_argument("--json", required=True, metavar="OUT", help="summary to write")
    p.add_argument("--items", metavar="OUT", default=None, help="every output's label and score (JSON)")
    p.add_argument("--designs", action="store_true", help="also try the measure's design choices on --choose")
    args = p.parse_args(argv)
    settings = args.taus or list(MODEL_SETTINGS)
    outputs = Path(args.outputs)
    choose = score_split(args.choose, args.model, settings, outputs, 0, args.limit)
    report = score_split(args.report, args.model, settings, outputs, 1, args.limit)
    threshold = choose_threshold(choose)
    summary = {"command": "python -m squeeze_studio.eval.copy_paste_check " + " ".join(argv or sys.argv[1:]),
               "measure": {"work_side": copy_paste.WORK_SIDE, "scales": list(copy_paste.SCALES),
                           "min_overlap": copy_paste.MIN_OVERLAP, "window": copy_paste.WINDOW},
               "model_settings": settings, "choose": agreement(choose, threshold),
               "report": agreement(report, threshold)}
    if args.designs:
        summary["designs_on_choose"] = compare_designs(args.choose, args.model, settings, outputs, args.limit)
    Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    if args.items:
        Path(args.items).write_text(json.dumps({"choose": choose, "report": report}) + "\n")
    r = summary["report"]
    print(f"threshold {threshold} (best F1 on {args.choose}); on {args.report}: precision "
          f"{r['precision']['value']:.3f} {r['precision']['ci95']}, recall {r['recall']['value']:.3f} "
          f"{r['recall']['ci95']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
