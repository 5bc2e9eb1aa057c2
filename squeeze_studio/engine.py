"""The engine behind the window and the CLI: one loaded model, generations as plain generators.

``Engine.generate`` yields a ``StepEvent`` after every step and an ``ImageResult`` per image, and checks
the caller's cancel flag between steps, so a thin Qt worker (or a CLI loop) can turn it into signals or
progress bars. This module imports torch; the window imports it only inside its worker thread.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import torch

from .events import GenerationCancelled, ImageResult, StepEvent
from .pipeline import SqueezePipeline, StepUpdate
from .references import load_references
from .request import GenerationRequest


def _quiet_loading() -> None:
    """No loader progress bars: the window and the CLI report progress their own way."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


class EngineError(ValueError):
    """A one-line, user-facing reason why a model could not load or a generation could not run."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class Engine:
    """``model``: anything ``hub.resolve_model`` takes (None or "" = the demo, a folder, a cached repo id, an
    add-on folder); ``addon``: an add-on folder for that base. The model is verified (files, safetensors
    headers, shapes) before it loads, so a broken folder is one line, not a traceback."""

    def __init__(self, model: str | os.PathLike | None = None, addon: str | os.PathLike | None = None,
                 device: str | None = None, previews: bool = True):
        from .hub.source import resolve_model
        from .hub.verify import check_model

        try:
            self.source = resolve_model(model, addon)
            check_model(self.source.folder)
        except ValueError as error:
            raise EngineError(_first_line(error)) from None
        _quiet_loading()
        self.device_name = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device_name.startswith("cuda") else torch.float32
        try:
            self.pipe = SqueezePipeline.from_pretrained(self.source.spec, addon=self.source.addon, dtype=dtype)
        except Exception as error:  # any loader failure is a bad folder from the user's point of view
            raise EngineError(f"cannot load model {self.source.name}: {_first_line(error)}") from error
        self.pipe.to(self.device_name)
        self.pipe.set_progress_bar_config(disable=True)
        self.model_path = self.source.spec or str(self.source.folder)
        self.model_name = self.source.name
        self.previews = previews

    @property
    def stage_defaults(self):
        """The τ1/τ2/guidance this model (or its add-on) recommends, with where they came from."""
        return self.pipe.stage_defaults

    @property
    def native_size(self) -> tuple[int, int]:
        size = self.pipe.config.default_size
        return size, size

    @property
    def mllm_runs(self) -> int:
        return self.pipe.encoder.runs

    def memory_in_use(self) -> str:
        if self.device_name.startswith("cuda"):
            return f"VRAM {torch.cuda.memory_allocated() / 2**30:.1f} GB"
        try:
            import psutil

            return f"RAM {psutil.Process().memory_info().rss / 2**30:.1f} GB"
        except ImportError:
            return "RAM n/a"

    def resolve(self, request: GenerationRequest) -> GenerationRequest:
        """The request with the model's native size filled in and this model recorded."""
        width, height = self.native_size
        addon = str(self.source.addon) if self.source.addon else ""
        return request.replace(width=request.width or width, height=request.height or height,
                               model=self.model_path, addon=addon)

    def generate(self, request: GenerationRequest, should_cancel: Callable[[], bool] = lambda: False
                 ) -> Iterator[StepEvent | ImageResult]:
        """``request.batch_count`` images with seeds ``seed, seed + 1, ...``, each reproducible alone.

        Bad input raises here, before the first step; the returned iterator does the work."""
        request = self.resolve(request)
        images = self.check(request)
        singles = [request.replace(seed=request.seed + i, batch_count=1) for i in range(request.batch_count)]
        return self._run_all(singles, images, should_cancel)

    def sweep(self, request: GenerationRequest, variations: list[dict],
              should_cancel: Callable[[], bool] = lambda: False) -> Iterator[StepEvent | ImageResult]:
        """One image per variation (fields such as tau1, tau2, seed, guidance_scale overridden). The
        references and instruction are shared, so the MLLM runs once for the whole sweep."""
        base = self.resolve(request)
        singles = [base.replace(**changes, batch_count=1) for changes in variations]
        images = self.check(base)
        for single in singles:
            self.check(single, images)
        return self._run_all(singles, images, should_cancel)

    def check(self, request: GenerationRequest, images=None) -> list:
        """Validate ``request`` against this model; returns the loaded reference images."""
        request.validate()
        images = load_references(request.references) if images is None else images
        self.pipe.check_inputs(images, request.instruction, request.height, request.width,
                               request.num_inference_steps, request.tau1, request.tau2, request.guidance_scale)
        return images

    def _run_all(self, singles, images, should_cancel):
        for index, single in enumerate(singles):
            yield from self._run(single, images, should_cancel, index)

    def _run(self, request: GenerationRequest, images, should_cancel, index: int):
        start = time.perf_counter()
        stream = self.pipe.stream(
            image=images, prompt=request.instruction, negative_prompt=request.negative_prompt,
            tau1=request.tau1, tau2=request.tau2, guidance_scale=request.guidance_scale,
            num_inference_steps=request.num_inference_steps, height=request.height, width=request.width,
            generator=torch.Generator("cpu").manual_seed(request.seed),
        )
        try:
            for item in stream:
                if should_cancel():
                    raise GenerationCancelled()
                if isinstance(item, StepUpdate):
                    preview = item.preview() if self.previews else None
                    yield StepEvent(item.step, item.total, preview, item.stage.value, index)
                else:
                    yield ImageResult(item.images[0], request, time.perf_counter() - start, index)
        except torch.OutOfMemoryError:
            raise EngineError("out of memory: try a smaller size, fewer references or fewer steps") from None
        finally:
            stream.close()
