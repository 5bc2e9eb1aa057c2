"""Subjects and drops: what goes into a generation from outside. Files and folders dropped (or given on the
command line), a pasted clipboard image, a generated PNG's recipe restored, subject libraries saved and opened.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from ...errors import first_line
from ...pictures import split_by_subject
from ...request import GenerationRequest
from ..background_io import run_io
from ..persistence import libraries
from ..persistence.paths import pasted_dir
from .drops import DropPlan, plan_drop
from .model_names import is_repo_id
from .problems import SUBJECTS
from .reference_limits import within_cap


class InputsRoom(QObject):
    def __init__(self, studio):
        super().__init__(studio)
        self._studio = studio
        self.subjects, self.controls = studio.subjects, studio.controls

    def drop_paths(self, paths: list[str], subject_index: int | None = None, allow_recipe: bool = True) -> None:
        """Files or folders dropped (or given on the command line); decided off the GUI thread."""
        if not paths:  # e.g. a link dragged from a web page
            self._studio.message.emit("Only files on this computer can be dropped")
            return

        def apply(plan: DropPlan) -> None:
            if not self._studio.closed:
                self._apply_drop(plan, subject_index, allow_recipe)

        run_io(plan_drop, list(paths), on_done=apply,
               on_error=lambda error: self._studio.problem.emit(SUBJECTS,
                                                                f"Could not read the drop: {first_line(error)}"))

    def _apply_drop(self, plan: DropPlan, subject_index: int | None, allow_recipe: bool) -> None:
        if subject_index is not None and subject_index >= len(self.subjects.subjects):
            subject_index = None  # that subject was removed while the drop was being read
        if plan.recipe is not None:
            if allow_recipe:
                self.restore_recipe(plan.recipe, plan.recipe_path or "", plan.outside)
                return
            plan.images.append(plan.recipe_path or "")
        index = self.subjects.current_index if subject_index is None else subject_index
        subject = self.subjects.subjects[index]
        models = self._studio.models
        images, over = within_cap(subject.images, plan.images, models.reference_cap,
                                  models.model_name or "This model")
        note = "; ".join(n for n in (plan.message(), over) if n)
        if not images:
            self._studio.problem.emit(SUBJECTS, note or "Nothing to add")
            return
        added = self.subjects.add_images(images, index)
        text = f"Added {len(added)} image{'s' if len(added) != 1 else ''} to {subject.name}"
        if note:
            self._studio.problem.emit(SUBJECTS, f"{text}. {note}")
        else:
            self._studio.message.emit(text)

    def paste_image(self, image: QImage) -> None:
        """A clipboard image becomes a PNG file in the data folder (recipes store reference paths)."""
        if image.isNull():
            self._studio.message.emit("The clipboard holds no image")
            return
        path = pasted_dir() / f"pasted-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.png"

        def write() -> str:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not image.save(str(path), "PNG"):
                raise OSError(f"could not write {path.name}")
            return str(path)

        run_io(write, on_done=lambda saved: self._apply_drop(DropPlan(images=[saved]), None, False),
               on_error=lambda error: self._studio.problem.emit(SUBJECTS, f"Could not paste: {first_line(error)}"))

    def restore_recipe(self, request: GenerationRequest, source: str, outside: list[str] = ()) -> None:
        """Take instruction, controls and references from a generated PNG's recipe. Paths in ``outside`` (outside
        the user's folders) are not followed: the current model/add-on stay, such references are left out, and the
        status line says so (dropping those files directly uses them). Several subjects come back as subjects, all
        in the image, when each still has a reference."""
        notes = []
        subject_groups = split_by_subject(request.references, request.subjects) if request.subjects else []
        subject_groups = [(name, [p for p in paths if p not in outside]) for name, paths in subject_groups]
        if outside:
            more = ", …" if len(outside) > 1 else ""
            notes.append(f"left out {len(outside)} path{'s' if len(outside) > 1 else ''} outside your folders "
                         f"({Path(outside[0]).name}{more}): drop them directly to use them")
            request = request.replace(
                references=[p for p in request.references if p not in outside], subjects=[],
                model=self.controls.get("model") if request.model in outside else request.model,
                addon=self.controls.get("addon") if request.addon in outside else request.addon,
                loras=[lora for lora in request.loras if lora["path"] not in outside])
        if request.model and not Path(request.model).is_dir() and not is_repo_id(request.model):
            notes.append(f"its model folder {Path(request.model).name} is gone, kept the current model")
            request = request.replace(model=self.controls.get("model"))
        if request.addon and not Path(request.addon).is_dir():
            notes.append(f"its add-on folder {Path(request.addon).name} is gone, kept the current add-on")
            request = request.replace(addon=self.controls.get("addon"))
        model_changed = (request.model, request.addon) != self._studio.models.model_key()
        self.controls.apply_request(request)
        if model_changed:  # the recipe's own τ and guidance stay: they are what made the image
            self._studio.models.choose_model(request.model, request.addon, take_defaults=False)
        existing = [p for p in request.references if Path(p).exists()]
        missing = len(request.references) - len(existing)
        groups = [(name, [p for p in paths if p in existing]) for name, paths in subject_groups]
        if len(subject_groups) > 1 and all(paths for _name, paths in groups):
            self.subjects.restore_image_subjects(groups)
        elif existing and existing != self.subjects.references():
            if self.subjects.current.images:  # never overwrite the user's current subject
                self.subjects.add_subject(f"From {Path(source).stem}", existing)
            else:
                self.subjects.add_images(existing)
        if missing:
            notes.append(f"{missing} of its references no longer exist" if missing > 1
                         else "1 of its references no longer exists")
        self._studio.message.emit("; ".join([f"Restored settings from {Path(source).name}", *notes]))

    def save_library(self) -> None:
        subject = self.subjects.current
        if not subject.images:
            self._studio.message.emit("Add images to the subject before saving it as a library")
            return
        run_io(libraries.save_library, subject.name, list(subject.images),
               on_done=lambda lib: self._studio.message.emit(f"Saved library “{lib.name}” ({len(lib.images)} images)"),
               on_error=lambda error: self._studio.message.emit(f"Could not save library: {first_line(error)}"))

    def open_library(self, library: libraries.Library) -> None:
        self.subjects.add_subject(library.name, library.images)
        self._studio.message.emit(f"Opened library “{library.name}”")
