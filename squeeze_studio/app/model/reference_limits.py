"""How many references a model takes, and how large a reference may be: both checked when images are dropped.

A folder of 1,000 images was once taken without a word; Generate then used 4.9 GB and failed inside the
transformer. A model takes as many references as it was measured (or trained) to take: the backbone says how many
(``max_references`` on its adapter: 3 for Qwen-Image-Edit-2509), a model's own ``training.json`` can say fewer
(the demo model was trained with 1-2). Until a model has loaded, ``DEFAULT_REFERENCE_CAP`` holds.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_REFERENCE_CAP = 3  # the most any supported backbone takes (Qwen-Image-Edit-2509: 1-3 input images)
# PIL's own decompression-bomb line (``Image.MAX_IMAGE_PIXELS``): a larger reference would be refused by the
# worker's PIL anyway, after taking gigabytes to decode. A 200-megapixel phone photo is below it.
MAX_REFERENCE_PIXELS = 89_478_485


def training_reference_count(folder: str | Path | None) -> int | None:
    """The most references a model in ``folder`` was trained with (its ``training.json``), or None."""
    if not folder:
        return None
    try:
        recipe = json.loads((Path(folder) / "training.json").read_text(encoding="utf-8")).get("recipe") or {}
        count = int(recipe.get("max_refs") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return count if count > 0 else None


def reference_cap_of(engine: Any) -> int:
    """How many references ``engine`` takes: its own ``max_references``, else its backbone's, lowered to what its
    training used. Runs in the worker (it reads the loaded engine)."""
    cap = getattr(engine, "max_references", None)
    if cap:
        return int(cap)
    backbone = getattr(getattr(engine, "pipe", None), "backbone", None)
    cap = int(getattr(backbone, "max_references", 0) or DEFAULT_REFERENCE_CAP)
    trained = training_reference_count(getattr(getattr(engine, "source", None), "folder", None))
    return min(cap, trained) if trained else cap


def within_cap(existing: list[str], new: list[str], cap: int, model: str) -> tuple[list[str], str]:
    """The ``new`` images that fit beside ``existing`` under ``cap``, and one line when some were left out."""
    fresh = [path for path in dict.fromkeys(new) if path not in existing]
    room = max(cap - len(existing), 0)
    if len(fresh) <= room:
        return fresh, ""
    kept = fresh[:room]
    return kept, (f"{model} takes at most {cap} reference{'s' if cap != 1 else ''}: "
                  f"added {len(kept)} of {len(fresh):,}, left out {len(fresh) - len(kept):,}")


def too_many(count: int, cap: int, model: str) -> str:
    """Why a subject of ``count`` references cannot run on a model that takes ``cap`` ("" when it can)."""
    if count <= cap:
        return ""
    return f"{model} takes at most {cap} references; this subject has {count}: remove {count - cap} in Subjects"
