"""An add-on's weights: written after training, loaded over its base. The config's format is ``hub.addon``."""
from __future__ import annotations

import os
from pathlib import Path

from ..dla import LayerConnector
from ..hub.addon import CONNECTOR_FOLDER, LORA_FILE, write_addon_config
from ..hub.defaults import StageDefaults
from ..hub.resolve import ResolvedModel


def save_addon(pipe, folder: str | os.PathLike, base: ResolvedModel, defaults: StageDefaults,
               training: dict | None = None) -> Path:
    """Write ``pipe``'s connector and, when its transformer carries a peft adapter, that LoRA as an add-on for
    ``base``, which the config names by its repo id when it came from the cache, else by its folder's full path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pipe.connector.save_pretrained(folder / CONNECTOR_FOLDER)
    lora = None
    if getattr(pipe.transformer, "peft_config", None):
        from peft.utils import get_peft_model_state_dict

        adapter = next(iter(pipe.transformer.peft_config.values()))
        pipe.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(pipe.transformer),
                               weight_name=LORA_FILE, transformer_lora_adapter_metadata=adapter.to_dict())
        lora = LORA_FILE
    write_addon_config(folder, base.repo_id or str(base.folder.resolve()), base.revision, base.folder, defaults,
                       lora, training)
    return folder


def load_addon_connector(model: ResolvedModel, dtype=None) -> LayerConnector:
    return LayerConnector.from_pretrained(model.addon / CONNECTOR_FOLDER, use_safetensors=True, torch_dtype=dtype)


def load_addon_lora(pipe, model: ResolvedModel) -> None:
    if model.addon_config.lora:
        pipe.load_lora_weights(model.addon, weight_name=model.addon_config.lora, adapter_name="addon")
