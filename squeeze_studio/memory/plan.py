"""A memory plan before loading: the predicted peak VRAM and RAM of a model, mode and output size.

Plain Python, no torch at import: the window calls ``plan_memory`` from its GUI thread (pass ``free_vram`` /
``free_ram`` there, or the free memory is measured, which imports torch for a GPU). Parameter counts are exact
(``sizes``); everything else is an estimate from the configs, in the compute dtype:

- weights: parameters x bytes (1 for fp8 and int8, 0.5 for nf4, a .gguf file's size);
- the MLLM pass: its all-layer hidden-state stack ((layers + 1) x batch 3 x tokens x hidden) counted three
  times (the layer outputs, the stacked copy, the per-prompt copies kept), plus the LM head's logits and one
  layer's working set; tokens = 64 template + 40 instruction + per reference its image tokens and 8 markers;
- the encoding cache: ``ENCODING_CACHE_SIZE`` entries, each two all-layer stacks (instruction, negative);
- the connector: ~12 stacks of context tokens x layers x hidden live in a LAP;
- a transformer step: ~12 x sequence x width live in a block (q, k, v, attention output, residual, the
  4x-wide MLP), attention assumed memory-efficient (no sequence² matrix); sequence = target tokens
  ((H/16)(W/16)) + reference tokens (reference area / 16² each) + context tokens;
- the VAE: 18 full-resolution maps of its first stage's channels to decode (the causal 3-D VAE caches each
  convolution's input), at the output size or one 256² tile when tiled (outputs above 2 megapixels); 10 to
  encode a reference, one at a time, untiled (both measured: ``VAE_DECODE_MAPS``).

The one-card modes load every weight into host memory first (RAM = the weights as loaded + ``HOST_OVERHEAD``)
and the offload modes keep them there; multi-gpu loads straight to the cards (diffusers' balanced map, simulated
here per card). Streamed modes keep two groups on the GPU (one computing, one prefetched on a CUDA stream). On
CUDA they also keep a page-locked copy of every offloaded weight (diffusers' ``use_stream``): block-level offload
pins every block before it lets go of any original, so the transformer is briefly in RAM twice (the
group-offload transient); leaf-level offload pins and lets go one layer at a time. Where that does not fit, the
plan falls back to ``low_cpu_mem_usage`` (pinned per transfer, one group at a time; slower) and says so. Not
counted: the CUDA context and allocator fragmentation, hence ``MARGIN`` when deciding what fits, on VRAM and
RAM alike.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .modes import ONE_CARD_MODES, check_mode, lighter_modes
from .sizes import ROLES, ModelFacts, model_facts

GIB = 2**30
HOST_OVERHEAD = 2 * GIB  # Python, torch and CUDA libraries in host memory
MARGIN = 1.1  # the plan must fit in free memory with 10 % to spare
ENCODING_CACHE_SIZE = 4  # pipeline_squeeze.ENCODING_CACHE_SIZE (kept in sync by a test)
PROMPT_TOKENS, TEMPLATE_TOKENS, SLOT_TOKENS = 104, 64, 8
MLLM_BATCH = 3  # instruction, negative and null prompt in one pass
BLOCK_ACTIVATIONS, CONNECTOR_ACTIVATIONS = 12, 12
# Full-resolution maps of the VAE's first-stage channels live at the peak, measured on the real Qwen-Image VAE in
# bf16 by benchmarks/vae_memory.py (CPU, docs/performance.md): 18.0 to decode, 10.0 to encode, at every size.
VAE_DECODE_MAPS, VAE_ENCODE_MAPS = 18, 10
TILE = 256  # the Qwen-Image VAE's tile side in pixels
TILE_ABOVE_PIXELS = 2 * 1024 * 1024  # outputs larger than 2 megapixels decode in tiles in every mode
ROLES_STREAMED = tuple(role for role in ROLES if role != "transformer")  # offloaded leaf by leaf
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
WEIGHT_BYTES = {"fp8": 1.0, "int8": 1.0, "nf4": 0.5}


@dataclass(frozen=True)
class MemoryPlan:
    """The predicted peaks for one model, mode, device and size, and whether they fit what is free."""

    mode: str  # the mode planned ("auto" resolved)
    device: str
    height: int
    width: int
    references: int
    dtype: str
    vram_bytes: int  # accelerator peak (per card for multi-gpu); 0 on the CPU
    ram_bytes: int  # host memory peak
    free_vram: int | None  # what it was checked against; None: unknown (or the CPU)
    free_ram: int | None
    fits: bool
    suggestion: str  # a lighter mode that would fit, or ""
    vae_tiling: bool
    parameters: dict[str, int] = field(default_factory=dict)
    low_cpu_mem_usage: bool = False  # streamed modes pin each group as it moves instead of all at set-up (RAM short)

    def summary(self) -> str:
        """One line, e.g. ``group-offload on cuda at 1024x1024, 2 references: ~5.2 GiB VRAM of 23.4 free, ...``."""
        memory = f"~{_gib(self.ram_bytes)} RAM"
        if self.device != "cpu":
            free = f" of {_gib(self.free_vram, '')} free" if self.free_vram is not None else " (free VRAM unknown)"
            memory = f"~{_gib(self.vram_bytes)} VRAM{free}, " + memory
        if self.free_ram is not None:
            memory += f" of {_gib(self.free_ram, '')} available"
        if self.low_cpu_mem_usage:
            memory += " (weights pinned as they move: RAM is short)"
        text = (f"{self.mode} on {self.device} at {self.width}x{self.height}, {self.references} reference"
                f"{'' if self.references == 1 else 's'}: {memory}")
        if self.fits or (self.free_vram is None and self.device != "cpu"):
            return text
        return text + (f"; does not fit: try --memory {self.suggestion}" if self.suggestion else "; does not fit")


def plan_memory(source_or_folder, mode: str = "auto", height: int | None = None, width: int | None = None,
                references: int = 2, device: str | None = None, weights: str | None = None,
                free_vram: int | None = None, free_ram: int | None = None, gpus: int | None = None) -> MemoryPlan:
    """Plan ``mode`` (``"auto"``: the first mode that fits, fastest first) for ``source_or_folder`` (a
    ``hub.ResolvedModel``, a model folder or anything ``hub.resolve_model`` takes) at ``height`` x ``width``
    (default: the model's own size) with ``references`` references on ``device`` (default: the best here).

    ``weights`` is the transformer's storage (``modes.WEIGHT_FORMATS`` or a single-file path). ``free_vram``,
    ``free_ram`` and ``gpus`` default to what this machine has; measuring them, like the default device, imports
    torch, so the GUI thread passes all three and the device."""
    check_mode(mode)
    folder, addon = _folder_of(source_or_folder)
    facts = model_facts(folder, addon)
    if device is None:
        from .devices import default_device

        device = default_device()
    kind = device.split(":")[0]
    if free_ram is None or (free_vram is None and kind != "cpu"):
        from .devices import free_memory

        measured_vram, measured_ram = free_memory(device)
        free_vram = measured_vram if free_vram is None else free_vram
        free_ram = measured_ram if free_ram is None else free_ram
    if gpus is None:
        gpus = _cuda_count() if kind == "cuda" else 0
    height = height or facts.default_size
    width = width or facts.default_size
    dtype = "bf16" if kind == "cuda" else "fp32" if kind == "cpu" else _mps_dtype()

    def plan(name: str) -> MemoryPlan:
        return _plan(facts, name, device, height, width, references, dtype, weights, free_vram, free_ram, gpus)

    if mode == "auto":
        candidates = ["full"] if kind != "cuda" else ["full", "multi-gpu", *ONE_CARD_MODES[1:]]
        plans = [plan(name) for name in candidates if name != "multi-gpu" or gpus > 1]
        chosen = next((p for p in plans if p.fits), plans[-1])
    else:
        chosen = plan(mode)
    if chosen.fits or kind != "cuda":
        return chosen
    lighter = next((name for name in lighter_modes(chosen.mode) if plan(name).fits), "")
    return replace(chosen, suggestion=lighter)


def lighter_mode(source_or_folder, mode: str, height: int | None = None, width: int | None = None,
                 references: int = 2, device: str = "cuda", weights: str | None = None,
                 free_vram: int | None = None, free_ram: int | None = None) -> str:
    """What to try after running out of memory in ``mode``: the first lighter mode the plan says fits
    ``free_vram`` (what was free before the model loaded), else simply the next lighter one; "" off CUDA and
    after ``sequential``."""
    if not device.startswith("cuda"):
        return ""
    plan = plan_memory(source_or_folder, mode, height, width, references, device, weights, free_vram, free_ram)
    return plan.suggestion or next(iter(lighter_modes(mode)), "")


def vae_tiling(height: int, width: int) -> bool:
    """Decode in tiles for outputs above 2 megapixels, in every mode (below that, tiles would save little next to
    the MLLM pass and would change the image slightly at the seams)."""
    return height * width > TILE_ABOVE_PIXELS


def _plan(facts: ModelFacts, mode, device, height, width, references, dtype, weights, free_vram, free_ram,
          gpus) -> MemoryPlan:
    size_multiple = facts.size_multiple
    for name, value in (("height", height), ("width", width)):
        if value <= 0 or value % size_multiple:
            raise ValueError(f"{name} must be a positive multiple of {size_multiple} for this model (got {value})")
    b = DTYPE_BYTES[dtype]
    cuda = device.startswith("cuda")
    tiling = vae_tiling(height, width)
    w = {role: part.parameters * b for role, part in facts.weights.items()}
    w["transformer"] = _transformer_bytes(facts, weights, b)
    act = _activations(facts, height, width, references, b, tiling)
    cache = _cache_bytes(facts, references, b)
    # As loaded: fp8 storage starts once the whole pipeline is loaded in the compute dtype.
    loaded = dict(w, transformer=facts.weights["transformer"].parameters * b) if weights == "fp8" else w
    ram = sum(loaded.values()) + HOST_OVERHEAD
    if not cuda and device != "mps":  # the CPU: everything in host memory
        vram, ram = 0, ram + cache + max(act.values())
    elif mode == "full":
        vram = sum(w.values()) + cache + max(act.values())
    elif mode == "model-offload":  # diffusers' hooks: the VAE stays once used; the others take turns
        vram = cache + w["vae"] + max(w["text_encoder"] + max(act["mllm"], act["vae"]),
                                      w["connector"] + act["connector"], w["transformer"] + act["transformer"],
                                      act["vae"])
    elif mode in ("group-offload", "sequential"):
        vram = cache + _streamed(facts, mode, act, w, b, prefetch=2 if cuda else 1)
    else:
        vram, ram = _multi_gpu(loaded, act, cache, max(gpus, 2)), max(loaded.values()) + HOST_OVERHEAD
    low_cpu_mem_usage = False
    if cuda and mode in ("group-offload", "sequential"):
        stored = sum(w.values()) + HOST_OVERHEAD  # after fp8 storage is made, before the hooks pin anything
        pinned = max(ram, stored + _pinning_transient(facts, mode, w, b))
        low_cpu_mem_usage = free_ram is not None and pinned * MARGIN > free_ram
        ram = max(ram, stored + 2 * _largest_group(facts, mode, w, b)) if low_cpu_mem_usage else pinned
    fits = _fits(mode, device, vram, ram, free_vram, free_ram, gpus)
    parameters = {role: part.parameters for role, part in facts.weights.items()}
    return MemoryPlan(mode, device, height, width, references, dtype, int(vram), int(ram), free_vram, free_ram, fits,
                      "", tiling, parameters, low_cpu_mem_usage)


def _transformer_bytes(facts: ModelFacts, weights: str | None, b: int) -> float:
    parameters = facts.weights["transformer"].parameters
    if not weights:
        return parameters * b
    if weights in WEIGHT_BYTES:
        return parameters * WEIGHT_BYTES[weights]
    if str(weights).endswith(".gguf"):  # stays quantized on the GPU, dequantized layer by layer
        return os.path.getsize(weights)
    return parameters * b  # a single .safetensors file of the same transformer


def _activations(facts: ModelFacts, height, width, references, b, tiling) -> dict[str, float]:
    """Peak working memory of each phase, in bytes (see the module docstring for what is counted)."""
    m = facts.size_multiple
    mllm_tokens = PROMPT_TOKENS + references * (facts.image_tokens + SLOT_TOKENS)
    context = mllm_tokens - TEMPLATE_TOKENS
    stack = (facts.mllm_layers + 1) * MLLM_BATCH * mllm_tokens * facts.mllm_hidden
    logits = MLLM_BATCH * mllm_tokens * facts.vocab_size
    layer = MLLM_BATCH * mllm_tokens * (3 * facts.mllm_intermediate + 4 * facts.mllm_hidden)
    sequence = (height // m) * (width // m) + references * facts.reference_image_area // (m * m) + context
    pools = CONNECTOR_ACTIVATIONS * context * (facts.mllm_layers + 1) * facts.mllm_hidden
    output = TILE * TILE if tiling else height * width
    reference = facts.reference_image_area if references else 0
    return {
        "mllm": (3 * stack + logits + layer) * b,
        "connector": pools * b if facts.connector_pools else 0,
        "transformer": BLOCK_ACTIVATIONS * sequence * facts.transformer_width * b,
        "vae": max(VAE_DECODE_MAPS * output, VAE_ENCODE_MAPS * reference) * facts.vae_width * b,
    }


def _cache_bytes(facts: ModelFacts, references, b) -> float:
    context = PROMPT_TOKENS - TEMPLATE_TOKENS + references * (facts.image_tokens + SLOT_TOKENS)
    return ENCODING_CACHE_SIZE * 2 * (facts.mllm_layers + 1) * context * facts.mllm_hidden * b


def _streamed(facts: ModelFacts, mode, act, w, b, prefetch) -> float:
    """group-offload: the transformer in blocks, the MLLM layer by layer, VAE and connector resident;
    sequential: every component layer by layer but a LAP connector, which is on the GPU whole while it runs.
    ``prefetch`` groups are on the GPU at once."""
    def leaves(role):
        return prefetch * facts.weights[role].largest_tensor * b

    t, stored = facts.weights["transformer"], _stored_bytes(facts, w)
    if mode == "group-offload":
        transformer = (t.outside_blocks + prefetch * t.largest_block) * stored
        return w["vae"] + w["connector"] + max(leaves("text_encoder") + act["mllm"], act["connector"],
                                               transformer + act["transformer"], act["vae"])
    transformer = prefetch * t.largest_tensor * stored
    connector = _whole_connector(facts, w) or leaves("connector")
    return max(leaves("text_encoder") + act["mllm"], connector + act["connector"],
               transformer + act["transformer"], leaves("vae") + act["vae"])


def _pinning_transient(facts: ModelFacts, mode, w, b) -> float:
    """RAM held twice while the hooks make their page-locked copies: the components offloaded block by block (all
    their blocks are pinned before any original goes), else the largest layer."""
    if mode == "group-offload":
        return w["transformer"] + _largest_leaf(facts, b)
    return max(_whole_connector(facts, w), _largest_leaf(facts, b))


def _largest_group(facts: ModelFacts, mode, w, b) -> float:
    """The most one offload group moves at once (what ``low_cpu_mem_usage`` pins per transfer)."""
    t, stored = facts.weights["transformer"], _stored_bytes(facts, w)
    if mode == "group-offload":
        return max(t.largest_block * stored, _largest_leaf(facts, b))
    return max(_whole_connector(facts, w), _largest_leaf(facts, b), t.largest_tensor * stored)


def _stored_bytes(facts: ModelFacts, w) -> float:
    """Bytes per transformer parameter as stored (fp8, nf4, a GGUF file...)."""
    return w["transformer"] / max(facts.weights["transformer"].parameters, 1)


def _largest_leaf(facts: ModelFacts, b) -> float:
    """The largest layer of the components offloaded leaf by leaf."""
    return max(facts.weights[role].largest_tensor for role in ROLES_STREAMED) * b


def _whole_connector(facts: ModelFacts, w) -> float:
    """A LAP connector moves as one group (``apply.reads_children_directly``); 0 for a last-layer one."""
    return w["connector"] if facts.connector_pools else 0


def _multi_gpu(w, act, cache, cards) -> float:
    """Per card, with diffusers' balanced map: components, largest first, dealt to cards 0, 1, ..., n-1, n-1, ..., 0."""
    order = sorted(w, key=w.get, reverse=True)
    cycle = list(range(cards)) + list(range(cards))[::-1]
    phase = {"text_encoder": act["mllm"] + cache, "connector": act["connector"], "transformer": act["transformer"],
             "vae": act["vae"]}
    load = [0.0] * cards
    work = [0.0] * cards
    for i, role in enumerate(order):
        card = cycle[i % len(cycle)]
        load[card] += w[role]
        work[card] = max(work[card], phase[role])
    return max(a + b for a, b in zip(load, work, strict=True))


def _fits(mode, device, vram, ram, free_vram, free_ram, gpus) -> bool:
    if (free_ram is not None and ram * MARGIN > free_ram) or (mode == "multi-gpu" and gpus < 2):
        return False
    if device == "cpu":
        return True
    return free_vram is not None and vram * MARGIN <= free_vram


def _folder_of(source_or_folder):
    """(model folder, its add-on's config or None), reading nothing a ``ResolvedModel`` has read already."""
    from ..hub.resolve import ResolvedModel, resolve_model

    if isinstance(source_or_folder, ResolvedModel):
        return source_or_folder.folder, source_or_folder.addon_config
    path = Path(str(source_or_folder)).expanduser()
    if path.is_dir() and (path / "model_index.json").is_file():
        return path, None
    source = resolve_model(source_or_folder)
    return source.folder, source.addon_config


def _cuda_count() -> int:
    from .devices import cuda_count

    return cuda_count()


def _mps_dtype() -> str:
    from .devices import compute_dtype

    return str(compute_dtype("mps")).removeprefix("torch.").replace("bfloat16", "bf16").replace("float16", "fp16")


def _gib(value: int | None, unit: str = " GiB") -> str:
    return "?" if value is None else f"{value / GIB:.1f}{unit}"

