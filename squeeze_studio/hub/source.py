"""Where a model's folder is: the built-in demo, a folder, or a repo id in the local Hugging Face cache.

The bottom layer of resolving a model (``hub.resolve``): it finds the folder and says what kind it is, and knows
nothing of add-ons or stage defaults. Never touches the network. Plain Python: no torch.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .paths import hf_cache_dir

DEMO_SPECS = ("", "demo")
# Pipeline class in model_index.json -> what kind of model folder it is.
PIPELINE_KINDS = {"SqueezePipeline": "squeeze", "QwenImageEditPlusPipeline": "stock"}
FAMILY = "qwen_image_edit_plus"  # the only backbone family both kinds belong to today
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


def looks_like_repo_id(spec: str) -> bool:
    return bool(_REPO_ID.match(spec)) and not spec.startswith((".", "~"))


def model_kind(folder: str | os.PathLike) -> str:
    """``"squeeze"`` or ``"stock"`` from ``model_index.json``; ``ValueError`` with one line for anything else."""
    folder = Path(folder)
    index = folder / "model_index.json"
    if not index.is_file():
        raise ValueError(f"not a model folder (no model_index.json): {folder}")
    try:
        name = json.loads(index.read_text()).get("_class_name", "")
    except (OSError, ValueError, AttributeError):
        raise ValueError(f"unreadable model_index.json in {folder}") from None
    if name not in PIPELINE_KINDS:
        raise ValueError(f"{folder.name} holds a {name or 'unknown'} model; Squeeze Studio runs "
                         f"QwenImageEditPlusPipeline (e.g. Qwen/Qwen-Image-Edit-2509) and SqueezePipeline folders")
    return PIPELINE_KINDS[name]


def cached_snapshot(repo_id: str, revision: str | None = None) -> tuple[Path, str]:
    """The local snapshot folder of ``repo_id`` in the Hugging Face cache and its commit; never downloads."""
    from huggingface_hub import try_to_load_from_cache

    cache = hf_cache_dir()
    found = try_to_load_from_cache(repo_id, "model_index.json", cache_dir=cache, revision=revision or "main")
    if not isinstance(found, str):
        raise ValueError(f"{repo_id} is not in the Hugging Face cache ({cache}); "
                         f"download it with: squeeze models download {repo_id}")
    snapshot = Path(found).parent
    return snapshot, snapshot.name


def find_folder(text: str) -> tuple[Path, str | None, str | None]:
    """The folder ``text`` names, with its repo id and cache revision when it is one; ``ValueError`` (one line)."""
    path = Path(text).expanduser()
    if text in DEMO_SPECS:
        from ..models import default_model_path

        folder = default_model_path()
        if folder is None:
            raise ValueError("no built-in demo model is installed; choose a model")
        return folder, None, None
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"model path is not a folder: {path}")
        return path, None, None
    if looks_like_repo_id(text):
        repo_id, _, wanted = text.partition("@")
        folder, revision = cached_snapshot(repo_id, wanted or None)
        return folder, repo_id, revision
    raise ValueError(f"model not found: {text} is neither a folder nor a repo id like Qwen/Qwen-Image-Edit-2509")


def model_shapes(folder: str | os.PathLike) -> dict[str, int]:
    """The component sizes an add-on must agree with, read from the configs (no weights loaded)."""
    folder = Path(folder)

    def config(component: str) -> dict:
        try:
            return json.loads((folder / component / "config.json").read_text())
        except (OSError, ValueError):
            raise ValueError(f"{folder.name} has no readable {component}/config.json") from None

    text = config("text_encoder")
    text = text.get("text_config") or text  # transformers 5 nests the language model's config
    transformer = config("transformer")
    return {
        "mllm_hidden_size": int(text["hidden_size"]),
        "mllm_layers": int(text["num_hidden_layers"]),
        "context_dim": int(transformer["joint_attention_dim"]),
        "transformer_layers": int(transformer["num_layers"]),
        "transformer_width": int(transformer["num_attention_heads"]) * int(transformer["attention_head_dim"]),
    }
