"""Where the built-in demo model is. Plain Python: the window uses it at start-up (see ``hub`` for the rest)."""
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
