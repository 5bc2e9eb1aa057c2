"""A compute device simulated on the CPU: which weights are on it, and a check that nothing reads one that is not.

On a CPU-only machine every memory mode moves weights from the CPU to the CPU, so a weight that a mode forgets to
bring to the compute device is still readable there, and a bug that a GPU raises as a device mismatch passes
silently. ``track_residency`` follows what the placing code *does* instead of what the tensors' devices say. A
weight (a parameter or buffer of the watched modules) is on the compute device once one of these puts it there:

- an explicit move: ``Module.to(device)`` / ``Tensor.to(device)`` outside the hooks (``pipe.to``, accelerate's
  ``prepare``, ``vae.to(onload)``);
- diffusers' group offloading: ``ModuleGroup.onload_`` (group-offload, sequential); ``offload_`` takes it off;
- accelerate's model offload: ``CpuOffload.pre_forward``; ``CpuOffload.init_hook`` (the offload) takes it off.

Everything else, a weight as ``from_pretrained`` left it included, is not on it. A ``TorchFunctionMode`` fails the
first operation that reads the data of a watched weight that is not on the compute device, naming the weight;
metadata (shape, dtype, device) may be read, and a dtype cast may happen where the weight lies.

What it cannot see: tensors that are not weights (activations, cached encodings), a move to the wrong device
(every move counts as "to the compute device"), and diffusers' CUDA-stream prefetching (the CPU has no streams,
so group offloading runs its synchronous path here).
"""
from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from itertools import chain
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

# Reads of metadata only, which a GPU answers without moving the data.
_METADATA = {torch.Tensor.size, torch.Tensor.dim, torch.Tensor.numel, torch.Tensor.nelement,
             torch.Tensor.element_size, torch.Tensor.is_floating_point, torch.Tensor.is_complex,
             torch.Tensor.data_ptr, torch.Tensor.is_pinned, torch.Tensor.is_contiguous, torch.Tensor.stride,
             torch.Tensor.storage_offset, torch.Tensor.requires_grad_, torch.Tensor.get_device,
             torch.Tensor.untyped_storage, torch.Tensor.__len__, torch.Tensor.__setstate__,
             torch._has_compatible_shallow_copy_type, torch.is_floating_point, torch.is_complex, torch.numel}


class ResidencyError(AssertionError):
    """An operation read a weight that the memory mode had not put on the compute device."""


def _tensors(module: torch.nn.Module) -> Iterable[torch.Tensor]:
    return chain(module.parameters(), module.buffers())


def _device_argument(args, kwargs) -> bool:
    """Whether a ``Tensor.to`` call names a device (a dtype-only cast moves nothing)."""
    if "device" in kwargs:
        return True
    return any(isinstance(a, str | torch.device | torch.Tensor) for a in args[1:])


class ResidencyTracker(TorchFunctionMode):
    """Install with ``track_residency``; ``watch`` the modules whose weights count."""

    def __init__(self):
        super().__init__()
        self.watched: dict[int, tuple[weakref.ref, str]] = {}
        self.resident: dict[int, weakref.ref] = {}  # by id, with a weak reference so a reused id is not taken
        self.reads = 0  # weight reads checked, to show a run checked something
        self._placing = 0  # inside a hook's own transfer: its reads are the move itself

    def watch(self, modules: dict[str, torch.nn.Module]) -> None:
        for prefix, module in modules.items():
            for name, tensor in chain(module.named_parameters(remove_duplicate=False),
                                      module.named_buffers(remove_duplicate=False)):
                self.watched[id(tensor)] = (weakref.ref(tensor), f"{prefix}.{name}")

    def name_of(self, tensor: torch.Tensor) -> str | None:
        ref, name = self.watched.get(id(tensor), (None, None))
        return name if ref is not None and ref() is tensor else None

    def place(self, tensors: Iterable[torch.Tensor], on: bool) -> None:
        for tensor in tensors:
            if on:
                self.resident[id(tensor)] = weakref.ref(tensor)
            else:
                self.resident.pop(id(tensor), None)

    def is_resident(self, tensor: torch.Tensor) -> bool:
        ref = self.resident.get(id(tensor))
        return ref is not None and ref() is tensor

    @contextmanager
    def placing(self) -> Iterator[None]:
        self._placing += 1
        try:
            yield
        finally:
            self._placing -= 1

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self._placing and func not in _METADATA and getattr(func, "__name__", "") not in ("__get__", "__set__"):
            if func is torch.Tensor.to:  # Module.to reaches every weight this way
                if _device_argument(args, kwargs):
                    self.place([args[0]], True)  # an explicit move
                # else a cast where the weight lies (fp8 storage is made on the CPU): a GPU needs no move
            else:
                self._check(func, args, kwargs)
        return func(*args, **kwargs)

    def _check(self, func, args, kwargs) -> None:
        for leaf in tree_leaves((args, kwargs)):
            name = self.name_of(leaf) if isinstance(leaf, torch.Tensor) else None
            if name is not None:
                self.reads += 1
                if not self.is_resident(leaf):
                    op = getattr(func, "__qualname__", None) or getattr(func, "__name__", repr(func))
                    raise ResidencyError(f"{op} read {name}, which is not on the compute device")


