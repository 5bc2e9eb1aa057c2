"""What ``SqueezePipeline.from_pretrained`` adds to a folder that is not a full Squeeze model.

- A stock ``QwenImageEditPlusPipeline`` folder has no connector: one is built identity-initialised from the
  MLLM's config, so the pipeline equals the stock one at τ1 = 1, τ2 = 0, and nothing is written anywhere.
- An add-on brings its trained connector and, optionally, a transformer LoRA (diffusers' format).
- A model without a preview map gets one fitted on first use (``preview_maps``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..dla import LayerConnector
from ..hub.resolve import ResolvedModel
from .addon import load_addon_connector


def identity_connector(folder: Path, mode: str = "dla") -> LayerConnector:
    """An untrained connector whose output is the MLLM's last layer: the base model's own conditioning."""
    config = json.loads((folder / "text_encoder" / "config.json").read_text())
    text = config.get("text_config") or config
    return LayerConnector(mode=mode, num_layers=int(text["num_hidden_layers"]) + 1,
                          hidden_size=int(text["hidden_size"]), num_heads=int(text["num_attention_heads"]))


def component_overrides(model: ResolvedModel, dtype=None) -> dict:
    """The components ``from_pretrained`` must be handed for ``model`` (none for a plain Squeeze folder)."""
    overrides = {}
    if model.addon is not None:
        overrides["connector"] = load_addon_connector(model, dtype)
    elif model.kind == "stock":
        connector = identity_connector(model.folder)
        # nn.Module.to: ModelMixin.to warns about fp32-only modules on every dtype cast; the connector has none.
        overrides["connector"] = connector if dtype is None else torch.nn.Module.to(connector, dtype)
    if model.kind == "stock":
        overrides["preview_projection"] = None  # fitted on first use, cached outside the model
    return overrides

