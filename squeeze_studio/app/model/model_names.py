"""How the window names a model choice: "" is the demo, a repo id stays a repo id, a folder is its name.

Plain Python (``hub.source`` has no torch), so the controls can label choices before anything loads.
"""
from __future__ import annotations

from pathlib import Path

from ...hub.source import looks_like_repo_id

DEMO_LABEL = "Built-in demo model"
NO_ADDON_LABEL = "No add-on"


def is_repo_id(spec: str) -> bool:
    """A Hugging Face repo id (resolved from the local cache), not a folder on this computer."""
    return bool(spec) and looks_like_repo_id(spec) and not Path(spec).expanduser().exists()


def model_label(spec: str) -> str:
    if not spec:
        return DEMO_LABEL
    return spec if is_repo_id(spec) else Path(spec).name or spec


def addon_label(folder: str) -> str:
    return Path(folder).name if folder else NO_ADDON_LABEL
