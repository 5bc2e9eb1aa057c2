"""Resolve what the user typed into a model: a folder, a Hugging Face repo id (local cache only), an add-on.

Accepted everywhere a model is chosen (CLI ``--model``, ``SqueezePipeline.from_pretrained``, the window,
``squeeze train``, ``squeeze eval``):

- ``""`` / ``None`` / ``"demo"``: the built-in demo model;
- a Squeeze model folder (``SqueezePipeline.save_pretrained``);
- a stock diffusers ``QwenImageEditPlusPipeline`` folder, used as it is (nothing copied);
- a repo id such as ``Qwen/Qwen-Image-Edit-2509`` (``@revision`` optional), found in the local Hugging Face
  cache only: resolving never touches the network;
- an add-on folder, alone (its config names the base) or beside a base.

Plain Python: no torch, so the CLI and the window check a model before anything heavy loads.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .paths import hf_cache_dir

DEMO_SPECS = ("", "demo")
# Pipeline class in model_index.json -> what kind of model folder it is.
PIPELINE_KINDS = {"SqueezePipeline": "squeeze", "QwenImageEditPlusPipeline": "stock"}
FAMILY = "qwen_image_edit_plus"  # the only backbone family both kinds belong to today
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: the local ``folder`` to load, what kind it is, and where it came from."""

    spec: str  # what the user gave
    folder: Path
    kind: str  # "squeeze" or "stock"
    repo_id: str | None = None
    revision: str | None = None  # the cache snapshot's commit for a repo id
    addon: Path | None = None

    @property
    def is_demo(self) -> bool:
        from ..models import default_model_path

        return self.repo_id is None and self.folder == default_model_path()

    @property
    def base_name(self) -> str:
        return "demo model" if self.is_demo else self.repo_id or self.folder.name

    @property
    def name(self) -> str:
        return self.base_name + (f" + {self.addon.name}" if self.addon else "")


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


def resolve_model(spec: str | os.PathLike | None, addon: str | os.PathLike | None = None) -> ModelSource:
    """What ``spec`` (and ``addon``) name, checked; ``ValueError`` with one line when it is not usable."""
    from .addon import check_addon_matches, is_addon, read_addon

    text = "" if spec is None else str(spec).strip()
    path = Path(text).expanduser()
    if text and path.is_dir() and is_addon(path):
        if addon:
            raise ValueError(f"{path.name} is an add-on; give its base model with --model and the add-on with --addon")
        return resolve_model(read_addon(path).base, path)
    repo_id = revision = None
    if text in DEMO_SPECS:
        from ..models import default_model_path

        folder = default_model_path()
        if folder is None:
            raise ValueError("no built-in demo model is installed; choose a model")
    elif path.exists():
        if not path.is_dir():
            raise ValueError(f"model path is not a folder: {path}")
        folder = path
    elif looks_like_repo_id(text):
        repo_id, _, wanted = text.partition("@")
        folder, revision = cached_snapshot(repo_id, wanted or None)
    else:
        raise ValueError(f"model not found: {text} is neither a folder nor a repo id like Qwen/Qwen-Image-Edit-2509")
    kind = model_kind(folder)
    addon_path = None
    if addon:
        addon_path = Path(addon).expanduser()
        check_addon_matches(addon_path, read_addon(addon_path), folder)
    return ModelSource(text, folder, kind, repo_id, revision, addon_path)


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
