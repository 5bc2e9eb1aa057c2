"""Running the ablations: every variant trained from the same data, VAE and frozen MLLM at one budget, then
scored on the same unseen test subjects. Each step writes its result under ``work`` and is skipped when it
is already there, so an interrupted run resumes where it stopped (training stages resume mid-way).

    work/data, work/vae, work/encoded_train.pt   shared with ``squeeze train demo`` (same layout)
    work/variants/{name}/stage1, stage2, model    one variant's checkpoints and model folder
    work/eval/{name}.json, {name}-grid.png         its scores at VARIANT_SETTINGS (the DLA one: the tau grid)
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ..eval.evaluate import evaluate
from ..eval.report import write_json
from ..train.demo import DemoRecipe, assemble, dataset, encoded, stage_config, train_vae_once
from ..train.trainer import train_stage
from .variants import (
    DEFAULT,
    GUIDANCES,
    SMOOTH_GRID,
    SMOOTH_PAIRS,
    TAU_GRID,
    VARIANT_SETTINGS,
    VARIANTS,
    Budget,
    Variant,
)

TEST_SEED = 1


def _log(record: dict) -> None:
    print(json.dumps(record), flush=True)


class Ablation:
    def __init__(self, work: str | Path, recipe: DemoRecipe, budget: Budget, variants=VARIANTS,
                 on_log: Callable[[dict], None] = _log, progress: bool = True):
        self.work, self.recipe, self.budget, self.variants = Path(work), recipe, budget, variants
        self.on_log, self.progress = on_log, progress
        self.work.mkdir(parents=True, exist_ok=True)
        self._shared = None

    # -- shared inputs ------------------------------------------------------------------------------------
    def test_data(self) -> Path:
        from ..synth.dataset import make_dataset

        folder = self.work / "data" / "test"
        if not (folder / "data.jsonl").is_file():
            make_dataset(folder, self.budget.eval_count, seed=TEST_SEED, split="test", size=self.recipe.size,
                         max_refs=self.recipe.max_refs)
        return folder

    def shared(self):
        """(train records, VAE), made once."""
        if self._shared is None:
            train = dataset(self.work, "train", self.recipe.train_count, self.recipe)
            val = dataset(self.work, "val", self.recipe.val_count, self.recipe)
            self._shared = (train, train_vae_once(self.work, train, val, self.recipe))
        return self._shared

    def recipe_for(self, variant: Variant) -> DemoRecipe:
        return replace(self.recipe, mllm_steps=self.budget.mllm_steps if variant.pretrained_mllm else 0)

    def assemble(self, variant: Variant):
        """The variant's untrained pipeline: the shared VAE and its stage-0b MLLM (pre-trained once under
        ``work/mllm`` when the variant asks for it, else the random one every other variant shares)."""
        train, vae = self.shared()
        return assemble(vae, train, self.recipe_for(variant), connector_mode=variant.connector, work=self.work)

    def examples(self, variant: Variant, pipe) -> list:
        """The variant's encoded training examples, cached per MLLM: the natural data, plus as many
        copy-rewarding pairs for the copy-rich variant."""
        from ..synth.dataset import load_jsonl, make_dataset

        train, _ = self.shared()
        mllm = "_mllm" if variant.pretrained_mllm else ""
        natural = encoded(pipe, train, self.work / f"encoded_train{mllm}.pt", self.recipe.size)
        if not variant.copy_rich:
            return natural
        copy_folder = self.work / "data" / "train-copy"
        if not (copy_folder / "data.jsonl").is_file():
            make_dataset(copy_folder, self.recipe.train_count, seed=self.recipe.seed + 1, split="train",
                         size=self.recipe.size, max_refs=self.recipe.max_refs, copy_variant=True)
        return natural + encoded(pipe, load_jsonl(copy_folder), self.work / f"encoded_copy{mllm}.pt", self.recipe.size)

    # -- one variant --------------------------------------------------------------------------------------
    def model_folder(self, variant: Variant) -> Path:
        return self.work / "variants" / variant.name / "model"

    def train(self, variant: Variant) -> Path:
        out = self.model_folder(variant)
        if (out / "model_index.json").is_file():
            return out
        pipe = self.assemble(variant)
        examples = self.examples(variant, pipe)
        folder, steps, identity = out.parent, self.budget.steps, {}
        if variant.schedule == "two-stage":
            train_stage(pipe, examples, stage_config(self.recipe, "align", self.budget.align_steps),
                        folder / "stage1", self.recipe.size, on_log=self.on_log)
            steps -= self.budget.align_steps
        elif variant.schedule == "single-stage-aware":
            identity["stage_taus"] = (DEFAULT.tau1, DEFAULT.tau2)
        train_stage(pipe, examples, stage_config(self.recipe, "identity", steps, **identity), folder / "stage2",
                    self.recipe.size, on_log=self.on_log)
        pipe.save_pretrained(out)
        return out

    def evaluate(self, variant: Variant) -> dict:
        """{"reports": {guidance: eval report}, "seconds": {"train", "eval"}}; the first variant (DLA)
        runs the whole tau grid at every guidance, the others the three VARIANT_SETTINGS."""
        if found := self._finished(variant.name):
            return found[variant.name]
        done = self.work / "eval" / f"{variant.name}.json"
        done.parent.mkdir(parents=True, exist_ok=True)
        model = self.train(variant)
        start = time.perf_counter()
        grid_variant = variant.name == VARIANTS[0].name
        reports = {}
        for cfg in GUIDANCES if grid_variant else GUIDANCES[:1]:
            settings = TAU_GRID if grid_variant else VARIANT_SETTINGS
            grid = done.with_name(f"{variant.name}-grid.png") if cfg == GUIDANCES[0] else None
            reports[f"{cfg:g}"] = self._score(model, settings, cfg, grid)
        stages = [json.loads(p.read_text()) for p in sorted(model.parent.glob("stage*/progress.json"))]
        seconds = {"train": sum(s.get("seconds", 0.0) for s in stages), "eval": time.perf_counter() - start}
        write_json({"variant": variant.name, "reports": reports, "seconds": seconds,
                    "grid": str(done.with_name(f"{variant.name}-grid.png"))}, done)
        return self._finished(variant.name)[variant.name]

    def extra(self, name: str, variant: Variant, settings) -> dict:
        """One more evaluation of a trained variant, all settings timed in one run: {"report", "seconds"}."""
        if found := self._finished(name):
            return found[name]
        model, start = self.train(variant), time.perf_counter()
        report = self._score(model, settings, GUIDANCES[0])
        write_json({"report": report, "seconds": time.perf_counter() - start}, self.work / "eval" / f"{name}.json")
        return self._finished(name)[name]

    def _score(self, model: Path, settings, cfg: float, grid: Path | None = None) -> dict:
        """``evaluate`` on the test set at the recipe's seed and size, without the per-example records
        (the document does not need them)."""
        report = evaluate(self.test_data(), model, settings, cfg=cfg, seed=self.recipe.seed, size=self.recipe.size,
                          progress=self.progress, grid=grid, grid_rows=self.budget.grid_rows)
        report.pop("examples")
        return report

    def mllm_quality(self) -> dict | None:
        """Stage 0b's answer accuracy (random, pre-trained, majority answer), once it has run."""
        path = self.work / "mllm" / "quality.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _finished(self, name: str) -> dict:
        path = self.work / "eval" / f"{name}.json"
        return {name: json.loads(path.read_text())} if path.is_file() else {}

    def run(self, train: bool = True) -> tuple[dict[str, dict], dict[str, dict]]:
        """Train and score every variant in turn, each followed by its extra measurement: ({variant name: its
        evaluation}, {"smooth": the DLA model hard vs ramped, "induced": the copy-rich model's tau grid}).
        ``train=False`` only collects what earlier runs finished."""
        extra_for = {"dla": ("smooth", SMOOTH_PAIRS + SMOOTH_GRID), "copy_rich": ("induced", TAU_GRID)}
        results, extras = {}, {}
        for variant in self.variants:
            if not train:
                results.update(self._finished(variant.name))
                extras.update(self._finished(extra_for[variant.name][0]) if variant.name in extra_for else {})
                continue
            self.on_log({"variant": variant.name, "label": variant.label})
            torch.manual_seed(self.recipe.seed)
            results[variant.name] = self.evaluate(variant)
            if variant.name in extra_for:
                name, settings = extra_for[variant.name]
                self.on_log({"extra": name})
                extras[name] = self.extra(name, variant, settings)
        return results, extras
