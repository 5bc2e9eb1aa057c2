"""The root of the app state and the actions on it; the widgets call these and follow the signals.

It owns the subjects, controls, progress, history and comparison state, the session autosave, and
the ``EngineClient`` through which (and only through which) the engine is reached.
"""
from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ...request import GenerationRequest
from ..background_io import run_io
from ..persistence import libraries
from ..persistence.history_index import HistoryIndex, HistoryRecord
from ..persistence.paths import pasted_dir, results_dir
from ..persistence.session import SessionAutosaver, load_session
from ..worker import EngineClient, EngineFactory, Job, SavedResult, one_line
from .comparison import GRID, CompareItem, Comparison
from .controls import Controls
from .drops import DropPlan, plan_drop
from .generation import GenerationState
from .history import History
from .subjects import SubjectList
from .sweep import sweep_variations, variation_label

log = logging.getLogger(__name__)
RECENT_MODELS = 8
RECENT_RESULTS = 32  # decoded results kept in memory; older ones are read back from their PNG when shown


class Studio(QObject):
    message = Signal(str)                    # one line for the status bar
    canvas_image = Signal(object, str)       # QImage, caption: what the canvas shows when idle
    status_changed = Signal()                # model / device / memory text
    recent_models_changed = Signal()
    show_comparison = Signal()               # switch the window to the comparison view
    show_canvas = Signal()                   # switch the window to the canvas
    job_finished = Signal(str)               # "done", "cancelled" or "failed", after all its results

    def __init__(self, engine_factory: EngineFactory | None = None, restore_session: bool = True,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.subjects = SubjectList(self)
        self.controls = Controls(self)
        self.generation = GenerationState(parent=self)
        self.history = History(HistoryIndex(), self)
        self.comparison = Comparison(self)
        self.recent_models: list[str] = []
        self.model_name, self.device_name, self.memory_text = "", "", ""
        self.results: list[SavedResult] = []  # the latest results of this run, oldest first
        self._job: Job | None = None
        self._closed = False
        self.startup_message = ""  # shown by the window once it exists (e.g. an unreadable session file)

        self.client = EngineClient(results_dir(), engine_factory, self)
        worker = self.client.worker
        worker.model_loading.connect(self._on_model_loading)
        worker.model_ready.connect(self._on_model_ready)
        worker.memory.connect(self._on_memory)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_result)
        worker.job_ended.connect(self._on_job_ended)
        worker.failed.connect(self._on_failed)

        self.autosaver = SessionAutosaver(self.session_snapshot, parent=self)
        if restore_session:
            self._restore_session()
        self.controls.changed.connect(self.autosaver.schedule)
        self.subjects.changed.connect(self.autosaver.schedule)
        self.subjects.current_changed.connect(self.autosaver.schedule)
        self.recent_models_changed.connect(self.autosaver.schedule)

    # --- generation ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.generation.busy

    def preload_model(self) -> None:
        """Start loading the chosen model in the worker; the window is already on screen."""
        self.client.load(self.controls.get("model"))

    def build_request(self) -> GenerationRequest | None:
        """The request for the next run, or None (with a message) when the settings cannot run."""
        if not self.controls.get("instruction").strip():
            self.message.emit("Write an instruction first")
            return None
        missing = [Path(p).name for p in self.subjects.references() if not Path(p).exists()]
        if missing:
            self.message.emit(f"Reference no longer exists: {', '.join(missing[:3])}")
            return None
        self.controls.next_seed()
        request = self.controls.to_request(self.subjects.references())
        try:
            request.validate()
        except ValueError as error:
            self.message.emit(one_line(error))
            return None
        return request

    def generate(self) -> bool:
        if self.busy or self._closed:
            return False
        request = self.build_request()
        if request is None:
            return False
        self.show_canvas.emit()
        self._submit(Job(request))
        return True

    def sweep(self, vary_seed: bool = False) -> bool:
        """One click: a grid over several tau settings (and seeds) from one MLLM encoding."""
        if self.busy or self._closed:
            return False
        request = self.build_request()
        if request is None:
            return False
        variations, columns = sweep_variations(request.tau1, request.tau2, request.seed, vary_seed)
        request = request.replace(batch_count=1)
        labels = [variation_label(v) for v in variations]
        self.comparison.start_grid(labels, columns)
        self.show_comparison.emit()
        self._submit(Job(request, variations, labels))
        return True

    def cancel(self) -> None:
        if self.busy:
            self.client.cancel()
            self.generation.cancelling()

    def _submit(self, job: Job) -> None:
        self._job = job
        self.generation.start(job.images, job.request.num_inference_steps)
        self.client.submit(job)

    # --- worker signals ------------------------------------------------------------------------
    def _on_model_loading(self, model: str) -> None:
        self.model_name = f"Loading {Path(model).name if model else 'demo model'}…"
        self.generation.loading()
        self.status_changed.emit()

    def _on_model_ready(self, name: str, device: str) -> None:
        self.model_name, self.device_name = name, device
        self.generation.loaded()
        self.status_changed.emit()

    def _on_memory(self, text: str) -> None:
        self.memory_text = text
        self.status_changed.emit()

    def _on_progress(self, step: int, total: int, batch_index: int, preview) -> None:
        if not self._closed:
            self.generation.advance(step, total, batch_index, preview)

    def _on_result(self, result: SavedResult) -> None:
        if self._closed:
            return
        self.results = [*self.results[-(RECENT_RESULTS - 1):], result]
        self.history.add(result.path, result.request, result.seconds, result.label, result.thumbnail_png)
        caption = result.label or f"seed {result.request.seed} · {result.seconds:.1f} s"
        self.canvas_image.emit(result.image, caption)
        if self._job is not None and self._job.variations:
            self.comparison.fill_cell(result.batch_index, result.path, result.image)

    def _on_job_ended(self, outcome: str) -> None:
        if self._closed:
            return
        self.generation.stop()
        self._job = None
        if outcome == "cancelled":
            self.message.emit("Cancelled; finished images were kept")
        self.job_finished.emit(outcome)

    def _on_failed(self, text: str) -> None:
        if self._closed:
            return
        if text.startswith("Could not load model"):
            self.model_name = "No model loaded"
            self.status_changed.emit()
        had_job, self._job = self._job is not None, None
        self.generation.stop()
        self.message.emit(text)
        if had_job:
            self.job_finished.emit("failed")

    # --- references: drops, paste, libraries ----------------------------------------------------
    def drop_paths(self, paths: list[str], subject_index: int | None = None, allow_recipe: bool = True) -> None:
        """Files or folders dropped (or given on the command line); decided off the GUI thread."""
        if not paths:  # e.g. a link dragged from a web page
            self.message.emit("Only files on this computer can be dropped")
            return

        def apply(plan: DropPlan) -> None:
            if not self._closed:
                self._apply_drop(plan, subject_index, allow_recipe)

        run_io(plan_drop, list(paths), on_done=apply,
               on_error=lambda error: self.message.emit(f"Could not read the drop: {one_line(error)}"))

    def _apply_drop(self, plan: DropPlan, subject_index: int | None, allow_recipe: bool) -> None:
        if subject_index is not None and subject_index >= len(self.subjects.subjects):
            subject_index = None  # that subject was removed while the drop was being read
        if plan.recipe is not None:
            if allow_recipe:
                self.restore_recipe(plan.recipe, plan.recipe_path or "")
                return
            plan.images.append(plan.recipe_path or "")
        note = plan.message()
        if not plan.images:
            self.message.emit(note or "Nothing to add")
            return
        added = self.subjects.add_images(plan.images, subject_index)
        subject = self.subjects.subjects[self.subjects.current_index if subject_index is None else subject_index]
        text = f"Added {len(added)} image{'s' if len(added) != 1 else ''} to {subject.name}"
        self.message.emit(f"{text}. {note}" if note else text)

    def paste_image(self, image: QImage) -> None:
        """A clipboard image becomes a PNG file in the data folder (recipes store reference paths)."""
        if image.isNull():
            self.message.emit("The clipboard holds no image")
            return
        path = pasted_dir() / f"pasted-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.png"

        def write() -> str:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not image.save(str(path), "PNG"):
                raise OSError(f"could not write {path.name}")
            return str(path)

        run_io(write, on_done=lambda saved: self._apply_drop(DropPlan(images=[saved]), None, False),
               on_error=lambda error: self.message.emit(f"Could not paste: {one_line(error)}"))

    def restore_recipe(self, request: GenerationRequest, source: str) -> None:
        """Take instruction, controls and references from a generated PNG's recipe."""
        notes = []
        if request.model and not Path(request.model).is_dir():
            notes.append(f"its model folder {Path(request.model).name} is gone, kept the current model")
            request = request.replace(model=self.controls.get("model"))
        model_changed = request.model != self.controls.get("model")
        self.controls.apply_request(request)
        if model_changed:
            self.choose_model(request.model)
        existing = [p for p in request.references if Path(p).exists()]
        missing = len(request.references) - len(existing)
        if existing and existing != self.subjects.references():
            if self.subjects.current.images:  # never overwrite the user's current subject
                self.subjects.add_subject(f"From {Path(source).stem}", existing)
            else:
                self.subjects.add_images(existing)
        if missing:
            notes.append(f"{missing} of its references no longer exist" if missing > 1
                         else "1 of its references no longer exists")
        self.message.emit("; ".join([f"Restored settings from {Path(source).name}", *notes]))

    def save_library(self) -> None:
        subject = self.subjects.current
        if not subject.images:
            self.message.emit("Add images to the subject before saving it as a library")
            return
        run_io(libraries.save_library, subject.name, list(subject.images),
               on_done=lambda lib: self.message.emit(f"Saved library “{lib.name}” ({len(lib.images)} images)"),
               on_error=lambda error: self.message.emit(f"Could not save library: {one_line(error)}"))

    def open_library(self, library: libraries.Library) -> None:
        self.subjects.add_subject(library.name, library.images)
        self.message.emit(f"Opened library “{library.name}”")

    # --- history and comparison ---------------------------------------------------------------
    def show_record(self, record: HistoryRecord) -> None:
        caption = record.label or f"seed {record.request.seed} · {record.seconds:.1f} s"
        self.show_canvas.emit()
        run_io(QImage, record.path,
               on_done=lambda image: self.canvas_image.emit(image, caption) if not self._closed else None)

    def compare_records(self, records: list[HistoryRecord], mode: str | None = None) -> None:
        if len(records) < 2:
            self.message.emit("Select two or more results to compare (Ctrl+click)")
            return
        items = [CompareItem(r.path, r.label or f"seed {r.request.seed} · τ1 {r.request.tau1:g} · "
                             f"τ2 {r.request.tau2:g}") for r in records]
        self.comparison.show(items, mode if mode != GRID else None)
        self.show_comparison.emit()

    # --- model choice -------------------------------------------------------------------------
    def choose_model(self, folder: str) -> None:
        if folder:
            self.recent_models = [folder] + [m for m in self.recent_models if m != folder][: RECENT_MODELS - 1]
            self.recent_models_changed.emit()
        self.controls.set("model", folder)
        if not self.busy:
            self.preload_model()

    # --- session ------------------------------------------------------------------------------
    def session_snapshot(self) -> dict:
        return {**self.subjects.to_dict(), "controls": self.controls.to_dict(),
                "recent_models": list(self.recent_models)}

    def _restore_session(self) -> None:
        data, self.startup_message = load_session()
        if not data:
            return
        self.subjects.load_dict(data)
        self.controls.load_dict(data.get("controls") or {})
        self.recent_models = [str(m) for m in data.get("recent_models") or []][:RECENT_MODELS]

    def shutdown(self) -> None:
        """Save the session, cancel and join the worker, close the index. Safe to call twice."""
        if self._closed:
            return
        self.autosaver.save_now()
        self._closed = True
        self.client.shutdown()
        self.history.close()
