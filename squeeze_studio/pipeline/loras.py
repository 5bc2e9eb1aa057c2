"""LoRAs as people have them, on a ``SqueezePipeline``'s transformer: ``pipe.set_loras([LoraSpec(path, weight)])``.

Formats: diffusers/peft (``transformer.….lora_A.weight``), ComfyUI/kohya (``lora_unet_…``, ``diffusion_model.…``,
``lora_down``/``lora_up``/``alpha``) and lightx2v's (bare ``transformer_blocks.…lora_down.weight`` with ``alpha``),
all through diffusers' own ``QwenImageLoraLoaderMixin.lora_state_dict`` and its Qwen converter. Each file becomes
one peft adapter; ``set_adapters`` gives each its weight, beside a Squeeze add-on's own adapter ("addon", weight 1).

- The file is read with ``safetensors`` only: a pickle is refused by name before anything opens it.
- Before anything is loaded into the transformer, every layer the LoRA names is checked against it (exists, is a
  linear layer, in/out features match the LoRA's A/B): a LoRA for another model is refused in one line saying why.
- Idempotent: a file already loaded (same real path, modification time and size) is not read again when the list
  changes; up to ``IDLE_ADAPTERS`` adapters no longer listed stay loaded (switched off) for a quick switch back.
- A LoRA whose defaults name scheduler settings (``hub.lora_files``) gets them while it is active; the model's own
  scheduler comes back when none is.
- Fused: once the adapters and weights are set, they are merged into the transformer's weights (diffusers'
  ``fuse_lora``, peft's ``merge``: W += weight x scale x B @ A), so a step costs what the model alone costs. Before
  the list or a weight changes they are taken out again (``unfuse_lora``: the same delta subtracted), since peft
  recomputes the delta from the adapter's current scaling; the weights come back to within rounding (in bf16 a
  cycle leaves ~2.5 % of them one rounding step off: ``benchmarks/lora_roundtrip.py``, docs/models.md). An
  unchanged list touches nothing. Not fused (``fuse_refusal``, said once in the log) where the weights are not
  plain floating-point tensors in place: quantized (int8 / nf4 / GGUF), stored in float8 (``--weights fp8``) or
  streamed by group offloading (``--memory group-offload`` / ``sequential``); there the adapters run beside them.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..hub.lora_files import check_lora_file, lora_defaults, lora_name

ADDON_ADAPTER = "addon"  # pipeline.addon.load_addon_lora's adapter name
IDLE_ADAPTERS = 2
FUSABLE_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA to apply: a ``.safetensors`` file and its weight (0 = no effect; negative weights are allowed)."""

    path: str
    weight: float = 1.0
    name: str = ""  # shown in the recipe; default: the file's stem

    @property
    def label(self) -> str:
        return self.name or lora_name(self.path)


def adapter_name(path: Path) -> str:
    """One adapter per file version: the real path, modification time and size, hashed."""
    stat = path.stat()
    key = f"{os.path.realpath(path)}|{stat.st_mtime_ns}|{stat.st_size}"
    return "lora_" + hashlib.sha1(key.encode()).hexdigest()[:12]


def read_lora(path: Path, pipe) -> dict[str, torch.Tensor]:
    """The file's tensors in diffusers' naming (``transformer.<module>.lora_A/B.weight``); ``ValueError`` in one
    line for a file safetensors cannot read or keys no converter knows."""
    import safetensors
    from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_qwen_lora_to_diffusers
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (OSError, safetensors.SafetensorError) as error:
        raise ValueError(f"{path.name} is not a readable safetensors file ({str(error).splitlines()[0]})") from None
    if not state:
        raise ValueError(f"{path.name} holds no tensors")
    try:
        state = pipe.lora_state_dict(state)  # ComfyUI / kohya / alpha-carrying files: diffusers converts them
        if not all(key.startswith("transformer.") for key in state):  # bare module names (lightx2v without alpha)
            state = _convert_non_diffusers_qwen_lora_to_diffusers(state)
    except (ValueError, KeyError, IndexError) as error:
        raise ValueError(f"{path.name}: not a Qwen-Image LoRA diffusers can read ({str(error)[:120]})") from None
    return state


def check_fit(name: str, state: dict[str, torch.Tensor], transformer) -> None:
    """``ValueError`` in one line when ``state`` names layers ``transformer`` lacks or has other shapes."""
    modules = dict(transformer.named_modules())
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        module, dot, part = key.removeprefix("transformer.").rpartition(".lora_")
        if not dot or part not in ("A.weight", "B.weight", "B.bias"):
            raise ValueError(f"{name}: unexpected key {key}")
        pairs.setdefault(module, {})[part] = tensor
    missing = sorted(m for m in pairs if m not in modules)
    if missing:
        raise ValueError(f"{name}: {len(missing)} of {len(pairs)} layers it names are not in this transformer "
                         f"(e.g. {', '.join(missing[:2])}): it was made for another model")
    for module, parts in sorted(pairs.items()):
        layer = modules[module]
        layer = getattr(layer, "base_layer", layer)  # a layer that already carries an adapter
        a, b = parts.get("A.weight"), parts.get("B.weight")
        if a is None or b is None:
            raise ValueError(f"{name}: {module} has only half of its LoRA pair")
        if not hasattr(layer, "in_features"):
            raise ValueError(f"{name}: {module} is a {type(layer).__name__}, not a linear layer")
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ValueError(f"{name}: {module}'s A {tuple(a.shape)} and B {tuple(b.shape)} do not pair")
        if a.shape[1] != layer.in_features or b.shape[0] != layer.out_features:
            raise ValueError(f"{name}: {module} is {layer.in_features} -> {layer.out_features} here, the LoRA "
                             f"expects {a.shape[1]} -> {b.shape[0]}: it was made for another model")


