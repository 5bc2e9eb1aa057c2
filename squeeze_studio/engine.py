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

from .copy_paste import copy_paste
from .errors import first_line
from .events import GenerationCancelled, ImageResult, StepEvent
from .memory.plan import vae_tiling
from .pictures import name_pictures
from .pipeline import SqueezePipeline, StepUpdate
from .pipeline.pipeline_squeeze import NonFiniteError
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



def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's ``OutOfMemoryError``, and the ``RuntimeError`` other allocators (CPU, MPS, cuBLAS) raise."""
    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or isinstance(error, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text)


class Engine:
    """``model``: anything ``hub.resolve_model`` takes (None or "" = the demo, a folder, a cached repo id, an
    add-on folder) or the ``hub.ResolvedModel`` it returns; ``addon``: an add-on folder for that base. The model is
    verified (files, safetensors headers, shapes) before it loads, so a broken folder is one line, not a traceback.

    ``device``: "cuda", "cuda:1", "mps" or "cpu" (default: the best present). ``memory``: a mode of
    ``memory.MEMORY_MODES`` ("auto": the fastest the plan says fits). ``weights``: how the transformer is stored,
    ``memory.WEIGHT_FORMATS`` ("fp8", "int8", "nf4") or a single .gguf / .safetensors transformer file.
    ``plan`` is the memory plan at the model's own size with two references; ``memory_mode`` the mode in use."""

    def __init__(self, model: str | os.PathLike | None = None, addon: str | os.PathLike | None = None,
                 device: str | None = None, previews: bool = True, memory: str = "auto", weights: str | None = None):
        from .hub.resolve import ResolvedModel, resolve_model
        from .hub.verify import check_model
        from .memory.apply import check_supported
        from .memory.devices import check_device, compute_dtype
        from .memory.plan import plan_memory

        try:
            if isinstance(model, ResolvedModel) and addon:
                raise ValueError("a resolved model carries its add-on: give the add-on to resolve_model")
            self.source = model if isinstance(model, ResolvedModel) else resolve_model(model, addon)
            check_model(self.source.folder)
            check_component_libraries(self.source.folder)
            self.device_name = check_device(device)
            check_supported(memory, self.device_name, weights)
            self.plan = plan_memory(self.source, memory, device=self.device_name, weights=weights)
        except ValueError as error:
            raise EngineError(first_line(error)) from None
        self.memory_mode = self.plan.mode
        self.weights = weights
        self.model_path = self.source.spec or str(self.source.folder)
        self.model_name = self.source.name
        self.previews = previews
        self.compiler = None  # the transformer's compiled blocks, once a request asked on CUDA (``BlockCompiler``)
        _quiet_loading()
        out_of_memory = False
        try:
            self.pipe = self._load(compute_dtype(self.device_name))
        except Exception as error:  # any loader failure is a bad folder from the user's point of view
            if not is_out_of_memory(error):
                raise EngineError(f"cannot load model {self.model_name}: {first_line(error)}") from error
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
        pipe = SqueezePipeline.from_pretrained(self.source, **kwargs)
        if self.device_name == "cpu":
            detach_from_files(pipe, self._weight_files())
        if self.weights == "fp8":
            store_in_fp8(pipe.transformer)
        apply_memory_mode(pipe, self.memory_mode, self.device_name, self.plan.low_cpu_mem_usage)
        return pipe

    def _weight_files(self) -> set[str]:
        """The real paths of the model's (and add-on's) safetensors files: in a Hugging Face cache they are blobs
        named by their hash, so a mapping is recognised by its path, not its suffix."""
        folders = [self.source.folder] + ([self.source.addon] if self.source.addon else [])
        return {os.path.realpath(path) for folder in folders for path in folder.rglob("*.safetensors")}

    def _transformer_class(self) -> str:
        import json

        return json.loads((self.source.folder / "model_index.json").read_text())["transformer"][1]

    @property
    def stage_defaults(self):
        """The τ1/τ2/guidance this model (or its add-on) recommends, with where they came from."""
        return self.source.stage_defaults

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
        request = request.replace(loras=described_loras(request.loras))  # name and sha256 for the recipe
        images = self.check(request)
        self.apply_loras(request)
        singles = [request.replace(seed=request.seed + i, batch_count=1) for i in range(request.batch_count)]
        return self._run_all(singles, images, should_cancel)

    def sweep(self, request: GenerationRequest, variations: list[dict],
              should_cancel: Callable[[], bool] = lambda: False) -> Iterator[StepEvent | ImageResult]:
        """One image per variation (fields such as tau1, tau2, seed, guidance_scale overridden). The
        references and instruction are shared, so the MLLM runs once for the whole sweep."""
        base = self.resolve(request)
        base = base.replace(loras=described_loras(base.loras))
        singles = [base.replace(**changes, batch_count=1) for changes in variations]
        images = self.check(base)
        for single in singles:
            self.check(single, images)
        self.apply_loras(base)
        return self._run_all(singles, images, should_cancel)

    def apply_loras(self, request: GenerationRequest) -> None:
        """Put ``request.loras`` on the model (``SqueezePipeline.set_loras``: files already loaded are not read
        again); ``EngineError`` in one line for a file that is not a LoRA of this model."""
        from .pipeline import LoraSpec

        specs = [LoraSpec(lora["path"], float(lora.get("weight", 1.0)), lora.get("name", "")) for lora in request.loras]
        try:
            self.pipe.set_loras(specs)
        except ValueError as error:
            raise EngineError(first_line(error)) from None

    def check(self, request: GenerationRequest, images=None) -> list:
        """Validate ``request`` against this model; returns the loaded reference images."""
        request.validate()
        images = load_references(request.references) if images is None else images
        self.pipe.check_inputs(images, name_pictures(request.instruction, request.subjects), request.height,
                               request.width, request.num_inference_steps, request.tau1, request.tau2,
                               request.guidance_scale, request.negative_prompt)
        return images

    def _run_all(self, singles, images, should_cancel):
        from .memory.apply import cuda_devices

        for device in cuda_devices(self.memory_mode, self.device_name):
            torch.cuda.reset_peak_memory_stats(device)
        for index, single in enumerate(singles):
            yield from self._run(single, images, should_cancel, index)

    @property
    def compiled(self) -> bool:
        return self.compiler is not None and self.compiler.compiled

    def _run(self, request: GenerationRequest, images, should_cancel, index: int):
        from .pipeline.step_cache import BlockCompiler

        self.compiler = self.compiler or BlockCompiler(self.pipe, self.device_name)
        note = self.compiler.prepare(request.compile)
        request = request.replace(compile=self.compiled)  # as it runs: CUDA only, and a compiled engine stays so
        start = time.perf_counter()
        if vae_tiling(request.height, request.width):
            self.pipe.vae.enable_tiling()
        else:
            self.pipe.vae.disable_tiling()
        stream = self.pipe.stream(
            image=images, prompt=name_pictures(request.instruction, request.subjects),
            negative_prompt=request.negative_prompt,
            tau1=request.tau1, tau2=request.tau2, guidance_scale=request.guidance_scale,
            num_inference_steps=request.num_inference_steps, height=request.height, width=request.width,
            generator=torch.Generator("cpu").manual_seed(request.seed), output_type="pt", check_finite=True,
            cache=request.cache,
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
                    image = self.pipe.backbone.image_processor.pt_to_numpy(item.images[:1])
                    image = self.pipe.backbone.image_processor.numpy_to_pil(image)[0]
                    seconds = time.perf_counter() - start
                    info = {"forward_passes": item.forward_passes, "full_passes": item.full_passes}
                    note = self.compiler.timing(seconds) if self.compiled else note
                    if note:
                        info["compile"] = note
                    yield ImageResult(image, request, seconds, index, info,
                                      copy_paste(image, images) if images else None)
        except NonFiniteError as error:
            raise EngineError(
                f"{error} from {self.model_name} ({str(self.pipe.transformer.dtype).removeprefix('torch.')} on "
                f"{self.device_name}): no image was made; the model's weights may hold NaN/Inf, or this precision "
                f"is too narrow for it") from None
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


def described_loras(loras: list[dict]) -> list[dict]:
    """``loras`` with each one's name (its file's stem when none is given) and sha256 filled in; ``EngineError``
    for a file that is missing or not a .safetensors file."""
    from .hub.lora_files import check_lora_file, file_sha256, lora_name

    described = []
    for lora in loras:
        try:
            path = check_lora_file(lora["path"])
        except ValueError as error:
            raise EngineError(first_line(error)) from None
        described.append({"path": str(lora["path"]), "weight": float(lora.get("weight", 1.0)),
                          "name": lora.get("name") or lora_name(path), "sha256": file_sha256(path)})
    return described


SAFE_LIBRARIES = ("diffusers", "transformers")


def check_component_libraries(folder: str | os.PathLike) -> None:
    """``ValueError`` when ``model_index.json`` names a component from a library other than diffusers,
    transformers or Squeeze Studio: loading it would import that library's code for a downloaded folder."""
    import json
    from pathlib import Path

    try:
        index = json.loads((Path(folder) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # check_model has said so already
    for name, entry in index.items() if isinstance(index, dict) else ():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) != 2 or entry[0] is None:
            continue
        library = str(entry[0])
        if library not in SAFE_LIBRARIES and not library.startswith("squeeze_studio."):
            raise ValueError(f"model_index.json names {name} from the library {library!r}; only diffusers, "
                             f"transformers and squeeze_studio components are loaded")


def detach_from_files(pipe, files: set[str] = frozenset()) -> int:
    """Copy every CPU tensor of ``pipe`` that is still memory-mapped from a weights file into the process's own
    memory; returns how many were copied.

    safetensors loads by ``mmap``: a weight used as it is (CPU, same dtype) stays backed by the file, and a file
    truncated or rewritten while the model is loaded (a re-download, a copy over it) then kills the process
    with SIGBUS at the next step. After this the model no longer reads the files, so a later load is what
    notices the change (``check_model``, one line). Linux finds the mapped tensors in ``/proc/self/maps`` (any
    ``.safetensors`` file, and ``files``: real paths, such as a Hugging Face cache's hash-named blobs); elsewhere
    every CPU tensor is copied."""
    ranges = _mapped_weight_ranges(files)
    copied = 0
    for component in pipe.components.values():
        if not isinstance(component, torch.nn.Module):
            continue
        for tensor in [*component.parameters(), *component.buffers()]:
            if tensor.device.type != "cpu" or tensor.numel() == 0:
                continue
            pointer = tensor.untyped_storage().data_ptr()
            if ranges is None or any(start <= pointer < end for start, end in ranges):
                tensor.data = tensor.data.clone()
                copied += 1
    return copied


def _mapped_weight_ranges(files: set[str] = frozenset()) -> list[tuple[int, int]] | None:
    """Address ranges of this process's memory-mapped ``.safetensors`` files and ``files``; ``None`` where
    unknown."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            lines = maps.readlines()
    except OSError:
        return None
    ranges = []
    for line in lines:
        parts = line.split(maxsplit=5)
        path = parts[5].rstrip("\n").removesuffix(" (deleted)") if len(parts) == 6 else ""
        if path.endswith(".safetensors") or path in files:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            ranges.append((start, end))
    return ranges