def _group_tensors(group) -> list[torch.Tensor]:
    return [t for m in group.modules for t in _tensors(m)] + list(group.parameters) + list(group.buffers)


@contextmanager
def track_residency() -> Iterator[ResidencyTracker]:
    """Patch the offload hooks to report to a tracker, and check every operation inside the block. Every
    ``SqueezePipeline`` loaded and every module given to ``Accelerator.prepare`` inside it is watched."""
    from accelerate import Accelerator
    from accelerate.hooks import CpuOffload
    from diffusers.hooks.group_offloading import ModuleGroup

    from ..pipeline import SqueezePipeline

    tracker = ResidencyTracker()

    def reporting(original, tensors_of, on: bool):
        def patched(self, *args, **kwargs):
            with tracker.placing():
                out = original(self, *args, **kwargs)
            tracker.place(tensors_of(self, args), on)
            return out
        return patched

    with ExitStack() as stack:
        for owner, name, tensors_of, on in (
            (ModuleGroup, "onload_", lambda group, args: _group_tensors(group), True),
            (ModuleGroup, "offload_", lambda group, args: _group_tensors(group), False),
            (CpuOffload, "pre_forward", lambda hook, args: _tensors(args[0]), True),
            (CpuOffload, "init_hook", lambda hook, args: _tensors(args[0]), False),
        ):
            stack.enter_context(mock.patch.object(owner, name, reporting(getattr(owner, name), tensors_of, on)))
        load, prepare = SqueezePipeline.from_pretrained.__func__, Accelerator.prepare

        def watching_load(cls, *args, **kwargs):
            pipe = load(cls, *args, **kwargs)
            modules = pipeline_modules(pipe)
            tracker.watch(modules)  # loaded is at home, whatever moves the loaders made on the way
            tracker.place((t for module in modules.values() for t in _tensors(module)), False)
            return pipe

        def watching_prepare(accelerator, *args, **kwargs):
            tracker.watch({f"prepared{i}": a for i, a in enumerate(args) if isinstance(a, torch.nn.Module)})
            return prepare(accelerator, *args, **kwargs)

        def editing(original):
            def patched(self, *args, **kwargs):
                with tracker.placing():  # a weight edit where the weights lie (fusing a LoRA), not a compute read
                    return original(self, *args, **kwargs)
            return patched

        for name in ("fuse_lora", "unfuse_lora"):
            stack.enter_context(mock.patch.object(SqueezePipeline, name, editing(getattr(SqueezePipeline, name))))
        stack.enter_context(mock.patch.object(SqueezePipeline, "from_pretrained", classmethod(watching_load)))
        stack.enter_context(mock.patch.object(Accelerator, "prepare", watching_prepare))
        stack.enter_context(tracker)
        yield tracker


def pipeline_modules(pipe) -> dict[str, torch.nn.Module]:
    """The pipeline's modules by component name, the connector and preview map included."""
    return {name: module for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
