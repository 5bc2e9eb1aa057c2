"""Choose the sample subjects the window opens with, by measuring the demo model on them.

    .venv/bin/python resources/samples/select_samples.py            # about 10 minutes on a busy 2-core CPU

Candidates are unseen SynthSubjects subjects (the test split: never in the demo model's training data), each
with 2 or 3 reference images in varied scenes and several candidate instructions written by SynthSubjects'
own instruction composer. Every (subject, instruction) is generated with the demo model exactly as the window
runs it on a first start (``Engine.generate``: the model's stage defaults, 20 steps, its native 64 x 64) for
several seeds, and scored against the exact target with the project's SynthSubjects metrics
(``eval.synth_metrics.score_output``: the instructed adherence, the headline number of ``squeeze eval``, and
the aligned subject PSNR). Per subject the best three instructions are kept (distinct wording, different
positions where possible); the subjects with the best mean over those three are written to
``resources/samples/`` with ``samples.json`` (references, instructions, their measured scores) and the table in
``README.md``. Everything is a pure function of the arguments.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from squeeze_studio.eval.data import Truth
from squeeze_studio.eval.synth_metrics import score_output
from squeeze_studio.synth.dataset import _mentioned, _sample_reference, _sample_subject, _sample_target
from squeeze_studio.synth.instructions import compose_instruction
from squeeze_studio.synth.scene import render_scene

HERE = Path(__file__).resolve().parent
SIZE = 64  # the demo model's native size: references exactly as it was trained on


@dataclass
class Candidate:
    instruction: str
    target: object
    mentioned: tuple[str, ...]
    adherence: list[float] = field(default_factory=list)
    aligned_psnr: list[float] = field(default_factory=list)

    @property
    def score(self) -> tuple[float, float]:
        return float(np.mean(self.adherence)), float(np.mean(self.aligned_psnr))


@dataclass
class SubjectRun:
    subject: object
    reference_attrs: list
    references: list[np.ndarray]
    candidates: list[Candidate]
    chosen: list[Candidate] = field(default_factory=list)

    @property
    def score(self) -> tuple[float, float]:
        return (float(np.mean([c.score[0] for c in self.chosen])), float(np.mean([c.score[1] for c in self.chosen])))


def title(subject) -> str:
    parts = " and ".join(p for p in subject.parts)
    return f"{subject.body_colour.capitalize()} {subject.body} with {parts}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_candidates(seed: int, count: int, instructions: int) -> list[SubjectRun]:
    rng = np.random.default_rng([seed, 2026])
    runs = []
    for index in range(count):
        subject = _sample_subject(rng, "test")
        n_refs = 2 + index % 2
        attrs = []
        while len(attrs) < n_refs:  # references that differ in place and background, like real photos would
            ref = _sample_reference(rng, subject)
            if all((ref.position, ref.background) != (a.position, a.background) for a in attrs):
                attrs.append(ref)
        candidates, seen = [], set()
        while len(candidates) < instructions:
            target = _sample_target(rng, subject, held_out=False, style_prob=0.0)
            mentioned = _mentioned(rng, target)
            text = compose_instruction(target, mentioned, rng)
            if text in seen or any(target.position == a.position and target.background == a.background
                                   for a in attrs):
                continue
            seen.add(text)
            order = tuple(k for k in ("position", "background", "scale", "orientation", "count", "style")
                          if k in mentioned)
            candidates.append(Candidate(text, target, order))
        runs.append(SubjectRun(subject, attrs, [render_scene(subject, a, SIZE)[0] for a in attrs], candidates))
    return runs


def measure(runs: list[SubjectRun], seeds: int, work: Path) -> None:
    from squeeze_studio.engine import Engine
    from squeeze_studio.events import ImageResult
    from squeeze_studio.request import GenerationRequest

    engine = Engine(None)
    defaults = engine.stage_defaults
    for number, run in enumerate(runs):
        folder = work / f"candidate-{number:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for j, image in enumerate(run.references):
            paths.append(str(folder / f"reference-{j + 1}.png"))
            Image.fromarray(image).save(paths[-1])
        for candidate in run.candidates:
            target, mask = render_scene(run.subject, candidate.target, SIZE)
            truth = Truth(run.subject, candidate.target, tuple(run.reference_attrs), candidate.mentioned)
            request = GenerationRequest(instruction=candidate.instruction, references=paths, seed=1,
                                        batch_count=seeds, tau1=defaults.tau1, tau2=defaults.tau2,
                                        guidance_scale=defaults.guidance_scale)
            for event in engine.generate(request):
                if isinstance(event, ImageResult):
                    score = score_output(np.asarray(event.image.convert("RGB")), target, mask, truth)
                    candidate.adherence.append(score.instructed_adherence)
                    candidate.aligned_psnr.append(min(score.aligned_subject_psnr, 100.0))
        print(f"subject {number + 1}/{len(runs)}: {run.subject.describe()}: best adherence "
              f"{max(c.score[0] for c in run.candidates):.2f}", flush=True)


def choose(run: SubjectRun, per_subject: int) -> None:
    ranked = sorted(run.candidates, key=lambda c: c.score, reverse=True)
    chosen: list[Candidate] = []
    for candidate in ranked:  # first pass: different positions, so the three suggestions show different things
        if len(chosen) < per_subject and all(c.target.position != candidate.target.position for c in chosen):
            chosen.append(candidate)
    for candidate in ranked:
        if len(chosen) < per_subject and candidate not in chosen:
            chosen.append(candidate)
    run.chosen = chosen


def write(runs: list[SubjectRun], out: Path, args, seconds: float, all_runs: list[SubjectRun]) -> None:
    samples = []
    for run in runs:
        name = title(run.subject)
        folder = out / slug(name)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("reference-*.png"):
            old.unlink()
        references = []
        for j, image in enumerate(run.references):
            references.append(f"{folder.name}/reference-{j + 1}.png")
            Image.fromarray(image).save(out / references[-1])
        samples.append({
            "name": name,
            "subject": run.subject.describe(),
            "subject_seed": run.subject.seed,
            "references": references,
            "instructions": [c.instruction for c in run.chosen],
            "reference_attributes": [a.to_dict() for a in run.reference_attrs],
            "measured": [{"instruction": c.instruction, "adherence": round(c.score[0], 3),
                          "aligned_subject_psnr": round(c.score[1], 2), "target": c.target.to_dict(),
                          "instructed": list(c.mentioned)} for c in run.chosen],
        })
    everything = [c.score[0] for r in all_runs for c in r.candidates]
    manifest = {
        "how": "resources/samples/select_samples.py " + " ".join(f"--{k.replace('_', '-')} {v}"
                                                                 for k, v in vars(args).items() if k != "out"),
        "model": "built-in demo model, its stage defaults, 20 steps, 64 x 64",
        "seeds_per_instruction": args.seeds,
        "candidates": {"subjects": len(all_runs), "instructions": len(everything),
                       "mean_adherence": round(float(np.mean(everything)), 3)},
        "seconds": round(seconds),
        "samples": samples,
    }
    (out / "samples.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def verify(out: Path, first_seed: int, seeds: int) -> None:
    """Re-score the kept samples on seeds they were not chosen on (the selection's figures are optimistic)."""
    from squeeze_studio.engine import Engine
    from squeeze_studio.events import ImageResult
    from squeeze_studio.request import GenerationRequest
    from squeeze_studio.synth import make_subject
    from squeeze_studio.synth.scene import Attributes

    manifest = json.loads((out / "samples.json").read_text(encoding="utf-8"))
    engine = Engine(None)
    all_scores = []
    for sample in manifest["samples"]:
        subject = make_subject(sample["subject_seed"])
        refs = [str(out / p) for p in sample["references"]]
        ref_attrs = tuple(Attributes.from_dict(a) for a in sample["reference_attributes"])
        for entry in sample["measured"]:
            target_attrs = Attributes.from_dict(entry["target"])
            target, mask = render_scene(subject, target_attrs, SIZE)
            truth = Truth(subject, target_attrs, ref_attrs, tuple(entry["instructed"]))
            request = GenerationRequest(instruction=entry["instruction"], references=refs, seed=first_seed,
                                        batch_count=seeds)
            scores = [score_output(np.asarray(e.image.convert("RGB")), target, mask, truth).instructed_adherence
                      for e in engine.generate(request) if isinstance(e, ImageResult)]
            entry["adherence_other_seeds"] = round(float(np.mean(scores)), 3)
            all_scores.append(entry["adherence_other_seeds"])
            print(f"{sample['name']}: {entry['instruction']!r}: {entry['adherence']:.2f} -> "
                  f"{entry['adherence_other_seeds']:.2f}", flush=True)
    manifest["other_seeds"] = {"seeds": list(range(first_seed, first_seed + seeds)),
                               "mean_adherence": round(float(np.mean(all_scores)), 3)}
    (out / "samples.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"mean adherence on seeds {first_seed}-{first_seed + seeds - 1}: {np.mean(all_scores):.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=16, help="candidate subjects (test split)")
    parser.add_argument("--instructions", type=int, default=5, help="candidate instructions per subject")
    parser.add_argument("--seeds", type=int, default=3, help="seeds each instruction is generated with")
    parser.add_argument("--keep", type=int, default=3, help="subjects kept")
    parser.add_argument("--per-subject", type=int, default=3, help="instructions kept per subject")
    parser.add_argument("--seed", type=int, default=7, help="seed of the candidate draw")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--work", type=Path, default=Path("work/samples"))
    parser.add_argument("--verify", type=int, default=0, metavar="N",
                        help="instead: re-score the kept samples on N other seeds (100, 101, ...)")
    args = parser.parse_args(argv)
    if args.verify:
        verify(args.out, 100, args.verify)
        return
    start = time.perf_counter()
    runs = make_candidates(args.seed, args.candidates, args.instructions)
    measure(runs, args.seeds, args.work)
    for run in runs:
        choose(run, args.per_subject)
    best = sorted(runs, key=lambda r: r.score, reverse=True)
    kept: list[SubjectRun] = []
    for run in best:  # different bodies, so the samples look different from each other
        if len(kept) < args.keep and all(k.subject.body != run.subject.body for k in kept):
            kept.append(run)
    seconds = time.perf_counter() - start
    work_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("work",)})
    write(kept, args.out, work_args, seconds, runs)
    for run in kept:
        print(f"kept {title(run.subject)}: adherence {run.score[0]:.3f}, aligned subject PSNR {run.score[1]:.2f} dB")
    print(f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
