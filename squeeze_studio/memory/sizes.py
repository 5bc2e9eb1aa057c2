"""What a model weighs, from its files, without loading it: parameter counts and the numbers activations need.

Parameter counts come from the safetensors headers (element counts of every tensor; plain Python, exact). Two
things have no weight files: the identity connector a stock base gets in memory, counted by the
``LayerConnector`` formula below, and the reference configs of a model not downloaded yet
(``hub/reference_configs``), whose modules are built on the meta device (this path imports torch).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROLES = ("transformer", "text_encoder", "vae", "connector")  # every other module counts with the connector
STOCK_AREAS = {"condition_image_area": 384 * 384, "reference_image_area": 1024 * 1024, "default_size": 1024}
_BLOCK = re.compile(r"^(.*?\.\d+)\.")  # "transformer_blocks.7.attn.to_q.weight" -> "transformer_blocks.7"


@dataclass(frozen=True)
class Weights:
    """Element counts of one component: all of it, its largest tensor (≈ its largest layer), its largest
    numbered block (a ``ModuleList`` item: what group offloading moves at once) and what lies outside blocks."""

    parameters: int
    largest_tensor: int
    largest_block: int
    outside_blocks: int

    @classmethod
    def of_shapes(cls, shapes: dict[str, tuple[int, ...]]) -> Weights:
        sizes = {name: math.prod(shape) for name, shape in shapes.items()}
        blocks: dict[str, int] = {}
        for name, size in sizes.items():
            match = _BLOCK.match(name)
            if match:
                blocks[match.group(1)] = blocks.get(match.group(1), 0) + size
        total = sum(sizes.values())
        return cls(total, max(sizes.values(), default=0), max(blocks.values(), default=0),
                   total - sum(blocks.values()))

    def __add__(self, other: Weights) -> Weights:
        return Weights(self.parameters + other.parameters, max(self.largest_tensor, other.largest_tensor),
                       max(self.largest_block, other.largest_block), self.outside_blocks + other.outside_blocks)


@dataclass(frozen=True)
class ModelFacts:
    """Everything a memory plan reads from a model folder (and its add-on)."""

    weights: dict[str, Weights]  # per role in ROLES
    transformer_width: int  # attention heads x head dim
    mllm_hidden: int
    mllm_layers: int
    mllm_intermediate: int
    vocab_size: int
    image_tokens: int  # MLLM tokens per reference shown at the condition area
    size_multiple: int  # VAE downsampling x 2x2 packing: pixels per side of one transformer token
    vae_width: int  # channels of the VAE's full-resolution stage
    connector_pools: bool  # a LAP connector (lap / dla) runs over the whole layer stack
    default_size: int
    reference_image_area: int


def model_facts(folder: str | Path, addon=None) -> ModelFacts:
    """The facts of the model in ``folder`` (plus ``addon``: its folder, or the ``hub.addon.AddonConfig`` a
    ``ResolvedModel`` already read); ``ValueError`` with one line when unreadable."""
    lora = _UNREAD
    if addon is not None and hasattr(addon, "lora"):
        addon, lora = addon.folder, addon.lora or ""
    return _facts(str(Path(folder).expanduser().resolve()), str(addon) if addon else "", lora)


_UNREAD = "\0"  # the add-on's LoRA file name is read from its squeeze_addon.json


@lru_cache(maxsize=16)
def _facts(folder_name: str, addon_name: str, lora: str = _UNREAD) -> ModelFacts:
    folder = Path(folder_name)
    index = _json(folder / "model_index.json")
    components = {name: entry for name, entry in index.items()
                  if not name.startswith("_") and isinstance(entry, list) and None not in entry}
    weights = {role: Weights(0, 0, 0, 0) for role in ROLES}
    for name, (library, class_name) in components.items():
        if name in ("scheduler", "processor", "tokenizer") or not (folder / name / "config.json").is_file():
            continue
        if addon_name and name == "connector":
            continue  # the add-on's connector replaces it
        role = name if name in ROLES else "connector"
        weights[role] = weights[role] + _component_weights(folder / name, library, class_name)
    text = _json(folder / "text_encoder" / "config.json")
    text_config = text.get("text_config") or text
    connector_config = None
    if addon_name:
        addon = Path(addon_name)
        weights["connector"] = weights["connector"] + Weights.of_shapes(_file_shapes(addon / "connector"))
        if lora == _UNREAD:
            lora = _json(addon / "squeeze_addon.json").get("lora")
        if lora:
            weights["transformer"] = weights["transformer"] + Weights.of_shapes(_shapes(addon / lora))
        connector_config = _json(addon / "connector" / "config.json")
    elif "connector" in components:
        connector_config = _json(folder / "connector" / "config.json")
    else:  # a stock base: the identity DLA connector built in memory (pipeline.loading.identity_connector)
        connector_config = {"mode": "dla", "num_layers": int(text_config["num_hidden_layers"]) + 1,
                            "hidden_size": int(text_config["hidden_size"]),
                            "num_heads": int(text_config["num_attention_heads"])}
        weights["connector"] = weights["connector"] + connector_weights(connector_config)
    transformer = _json(folder / "transformer" / "config.json")
    vae = _json(folder / "vae" / "config.json")
    if "temperal_downsample" in vae:  # AutoencoderKLQwenImage
        scale, vae_width = 2 ** len(vae["temperal_downsample"]), int(vae["base_dim"]) * int(vae["dim_mult"][0])
    else:  # a 2-D AutoencoderKL
        scale, vae_width = 2 ** (len(vae["block_out_channels"]) - 1), int(vae["block_out_channels"][0])
    areas = {key: int(index.get(key, default)) for key, default in STOCK_AREAS.items()}
    return ModelFacts(
        weights=weights,
        transformer_width=int(transformer["num_attention_heads"]) * int(transformer["attention_head_dim"]),
        mllm_hidden=int(text_config["hidden_size"]), mllm_layers=int(text_config["num_hidden_layers"]),
        mllm_intermediate=int(text_config["intermediate_size"]), vocab_size=int(text_config["vocab_size"]),
        image_tokens=_image_tokens(folder, text.get("vision_config") or {}, areas["condition_image_area"]),
        size_multiple=scale * 2, vae_width=vae_width,
        connector_pools=connector_config.get("mode", "dla") != "last_layer",
        default_size=areas["default_size"], reference_image_area=areas["reference_image_area"],
    )


def connector_weights(config: dict) -> Weights:
    """A ``LayerConnector``'s element counts from its config (``dla.connector``, ``dla.lap``), no torch."""
    layers, dim = int(config.get("num_layers", 29)), int(config.get("hidden_size", 3584))
    out = int(config.get("out_dim") or dim)
    hidden = int(dim * float(config.get("mlp_ratio", 2.0)))
    mode, blocks = config.get("mode", "dla"), int(config.get("num_blocks", 2))
    # LayerAxisBlock: two LayerNorms, multi-head attention (in and out projections), a two-layer MLP.
    block = 2 * 2 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)
    lap = layers * dim + blocks * block + layers + 1  # layer embedding, blocks, the collapse over layers
    pools = {"last_layer": 0, "lap": 1}.get(mode, 2)
    norm = 2 * dim if config.get("normalize_layers") else 0
    proj = dim * out + out
    return Weights(norm + pools * lap + proj, max(3 * dim * dim, dim * hidden, dim * out), block if pools else 0,
                   norm + pools * (layers * dim + layers + 1) + proj)