class LoraState:
    """What ``set_loras`` keeps on one pipeline: the adapters it loaded, the model's own scheduler."""

    def __init__(self, pipe):
        self.loaded: dict[str, str] = {}  # adapter name -> file, oldest first
        self.scheduler = pipe.scheduler
        self.active: list[tuple[str, float]] = []
        self.refusal_logged = False


def set_loras(pipe, specs) -> list[str]:
    """Apply ``specs`` (``LoraSpec`` or dicts with path/weight/name), replacing the previous list; returns the
    adapter names in use. Every file is checked before any is loaded, so a refusal changes nothing."""
    specs = [s if isinstance(s, LoraSpec) else LoraSpec(str(s["path"]), float(s.get("weight", 1.0)),
                                                        str(s.get("name") or "")) for s in specs]
    state = pipe._lora_state = getattr(pipe, "_lora_state", None) or LoraState(pipe)
    paths = [check_lora_file(spec.path) for spec in specs]
    names = [adapter_name(path) for path in paths]
    if len(set(names)) < len(names):
        raise ValueError("the same LoRA file is listed twice: give it one weight")
    fresh = {}
    for spec, path, name in zip(specs, paths, names, strict=True):
        if name not in state.loaded and name not in fresh:
            fresh[name] = read_lora(path, pipe)
            check_fit(spec.label, fresh[name], pipe.transformer)
    schedule = _scheduler_settings(paths, specs)  # a bad sidecar is refused before anything loads
    adapters = [(n, s.weight) for n, s in zip(names, specs, strict=True)]
    if ADDON_ADAPTER in _adapters(pipe):
        adapters.insert(0, (ADDON_ADAPTER, 1.0))
    if fresh or adapters != state.active:
        _unfuse(pipe)  # peft subtracts the delta of the current weights: before any of them changes
        for name, tensors in fresh.items():
            pipe.load_lora_weights(tensors, adapter_name=name)
            state.loaded[name] = str(paths[names.index(name)])
        _drop_idle(pipe, state, set(names))
        if adapters:
            pipe.enable_lora()
            pipe.set_adapters([n for n, _ in adapters], [w for _, w in adapters])
        elif _adapters(pipe):
            pipe.disable_lora()
        state.active = adapters
    if adapters and not fused_adapters(pipe.transformer):
        _fuse(pipe, state, [n for n, _ in adapters])
    _set_scheduler(pipe, state, schedule)
    return [n for n, _ in adapters]


def fuse_refusal(transformer) -> str | None:
    """Why ``transformer``'s weights cannot take a LoRA merged into them exactly, or None when they can."""
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    quantizer = getattr(transformer, "hf_quantizer", None)
    if quantizer is not None or getattr(transformer, "is_quantized", False):
        method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", "")
        return f"its weights are quantized ({method or 'int8/nf4'}): a merge would requantize them"
    if _is_group_offload_enabled(transformer):
        return "group offloading streams its weights from CPU copies, which a merge would not reach"
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in transformer.modules():
        if isinstance(module, BaseTunerLayer):
            weight = module.get_base_layer().weight
            if weight.dtype not in FUSABLE_DTYPES:
                return f"its weights are stored in {str(weight.dtype).removeprefix('torch.')}: a merge would round away"
            if weight.device.type == "meta":
                return "its weights are offloaded (on the meta device)"
    return None


def _fuse(pipe, state: LoraState, names: list[str]) -> None:
    reason = fuse_refusal(pipe.transformer)
    if reason is None:
        pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=names)  # the weights: set_adapters'
    elif not state.refusal_logged:
        logger.info("LoRAs run unfused (slower) on this transformer: %s", reason)
        state.refusal_logged = True


def _unfuse(pipe) -> None:
    if fused_adapters(pipe.transformer):
        pipe.unfuse_lora(components=["transformer"])


def fused_adapters(transformer) -> set[str]:
    """The adapters merged into ``transformer``'s weights (read from its layers, so a direct ``unfuse_lora`` counts)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name for m in transformer.modules() if isinstance(m, BaseTunerLayer) for name in m.merged_adapters}


def _adapters(pipe) -> set[str]:
    return set(getattr(pipe.transformer, "peft_config", None) or {})


def _drop_idle(pipe, state: LoraState, wanted: set[str]) -> None:
    idle = [n for n in state.loaded if n not in wanted]
    for name in idle[: max(0, len(idle) - IDLE_ADAPTERS)]:
        pipe.delete_adapters(name)
        del state.loaded[name]


def _scheduler_settings(paths, specs) -> dict:
    """The scheduler settings the active LoRAs ask for (weight 0 asks for nothing); two that disagree are refused."""
    merged: dict = {}
    for path, spec in zip(paths, specs, strict=True):
        if spec.weight == 0:
            continue
        for key, value in lora_defaults(path).scheduler.items():
            if key in merged and merged[key] != value:
                raise ValueError(f"{spec.label} asks for scheduler {key} = {value}, another LoRA for {merged[key]}")
            merged[key] = value
    return merged


def _set_scheduler(pipe, state: LoraState, settings: dict) -> None:
    scheduler = state.scheduler
    if settings:
        scheduler = type(state.scheduler).from_config({**state.scheduler.config, **settings})
    if scheduler is not pipe.scheduler:
        pipe.register_modules(scheduler=scheduler)
