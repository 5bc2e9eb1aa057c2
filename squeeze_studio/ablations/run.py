"""Running the ablations: every variant trained from the same data, VAE and frozen MLLM at one budget, then
scored on the same unseen test subjects. Each step writes its result under ``work`` and is skipped when it
is already there, so an interrupted run resumes where it stopped (training stages resume mid-way).

    work/data, work/vae, work/encoded_train.pt   shared with ``squeeze train demo`` (same layout)
    work/variants/{key}/stage1, stage2, model     one run's checkpoints and model folder
    work/eval/{key}.json, {key}-grid.png           its scores at VARIANT_SETTINGS (the DLA one: the tau grid)

A run's key is the variant's name for the first training seed and ``name@seed`` for the others
(``Budget.runs``). Scores keep their per-example records: the document's intervals are computed from them.
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

    def assemble(self, variant: Variant, seed: int):
        """The variant's untrained pipeline: the shared VAE and its stage-0b MLLM (pre-trained once under
        ``work/mllm`` when the variant asks for it, else the random one every other variant shares); connector
        and transformer initialised from the training ``seed``."""
        train, vae = self.shared()
        return assemble(vae, train, self.recipe_for(variant), connector_mode=variant.connector, work=self.work,
                        init_seed=seed)

    @staticmethod
    def stage2_settings(variant: Variant) -> dict:
        """Stage-2 settings that differ from the demo recipe's for ``variant``."""
        settings = {}
        if variant.schedule == "single-stage" or not variant.matched:
            settings["stage_taus"] = None  # no stage plan in training
        elif variant.schedule == "single-stage-aware":
            settings["stage_taus"] = (DEFAULT.tau1, DEFAULT.tau2)
        if not variant.matched:
            settings.update(timestep_sampling="logit_normal", vae_reading="null")
        return settings

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
    def model_folder(self, key: str) -> Path:
        return self.work / "variants" / key / "model"

    def train(self, variant: Variant, key: str | None = None, seed: int | None = None) -> Path:
        """The trained model folder of one run (default: the variant's first seed), trained if it is not there."""
        key, seed = key or variant.name, self.budget.seeds[0] if seed is None else seed
        out = self.model_folder(key)
        if (out / "model_index.json").is_file():
            return out
        pipe = self.assemble(variant, seed)
        examples = self.examples(variant, pipe)
        folder, steps = out.parent, self.budget.steps
        if variant.schedule == "two-stage":
            train_stage(pipe, examples, stage_config(self.recipe, "align", self.budget.align_steps, seed=seed),
                        folder / "stage1", self.recipe.size, on_log=self.on_log)
            steps -= self.budget.align_steps
        train_stage(pipe, examples, stage_config(self.recipe, "identity", steps, seed=seed,
                                                 **self.stage2_settings(variant)),
                    folder / "stage2", self.recipe.size, on_log=self.on_log)
        pipe.save_pretrained(out)
        return out

    def evaluate(self, variant: Variant, key: str | None = None, seed: int | None = None) -> dict:
        """{"reports": {guidance: eval report}, "seconds": {"train", "eval"}}; the first variant (DLA) at its
        first seed runs the whole tau grid at every guidance, every other run the three VARIANT_SETTINGS."""
        key = key or variant.name
        if found := self._finished(key):
            return found[key]
        done = self.work / "eval" / f"{key}.json"
        done.parent.mkdir(parents=True, exist_ok=True)
        model = self.train(variant, key, seed)
        start = time.perf_counter()
        grid_variant = key == VARIANTS[0].name
        reports = {}
        for cfg in GUIDANCES if grid_variant else GUIDANCES[:1]:
            settings = TAU_GRID if grid_variant else VARIANT_SETTINGS
            grid = done.with_name(f"{key}-grid.png") if cfg == GUIDANCES[0] else None
            reports[f"{cfg:g}"] = self._score(model, settings, cfg, grid)
        stages = [json.loads(p.read_text()) for p in sorted(model.parent.glob("stage*/progress.json"))]
        seconds = {"train": sum(s.get("seconds", 0.0) for s in stages), "eval": time.perf_counter() - start}
        write_json({"variant": variant.name, "key": key, "seed": seed, "reports": reports, "seconds": seconds,
                    "threads": torch.get_num_threads(), "grid": str(done.with_name(f"{key}-grid.png"))}, done)
        return self._finished(key)[key]

    def extra(self, name: str, variant: Variant, settings) -> dict:
        """One more evaluation of a trained variant, all settings timed in one run: {"report", "seconds"}."""
        if found := self._finished(name):
            return found[name]
        model, start = self.train(variant), time.perf_counter()
        report = self._score(model, settings, GUIDANCES[0])
        write_json({"report": report, "seconds": time.perf_counter() - start}, self.work / "eval" / f"{name}.json")
        return self._finished(name)[name]

    def _score(self, model: Path, settings, cfg: float, grid: Path | None = None) -> dict:
        """``evaluate`` on the test set at the recipe's seed and size (the same noise for every run)."""
        return evaluate(self.test_data(), model, settings, cfg=cfg, seed=self.recipe.seed, size=self.recipe.size,
                        progress=self.progress, grid=grid, grid_rows=self.budget.grid_rows)

    def mllm_quality(self) -> dict | None:
        """Stage 0b's answer accuracy (random, pre-trained, majority answer), once it has run."""
        path = self.work / "mllm" / "quality.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _finished(self, name: str) -> dict:
        path = self.work / "eval" / f"{name}.json"
        return {name: json.loads(path.read_text())} if path.is_file() else {}

    def run(self, train: bool = True) -> tuple[dict[str, dict], dict[str, dict]]:
        """Train and score every variant in turn (each seed of a SEEDED one), each followed by its extra
        measurement: ({run key: its evaluation}, {"smooth": the DLA model hard vs ramped, "induced": the copy-rich
        model's tau grid}). ``train=False`` only collects what earlier runs finished."""
        extra_for = {"dla": ("smooth", SMOOTH_PAIRS + SMOOTH_GRID), "copy_rich": ("induced", TAU_GRID)}
        results, extras = {}, {}
        for variant in self.variants:
            if not train:
                for key, _ in self.budget.runs(variant):
                    results.update(self._finished(key))
                extras.update(self._finished(extra_for[variant.name][0]) if variant.name in extra_for else {})
                continue
            for key, seed in self.budget.runs(variant):
                self.on_log({"variant": key, "label": variant.label, "seed": seed})
                torch.manual_seed(seed)
                results[key] = self.evaluate(variant, key, seed)
            if variant.name in extra_for:
                name, settings = extra_for[variant.name]
                self.on_log({"extra": name})
                extras[name] = self.extra(name, variant, settings)
        return results, extras
