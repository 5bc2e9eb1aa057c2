"""The engine behind the window and the CLI: one loaded model, generations as plain generators.

``Engine.generate`` yields a ``StepEvent`` after every step and an ``ImageResult`` per image, and checks
the caller's cancel flag between steps, so a thin Qt worker (or a CLI loop) can turn it into signals or
progress bars. This module imports torch; the window imports it only inside its worker thread.

Memory: a plan (``squeeze_studio.memory``) is made before loading and chooses the mode for ``memory="auto"``.
Running out of memory, while loading or at any step, is one ``EngineError`` line naming a lighter mode; the
memory is given back, so the next generation (or the next engine) starts clean.
"""
from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator

import torch

from .events import GenerationCancelled, ImageResult, StepEvent
from .memory.plan import vae_tiling
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
    """A one-line, user-facing reason why a model could not load or a generation could not run.

    ``lighter`` names the memory mode to try after running out of memory ("" otherwise, or when none is lighter)."""

    def __init__(self, message: str, lighter: str = ""):
        super().__init__(message)
        self.lighter = lighter


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError``, and the ``RuntimeError`` other allocators (CPU, MPS, cuBLAS) raise."""
    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text)


class Engine:
    """``model``: anything ``hub.resolve_model`` takes (None or "" = the demo, a folder, a cached repo id, an
    add-on folder); ``addon``: an add-on folder for that base. The model is verified (files, safetensors
    headers, shapes) before it loads, so a broken folder is one line, not a traceback.

    ``device``: "cuda", "cuda:1", "mps" or "cpu" (default: the best present). ``memory``: a mode of
    ``memory.MEMORY_MODES`` ("auto": the fastest the plan says fits). ``weights``: how the transformer is stored,
    ``memory.WEIGHT_FORMATS`` ("fp8", "int8", "nf4") or a single .gguf / .safetensors transformer file.
    ``plan`` is the memory plan at the model's own size with two references; ``memory_mode`` the mode in use."""

    def __init__(self, model: str | os.PathLike | None = None, addon: str | os.PathLike | None = None,
                 device: str | None = None, previews: bool = True, memory: str = "auto", weights: str | None = None):
        from .hub.source import resolve_model
        from .hub.verify import check_model
        from .memory.apply import check_supported
        from .memory.devices import check_device, compute_dtype
        from .memory.plan import plan_memory

        try:
            self.source = resolve_model(model, addon)
            check_model(self.source.folder)
            self.device_name = check_device(device)
            check_supported(memory, self.device_name, weights)
            self.plan = plan_memory(self.source, memory, device=self.device_name, weights=weights)
        except ValueError as error:
            raise EngineError(_first_line(error)) from None
        self.memory_mode = self.plan.mode
        self.weights = weights
        self.model_path = self.source.spec or str(self.source.folder)
        self.model_name = self.source.name
        self.previews = previews
        _quiet_loading()
        out_of_memory = False
        try:
            self.pipe = self._load(compute_dtype(self.device_name))
        except Exception as error:  # any loader failure is a bad folder from the user's point of view
            if not is_out_of_memory(error):
                raise EngineError(f"cannot load model {self.model_name}: {_first_line(error)}") from error
            out_of_memory = True  # raised below, once this block has dropped the traceback and the partial model
        if out_of_memory:
            self._release_memory()
            lighter = self._lighter()
            raise EngineError(f"out of memory loading {self.model_name} with --memory {self.memory_mode} "
                              f"(plan: {self.plan.summary()}){self._hint(lighter)}", lighter)
        self.pipe.set_progress_bar_config(disable=True)

    def _load(self, dtype) -> SqueezePipeline:
        from .memory.apply import apply_memory_mode, load_transformer, store_in_fp8

        kwargs = {"dtype": dtype}
        if self.weights and self.weights != "fp8":
            kwargs["transformer"] = load_transformer(self.source.folder, self._transformer_class(), self.weights, dtype)
        if self.memory_mode == "multi-gpu":
            kwargs["device_map"] = "balanced"
        pipe = SqueezePipeline.from_pretrained(self.source.spec, addon=self.source.addon, **kwargs)
        if self.weights == "fp8":
            store_in_fp8(pipe.transformer)
        apply_memory_mode(pipe, self.memory_mode, self.device_name)
        return pipe

    def _transformer_class(self) -> str:
        import json

        return json.loads((self.source.folder / "model_index.json").read_text())["transformer"][1]

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
            return f"VRAM {torch.cuda.memory_allocated(self.device_name) / 2**30:.1f} GB"
        try:
            import psutil

            return f"RAM {psutil.Process().memory_info().rss / 2**30:.1f} GB"
        except ImportError:
            return "RAM n/a"

    def plan_for(self, request: GenerationRequest):
        """The memory plan for ``request``'s size and references in the mode in use, checked against the memory
        that was free before the model loaded (``plan`` is the same at the model's own size, two references)."""
        from .memory.plan import plan_memory

        request = self.resolve(request)
        return plan_memory(self.source, self.memory_mode, request.height, request.width, len(request.references),
                           self.device_name, self.weights, self.plan.free_vram, self.plan.free_ram)

    def measured_peak(self) -> int | None:
        """Peak VRAM in bytes since the last generation started (the largest card's, for multi-gpu); ``None``
        off CUDA. Shown beside ``plan.vram_bytes``."""
        from .memory.apply import cuda_devices

        devices = cuda_devices(self.memory_mode, self.device_name)
        return max(torch.cuda.max_memory_allocated(d) for d in devices) if devices else None

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
        from .memory.apply import cuda_devices

        for device in cuda_devices(self.memory_mode, self.device_name):
            torch.cuda.reset_peak_memory_stats(device)
        for index, single in enumerate(singles):
            yield from self._run(single, images, should_cancel, index)

    def _run(self, request: GenerationRequest, images, should_cancel, index: int):
        start = time.perf_counter()
        if vae_tiling(request.height, request.width):
            self.pipe.vae.enable_tiling()
        else:
            self.pipe.vae.disable_tiling()
        stream = self.pipe.stream(
            image=images, prompt=request.instruction, negative_prompt=request.negative_prompt,
            tau1=request.tau1, tau2=request.tau2, guidance_scale=request.guidance_scale,
            num_inference_steps=request.num_inference_steps, height=request.height, width=request.width,
            generator=torch.Generator("cpu").manual_seed(request.seed),
        )
        done, failed = 0, False
        try:
            for item in stream:
                if should_cancel():
                    raise GenerationCancelled()
                if isinstance(item, StepUpdate):
                    done = item.step
                    preview = item.preview() if self.previews else None
                    yield StepEvent(item.step, item.total, preview, item.stage.value, index)
                else:
                    yield ImageResult(item.images[0], request, time.perf_counter() - start, index)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            failed = True  # raised below, once this block has dropped the traceback and the tensors it holds
        finally:
            stream.close()
        if failed:
            self._release_memory()
            total = request.num_inference_steps
            where = "while decoding" if done == total else f"at step {done + 1} of {total}"
            lighter = self._lighter(request.height, request.width, len(images))
            raise EngineError(f"out of memory {where} with --memory {self.memory_mode} at {request.width}x"
                              f"{request.height}{self._hint(lighter)}", lighter)

    def _release_memory(self) -> None:
        """After running out of memory: drop cached encodings, offload what the hooks hold, empty the caches."""
        from .memory.devices import empty_cache

        pipe = getattr(self, "pipe", None)
        if pipe is not None:
            pipe.clear_encoding_cache()
            pipe.maybe_free_model_hooks()
        gc.collect()
        empty_cache(self.device_name)

    def _lighter(self, height: int | None = None, width: int | None = None, references: int = 2) -> str:
        from .memory.plan import lighter_mode

        return lighter_mode(self.source, self.memory_mode, height, width, references, self.device_name, self.weights,
                            self.plan.free_vram, self.plan.free_ram)

    @staticmethod
    def _hint(lighter: str) -> str:
        return f": try --memory {lighter}" if lighter else ": try a smaller size or fewer references"
