"""The folders the engine reads and writes outside a model: the user's data folder and the Hugging Face cache."""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "SQUEEZE_STUDIO_HOME"


def user_data_dir() -> Path:
    """``$SQUEEZE_STUDIO_HOME`` if set, else ``$XDG_DATA_HOME/squeeze-studio`` (``~/.local/share/squeeze-studio``).

    Created on first use. Caches the project makes for a model (its fitted preview map, the list of folders
    the user added) live here, never inside the model or the Hugging Face cache."""
    override = os.environ.get(HOME_ENV)
    if override:
        folder = Path(override).expanduser()
    else:
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        folder = Path(base) / "squeeze-studio"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read at call time so ``HF_HOME`` / ``HF_HUB_CACHE`` set later still count."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)