def _component_weights(directory: Path, library: str, class_name: str) -> Weights:
    shapes = _file_shapes(directory)
    return Weights.of_shapes(shapes or _meta_shapes(directory, library, class_name))


def _file_shapes(directory: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape over a component's safetensors files (the shards its index lists, if any)."""
    indexes = sorted(directory.glob("*.safetensors.index.json"))
    if indexes:
        files = sorted({directory / shard for shard in _json(indexes[0]).get("weight_map", {}).values()})
    else:
        files = sorted(directory.glob("*.safetensors"))
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        shapes.update(_shapes(path))
    return shapes


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from ..hub.verify import safetensors_shapes

    try:
        return safetensors_shapes(path, f"{path.parent.name}/{path.name}")
    except Exception as problem:  # noqa: BLE001 - verify's problems carry the one line to show
        raise ValueError(str(problem)) from None


def _meta_shapes(directory: Path, library: str, class_name: str) -> dict[str, tuple[int, ...]]:
    """No weight files (reference configs): build the module on the meta device and read its state dict."""
    from ..hub.verify import _build_on_meta

    try:
        module = _build_on_meta(directory, library, class_name, directory.name)
    except Exception as problem:  # noqa: BLE001 - verify's problems carry the one line to show
        raise ValueError(str(problem)) from None
    if module is None:
        raise ValueError(f"{directory.name}: no weights and no known class to count parameters from")
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def _image_tokens(folder: Path, vision: dict, area: int) -> int:
    """MLLM tokens for one reference shown at ``area`` pixels: Qwen2-VL resizes it to multiples of patch x merge
    within the processor's pixel bounds, then merges merge x merge patches into one token."""
    image = {}
    for name in ("processor_config.json", "preprocessor_config.json"):
        path = folder / "processor" / name
        if path.is_file():
            data = _json(path)
            image = data.get("image_processor", data)
            break
    size = image.get("size") or {}
    low = int(image.get("min_pixels") or size.get("shortest_edge") or 56 * 56)
    high = int(image.get("max_pixels") or size.get("longest_edge") or 28 * 28 * 1280 * 4)
    unit = int(image.get("patch_size") or vision.get("patch_size", 14)) * int(
        image.get("merge_size") or vision.get("spatial_merge_size", 2))
    return math.ceil(math.sqrt(min(max(area, low), high)) / unit) ** 2


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"cannot plan memory: unreadable {path.parent.name}/{path.name}") from None
    if not isinstance(data, dict):
        raise ValueError(f"cannot plan memory: {path.parent.name}/{path.name} is not a JSON object")
    return data
