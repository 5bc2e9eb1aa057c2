"""Where model folders are and whether a folder is one. Plain Python: the window uses it at start-up."""
from __future__ import annotations

import os
from pathlib import Path

DEMO_MODEL_NAME = "demo-model"
_REPO_RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def default_model_path() -> Path | None:
    """The built-in demo model (``resources/demo-model``), or ``$SQUEEZE_STUDIO_MODEL``; ``None`` if absent."""
    override = os.environ.get("SQUEEZE_STUDIO_MODEL")
    candidate = Path(override) if override else _REPO_RESOURCES / DEMO_MODEL_NAME
    return candidate if (candidate / "model_index.json").is_file() else None


def check_model_folder(path: str | os.PathLike) -> Path:
    """Return ``path`` if it is a SqueezePipeline folder, else raise ``ValueError`` with a one-line reason."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ValueError(f"model folder not found: {folder}")
    if not folder.is_dir():
        raise ValueError(f"model path is not a folder: {folder}")
    if not (folder / "model_index.json").is_file():
        raise ValueError(f"not a model folder (no model_index.json): {folder}")
    return folder
