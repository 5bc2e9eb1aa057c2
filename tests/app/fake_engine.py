"""A small stand-in for ``squeeze_studio.engine.Engine`` with the same interface.

Used where it makes a test deterministic (it can pause mid-run until the test cancels) or where no
real model is needed (drops, widgets). The end-to-end tests use the real engine on a tiny model.
"""
from __future__ import annotations

import threading
from pathlib import Path

from PIL import Image

from squeeze_studio.events import GenerationCancelled, ImageResult, StepEvent
from squeeze_studio.hub.defaults import PAPER_DEFAULTS, StageDefaults
from squeeze_studio.request import GenerationRequest


class FakeEngine:
    def __init__(self, model_path: str = "", pause_after_step: int | None = None,
                 stage_defaults: StageDefaults = PAPER_DEFAULTS, addon: str = ""):
        self.model_path = model_path or "fake-demo"
        self.addon = addon
        self.model_name = "fake-model"
        self.device_name = "cpu"
        self.stage_defaults = stage_defaults
        self.native_size = (32, 32)
        self.mllm_runs = 0
        self.pause_after_step = pause_after_step
        self.paused = threading.Event()   # set while the fake waits mid-run
        self.resume = threading.Event()   # the test sets it to let the run go on

    def memory_in_use(self) -> str:
        return "RAM 0.1 GB"

    def generate(self, request: GenerationRequest, should_cancel=lambda: False):
        self._check(request)
        singles = [request.replace(seed=request.seed + i, batch_count=1) for i in range(request.batch_count)]
        return self._run(singles, should_cancel)

    def sweep(self, request: GenerationRequest, variations: list[dict], should_cancel=lambda: False):
        self._check(request)
        return self._run([request.replace(**v, batch_count=1) for v in variations], should_cancel)

    def _check(self, request: GenerationRequest) -> None:
        request.validate()
        for path in request.references:
            if not Path(path).exists():
                raise ValueError(f"cannot read reference {Path(path).name}")

    def _run(self, singles, should_cancel):
        self.mllm_runs += 1  # one joint encoding per call, as the real engine does for a sweep
        for index, single in enumerate(singles):
            width, height = single.width or 32, single.height or 32
            single = single.replace(width=width, height=height, model=self.model_path, addon=self.addon)
            total = single.num_inference_steps
            for step in range(1, total + 1):
                if should_cancel():
                    raise GenerationCancelled()
                yield StepEvent(step, total, Image.new("RGB", (8, 8), (step * 10 % 256, 80, 160)), "joint", index)
                if self.pause_after_step == step and index == 0:
                    self.paused.set()
                    while not self.resume.wait(0.01):
                        if should_cancel():
                            raise GenerationCancelled()
            colour = (int(single.tau1 * 255), int(single.tau2 * 255), single.seed % 256)
            yield ImageResult(Image.new("RGB", (width, height), colour), single, 0.01, index)


class FakeEngineFactory:
    """Builds ``FakeEngine``s and remembers the last one, so tests can reach it.

    ``defaults`` maps a model (or add-on) to the stage defaults it recommends; ``broken`` maps a model to
    the one-line ``ValueError`` the real engine would raise for it."""

    def __init__(self, defaults: dict[str, StageDefaults] | None = None, broken: dict[str, str] | None = None,
                 **options):
        self.options = options
        self.defaults = defaults or {}
        self.broken = broken or {}
        self.engine: FakeEngine | None = None
        self.loads = 0
        self.loaded: list[tuple[str, str]] = []

    def __call__(self, model: str, addon: str = "") -> FakeEngine:
        self.loads += 1
        if model in self.broken:
            raise ValueError(self.broken[model])
        defaults = self.defaults.get(addon) or self.defaults.get(model) or PAPER_DEFAULTS
        self.engine = FakeEngine(model, stage_defaults=defaults, addon=addon, **self.options)
        self.loaded.append((model, addon))
        return self.engine
