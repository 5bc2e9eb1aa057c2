"""What a drop (or paste) of files means, decided off the GUI thread and applied on it.

Rules: a single generated PNG (one carrying a recipe) restores its settings; folders contribute the
images directly inside them; anything that is not an image is refused with a short message and
changes nothing. A recipe is untrusted (``recipe.inspect_recipe``: capped, type-checked); paths in it outside
the user's folders are handed on in ``outside`` and never followed by the restore.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...request import GenerationRequest
from ..file_names import display_name
from ..images import image_size, images_in_folder, is_image_file
from .reference_limits import MAX_REFERENCE_PIXELS


@dataclass
class DropPlan:
    recipe_path: str | None = None
    recipe: GenerationRequest | None = None
    outside: list[str] = field(default_factory=list)  # recipe paths outside the user's folders: not followed
    recipe_problem: str = ""  # one line: a recipe was there but could not be restored
    images: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)      # names of files that are not images
    empty_folders: list[str] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)    # "name (W × H)": decodable, but too many pixels

    def message(self) -> str:
        """One line for the status bar; empty when everything dropped was used."""
        parts = [self.recipe_problem] if self.recipe_problem else []
        if self.refused:
            names = ", ".join(self.refused[:3]) + (" …" if len(self.refused) > 3 else "")
            parts.append(f"Not an image: {names}")
        if self.empty_folders:
            parts.append("No images in " + ", ".join(self.empty_folders[:3]))
        if self.too_large:
            names = ", ".join(self.too_large[:3]) + (" …" if len(self.too_large) > 3 else "")
            parts.append(f"Too large to use as a reference (at most {MAX_REFERENCE_PIXELS / 1e6:.0f} megapixels): "
                         f"{names}")
        return "; ".join(parts)


def plan_drop(paths: list[str]) -> DropPlan:
    """Classify dropped paths. Blocking (reads file headers, lists folders): call through ``run_io``."""
    from ...recipe import inspect_recipe  # PIL: imported on first drop, not at start-up

    plan = DropPlan()
    files = [Path(p) for p in paths]
    if len(files) == 1 and files[0].is_file() and files[0].suffix.lower() == ".png":
        check = inspect_recipe(files[0])
        if check.request is not None:
            plan.recipe_path, plan.recipe, plan.outside = str(files[0]), check.request, list(check.outside)
            return plan
        plan.recipe_problem = check.problem
    for path in files:
        if path.is_dir():
            found = images_in_folder(path)
            for image in found:
                _take(plan, image)
            if not found:
                plan.empty_folders.append(display_name(path.name or str(path)))
        elif is_image_file(path):
            _take(plan, str(path))
        else:
            plan.refused.append(display_name(path.name or str(path)))
    return plan


def _take(plan: DropPlan, path: str) -> None:
    """An image joins the plan unless it has more pixels than a reference may (read from its header)."""
    width, height = image_size(path)
    if width * height > MAX_REFERENCE_PIXELS:
        plan.too_large.append(f"{display_name(Path(path).name)} ({width:,} × {height:,})")
    else:
        plan.images.append(path)
