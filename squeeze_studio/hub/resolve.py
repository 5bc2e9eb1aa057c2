"""Resolve what the user typed into a model: one ``ResolvedModel``, each file read once.

Accepted everywhere a model is chosen (CLI ``--model``, ``SqueezePipeline.from_pretrained``, the ``Engine`` behind
the window, ``squeeze train``, ``squeeze eval``):

- ``""`` / ``None`` / ``"demo"``: the built-in demo model;
- a Squeeze model folder (``SqueezePipeline.save_pretrained``);
- a stock diffusers ``QwenImageEditPlusPipeline`` folder, used as it is (nothing copied);
- a repo id such as ``Qwen/Qwen-Image-Edit-2509`` (``@revision`` optional), found in the local Hugging Face
  cache only: resolving never touches the network;
- an add-on folder, alone (its config names the base) or beside a base.

The top of the hub's layers: ``source`` (where the folder is) and ``defaults`` (stage defaults) import nothing of
each other, ``addon`` (the add-on config) imports both, this module imports all three. Plain Python: no torch,
so the CLI and the window check a model before anything heavy loads.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .addon import AddonConfig, check_addon_matches, is_addon, read_addon, write_addon_defaults
from .defaults import StageDefaults, folder_defaults, write_folder_defaults
from .source import find_folder, model_kind


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: the local ``folder``, its ``kind`` ("squeeze" or "stock"), where it came from, the
    add-on's checked config when there is one, and the stage defaults it recommends (the add-on's win)."""

    spec: str  # what names the base: as the user gave it, or as the add-on names it
    folder: Path
    kind: str
    stage_defaults: StageDefaults
    repo_id: str | None = None
    revision: str | None = None  # the cache snapshot's commit for a repo id
    addon_config: AddonConfig | None = None

    @property
    def addon(self) -> Path | None:
        return self.addon_config.folder if self.addon_config else None

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


def resolve_model(spec: str | os.PathLike | None, addon: str | os.PathLike | None = None) -> ResolvedModel:
    """What ``spec`` (and ``addon``) name, checked; ``ValueError`` with one line when it is not usable."""
    text = _text(spec)
    config = None
    if _is_addon(text):  # an add-on alone: its config names the base
        if addon:
            raise _addon_as_base(text)
        config = read_addon(text)
        text = _text(config.base)
        if _is_addon(text):
            raise _addon_as_base(text)
    folder, repo_id, revision = find_folder(text)
    kind = model_kind(folder)
    if addon:
        config = read_addon(addon)
    if config is not None:
        check_addon_matches(config, folder)
    defaults = config.stage_defaults if config else folder_defaults(folder, kind)
    return ResolvedModel(text, folder, kind, defaults, repo_id, revision, config)


def _text(spec: str | os.PathLike | None) -> str:
    return "" if spec is None else str(spec).strip()


def _is_addon(text: str) -> bool:
    return bool(text) and is_addon(Path(text).expanduser())


def _addon_as_base(text: str) -> ValueError:
    return ValueError(f"{Path(text).expanduser().name} is an add-on; give its base model with --model and the "
                      "add-on with --addon")


def write_stage_defaults(model: ResolvedModel, defaults: StageDefaults) -> Path:
    """Store ``defaults`` in the add-on, or in the Squeeze folder. A stock base (possibly in the Hugging Face
    cache, which is never written) is refused: train an add-on for it instead."""
    if model.addon_config is not None:
        return write_addon_defaults(model.addon_config, defaults)
    if model.kind == "stock":
        raise ValueError(f"{model.base_name} is a stock model, which is never written to; "
                         "its defaults are its own behaviour (give an add-on to store tuned defaults)")
    return write_folder_defaults(model.folder, defaults)
