"""A small stand-in for ``squeeze_studio.engine.Engine`` with the same interface.

Used where it makes a test deterministic (it can pause mid-run until the test cancels, run out of memory
while loading or at step k) or where no real model is needed (drops, widgets). The end-to-end tests use the
real engine on a tiny model. Its memory plans are ``plan_memory``'s own: on a GPU for Qwen-Image-Edit-2509 (the
reference configs, what docs/models.md predicts), on the CPU for the built-in demo model. Only the free memory is
the test's.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from PIL import Image

from squeeze_studio.events import GenerationCancelled, ImageResult, StepEvent
from squeeze_studio.hub.defaults import PAPER_DEFAULTS, StageDefaults
from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS
from squeeze_studio.memory.modes import lighter_modes
from squeeze_studio.memory.plan import MemoryPlan, plan_memory
from squeeze_studio.models import default_model_path
from squeeze_studio.request import GenerationRequest

GIB = 2**30


def fake_plan(mode: str, device: str, free_vram: int | None, free_ram: int = 120 * GIB, height: int = 32,
              width: int = 32, references: int = 2) -> MemoryPlan:
    """``plan_memory``'s plan for Qwen-Image-Edit-2509 on a GPU with ``free_vram`` free (``None``: unknown) on one
    card (two for "multi-gpu"), or for the demo model on the CPU: "auto" is the fastest mode that fits, and a plan
    that does not fit names the first lighter one that does. (The first call builds the reference configs on the
    meta device: a few seconds, once per process.)"""
    if device == "cpu":
        return plan_memory(default_model_path(), mode, height, width, references, "cpu", free_ram=free_ram)
    return plan_memory(QWEN_IMAGE_EDIT_PLUS, mode, height, width, references, device, free_vram=free_vram,
                       free_ram=free_ram, gpus=2 if mode == "multi-gpu" else 1)


def engine_error(message: str, lighter: str = ""):
    from squeeze_studio.engine import EngineError  # imports torch: only when a test asks for the error

    return EngineError(message, lighter)


def hint(lighter: str) -> str:
    return f": try --memory {lighter}" if lighter else ": try a smaller size or fewer references"


class FakeEngine:
    def __init__(self, model_path: str = "", pause_after_step: int | None = None,
                 stage_defaults: StageDefaults = PAPER_DEFAULTS, addon: str = "", device: str = "cpu",
                 memory: str = "auto", free_vram: int | None = None, peak: int | None = None,
                 out_of_memory_at_step: int | None = None, step_seconds: float = 0.0, paste_reference: bool = False):
        self.model_path = model_path or "fake-demo"
        self.addon = addon
        self.model_name = "fake-model"
        self.device_name = device
        self.plan = fake_plan(memory, device, free_vram)
        self.memory_mode = self.plan.mode
        self.peak = peak  # what measured_peak() reports after a run (None: off CUDA)
        self.out_of_memory_at_step = out_of_memory_at_step  # runs out of memory there once
        self.stage_defaults = stage_defaults
        self.native_size = (32, 32)
        self.mllm_runs = 0
        self.pause_after_step = pause_after_step
        self.step_seconds = step_seconds  # how long each step takes (a real model's step)
        self.paste_reference = paste_reference  # the result is reference 1 pasted back, scored by the real measure
        self.steps_run = 0                # steps finished over the engine's life
        self.paused = threading.Event()   # set while the fake waits mid-run
        self.resume = threading.Event()   # the test sets it to let the run go on

    def memory_in_use(self) -> str:
        return "RAM 0.1 GB"

    def plan_for(self, request: GenerationRequest) -> MemoryPlan:
        return fake_plan(self.memory_mode, self.device_name, self.plan.free_vram, self.plan.free_ram,
                         request.height or 32, request.width or 32, len(request.references))

    def measured_peak(self) -> int | None:
        return self.peak if self.device_name != "cpu" else None

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
                if step == self.out_of_memory_at_step:
                    self.out_of_memory_at_step = None
                    plan = self.plan_for(single)
                    lighter = plan.suggestion or next(iter(lighter_modes(self.memory_mode)), "")
                    lighter = "" if self.device_name == "cpu" else lighter
                    raise engine_error(f"out of memory at step {step} of {total} with --memory {self.memory_mode} "
                                       f"at {width}x{height}{hint(lighter)}", lighter)
                if self.step_seconds:
                    time.sleep(self.step_seconds)
                self.steps_run += 1
                yield StepEvent(step, total, Image.new("RGB", (8, 8), (step * 10 % 256, 80, 160)), "joint", index)
                if self.pause_after_step == step and index == 0:
                    self.paused.set()
                    while not self.resume.wait(0.01):
                        if should_cancel():
                            raise GenerationCancelled()
            colour = (int(single.tau1 * 255), int(single.tau2 * 255), single.seed % 256)
            image = Image.new("RGB", (width, height), colour)
            if self.paste_reference and single.references:
                from squeeze_studio.copy_paste import copy_paste

                references = [Image.open(path).convert("RGB") for path in single.references]
                image = references[0].resize((width, height))
                yield ImageResult(image, single, 0.01, index, copy_paste=copy_paste(image, references))
                continue
            yield ImageResult(image, single, 0.01, index)


class FakeEngineFactory:
    """Builds ``FakeEngine``s and remembers the last one, so tests can reach it.

    ``defaults`` maps a model (or add-on) to the stage defaults it recommends; ``broken`` maps a model to
    the one-line ``ValueError`` the real engine would raise for it. ``devices`` is what ``available_devices()``
    reports (best first; "" picks the first); ``free_vram`` what the plans are checked against on a GPU;
    loading in a mode of ``out_of_memory_loading`` runs out of memory as the engine reports it (naming the
    lighter mode its plan says fits)."""

    def __init__(self, defaults: dict[str, StageDefaults] | None = None, broken: dict[str, str] | None = None,
                 devices: list[str] | None = None, free_vram: int | None = None,
                 out_of_memory_loading: tuple[str, ...] = (), load_gate: threading.Event | None = None,
                 **options):
        self.options = options
        self.defaults = defaults or {}
        self.broken = broken or {}
        self.devices = list(devices or ["cpu"])
        self.free_vram = free_vram
        self.out_of_memory_loading = set(out_of_memory_loading)
        self.load_gate = load_gate  # when given, a load waits for it (a slow model load the test controls)
        self.load_started = threading.Event()
        self.engine: FakeEngine | None = None
        self.loads = 0
        self.loaded: list[tuple[str, str]] = []
        self.settings: list[tuple[str, str]] = []  # (device, memory) of every load asked for

    def available_devices(self) -> list[str]:
        return list(self.devices)

    def __call__(self, model: str, addon: str = "", device: str = "", memory: str = "auto") -> FakeEngine:
        self.loads += 1
        self.settings.append((device, memory))
        self.load_started.set()
        if self.load_gate is not None:
            self.load_gate.wait()
        if model in self.broken:
            raise ValueError(self.broken[model])
        device = device or self.devices[0]
        if device not in self.devices:
            raise ValueError(f"device {device} is not available here (available: {', '.join(self.devices)})")
        free_vram = None if device == "cpu" else self.free_vram
        plan = fake_plan(memory, device, free_vram)
        if plan.mode in self.out_of_memory_loading:
            lighter = "" if device == "cpu" else plan.suggestion or next(iter(lighter_modes(plan.mode)), "")
            raise engine_error(f"out of memory loading fake-model with --memory {plan.mode} (plan: "
                               f"{plan.summary()}){hint(lighter)}", lighter)
        defaults = self.defaults.get(addon) or self.defaults.get(model) or PAPER_DEFAULTS
        self.engine = FakeEngine(model, stage_defaults=defaults, addon=addon, device=device, memory=memory,
                                 free_vram=free_vram, **self.options)
        self.loaded.append((model, addon))
        return self.engine
