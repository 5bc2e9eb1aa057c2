"""The root of the app state and the actions on it; the widgets call these and follow the signals.

It owns the subjects, controls, progress, history and comparison state, the session autosave, and
the ``EngineClient`` through which (and only through which) the engine is reached.
"""
from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from ...errors import first_line
from ...request import GenerationRequest
from ..background_io import run_io
from ..images import qimage_to_png_bytes, thumbnail
from ..persistence import libraries
from ..persistence.history_index import HistoryRecord
from ..persistence.history_repair import open_history
from ..persistence.paths import pasted_dir, remove_partial_files, results_dir, unsaved_dir
from ..persistence.session import SessionAutosaver, load_session
from ..worker import EngineClient, EngineFactory, Job, SavedResult, UnsavedResult, save_problem
from .captions import result_caption
from .comparison import GRID, CompareItem, Comparison
from .controls import Controls
from .drops import DropPlan, plan_drop
from .generation import GenerationState
from .history import History
from .memory_info import usable_settings
from .model_names import addon_label, is_repo_id, model_label
from .problems import HISTORY, INSTRUCTION, RUN, SUBJECTS, area_of_failure
from .reference_limits import DEFAULT_REFERENCE_CAP, too_many, within_cap
from .subjects import SubjectList
from .sweep import sweep_axes, sweep_variations, variation_label

log = logging.getLogger(__name__)
RECENT_MODELS = 8
RECENT_ADDONS = 8
STAGE_FIELDS = ("tau1", "tau2", "guidance_scale")
RECENT_RESULTS = 32  # decoded results kept in memory; older ones are read back from their PNG when shown
PLAN_DELAY_MS = 250  # a new plan is asked for this long after the size or the references last changed


class Studio(QObject):
    message = Signal(str)                    # one line for the status bar: what happened, progress
    problem = Signal(str, str)               # (area of ``problems.AREAS``, one line): a banner in that panel
    canvas_image = Signal(object, str)       # QImage, caption: what the canvas shows when idle
    canvas_caption = Signal(str)             # a new caption for what the canvas shows (e.g. where a cancel stopped)
    status_changed = Signal()                # model / device / memory text
    recent_models_changed = Signal()
    recent_addons_changed = Signal()
    stage_defaults_changed = Signal()        # the loaded model's recommended τ1/τ2/guidance (or none loaded)
    show_comparison = Signal()               # switch the window to the comparison view
    show_canvas = Signal()                   # switch the window to the canvas
    job_finished = Signal(str)               # "done", "cancelled" or "failed", after all its results
    memory_changed = Signal()                # devices present, the memory plan, the measured peak, a lighter mode
    unsaved_changed = Signal()               # results kept in memory because they could not be written

    def __init__(self, engine_factory: EngineFactory | None = None, restore_session: bool = True,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.subjects = SubjectList(self)
        self.controls = Controls(self)
        self.generation = GenerationState(parent=self)
        index, self.history_problem = open_history()  # a damaged index is set aside and rebuilt from the PNGs
        self.history = History(index, self)
        self.comparison = Comparison(self)
        self.recent_models: list[str] = []
        self.recent_addons: list[str] = []
        self.loaded: tuple[str, str] | None = None      # (model, add-on) of the engine in the worker
        self.loaded_settings: tuple[str, str] | None = None  # (device, memory) it was loaded with
        self.stage_defaults: dict | None = None         # the loaded model's: tau1, tau2, guidance_scale, origin
        # (model, add-on, device, memory) the window goes back to after a failed load
        self._last_good: tuple[str, str, str, str] | None = None
        self._loading: tuple[str, str, str, str] | None = None
        self.devices: list[str] = []        # present, best first; empty until the worker has looked
        self.plan: dict | None = None       # the memory plan of the loaded engine (``memory_info.plan_dict``)
        self.peak: int | None = None        # measured peak VRAM of the last run (CUDA only)
        self.memory_problem = ""            # the last out-of-memory line, until a run finishes or a new choice
        self.lighter_mode = ""              # the lighter mode it named
        self._out_of_memory_pending = False
        self._plan_after_job = False
        self._defaults_for: tuple[str, str] | None = None  # the choice whose defaults replace the controls
        self._announce_defaults = False  # say so in the status bar even when they change nothing
        self._applying_defaults = False
        self._preload_pending = False
        self.model_name, self.device_name, self.memory_text = "", "", ""
        self.results: list[SavedResult] = []  # the latest results of this run, oldest first
        self.unsaved: list[UnsavedResult] = []  # could not be written; offered with Save As, oldest first
        self._job: Job | None = None
        self._closed = False
        self.reference_cap = DEFAULT_REFERENCE_CAP  # the loaded model's (``reference_limits``)
        self.startup_message = ""  # shown by the window once it exists (e.g. an unreadable session file)

        self.client = EngineClient(results_dir(), engine_factory, self)
        worker = self.client.worker
        worker.devices_found.connect(self._on_devices)
        worker.model_loading.connect(self._on_model_loading)
        worker.plan_ready.connect(self._on_plan)
        worker.peak_measured.connect(self._on_peak)
        worker.out_of_memory.connect(self._on_out_of_memory)
        worker.model_ready.connect(self._on_model_ready)
        worker.memory.connect(self._on_memory)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_result)
        worker.unsaved.connect(self._on_unsaved)
        worker.job_ended.connect(self._on_job_ended)
        worker.failed.connect(self._on_failed)

        # Temp files a crash (or kill -9) left behind while writing a result; never a finished PNG.
        run_io(remove_partial_files, results_dir(), on_done=lambda _count: None)
        self.autosaver = SessionAutosaver(self.session_snapshot, parent=self)
        if not (restore_session and self._restore_session()):
            self._defaults_for = self.model_key()  # a first start takes the model's defaults; a session keeps its own
        self.controls.changed.connect(self.autosaver.schedule)
        self.controls.changed.connect(self._on_control_edited)
        self.subjects.changed.connect(self.autosaver.schedule)
        self.subjects.current_changed.connect(self.autosaver.schedule)
        self.recent_models_changed.connect(self.autosaver.schedule)
        self.recent_addons_changed.connect(self.autosaver.schedule)
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self.refresh_plan)
        self.controls.changed.connect(self._on_size_edited)
        self.subjects.changed.connect(self._plan_timer.start)
        self.subjects.current_changed.connect(self._plan_timer.start)

    # --- generation ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.generation.busy

    def preload_model(self) -> None:
        """Start loading the chosen model (and add-on) in the worker; the window is already on screen."""
        self.client.load(*self.engine_key())

    def model_key(self) -> tuple[str, str]:
        return self.controls.get("model"), self.controls.get("addon")

    def engine_key(self) -> tuple[str, str, str, str]:
        """What the engine is loaded for: model, add-on, device ("" = automatic) and memory mode."""
        return (*self.model_key(), *self.controls.engine_settings())

    def build_request(self) -> GenerationRequest | None:
        """The request for the next run, or None (with a message) when the settings cannot run."""
        if not self.controls.get("instruction").strip():
            self.problem.emit(INSTRUCTION, "Write an instruction first")
            return None
        missing = [Path(p).name for p in self.subjects.references() if not Path(p).exists()]
        if missing:
            self.problem.emit(SUBJECTS, f"Reference no longer exists: {', '.join(missing[:3])}")
            return None
        over = too_many(len(self.subjects.references()), self.reference_cap, self.model_name or "This model")
        if over:
            self.problem.emit(SUBJECTS, over)
            return None
        self.controls.next_seed()
        request = self.controls.to_request(self.subjects.references())
        try:
            request.validate()
        except ValueError as error:
            self.problem.emit(area_of_failure(first_line(error)), first_line(error))
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
        self.comparison.start_grid(labels, columns, sweep_axes(variations, columns))
        self.show_comparison.emit()
        self._submit(Job(request, variations, labels))
        return True

    def cancel(self) -> None:
        if self.busy:
            self.client.cancel()
            self.generation.cancelling()

    def _submit(self, job: Job) -> None:
        job.device, job.memory = self.controls.engine_settings()
        self._plan_timer.stop()  # the run sends the plan for its own request
        self._job = job
        self.generation.start(job.images, job.request.num_inference_steps, job.request)
        self.client.submit(job)

    # --- worker signals ------------------------------------------------------------------------
    def _on_devices(self, devices: list[str]) -> None:
        """The worker looked: a remembered device that is gone (or a mode it cannot run) falls back to automatic,
        as the worker does when it loads."""
        self.devices = list(devices)
        device, memory, note = usable_settings(self.devices, *self.controls.engine_settings())
        if (device, memory) != self.controls.engine_settings():
            self.controls.set("device", device)
            self.controls.set("memory", memory)
            self.message.emit(note)
        self.memory_changed.emit()

    def _on_model_loading(self, model: str, addon: str, device: str = "", memory: str = "auto") -> None:
        self._loading = (model, addon, device, memory)
        self.loaded = self.loaded_settings = None  # the worker dropped the previous engine
        self.plan, self.peak = None, None
        self.memory_changed.emit()
        suffix = f" + {addon_label(addon)}" if addon else ""
        self.model_name = f"Loading {model_label(model) if model else 'demo model'}{suffix}…"
        self.generation.loading()
        self.status_changed.emit()

    def _on_model_ready(self, name: str, device: str, defaults: dict) -> None:
        key, self._loading = self._loading or self.engine_key(), None
        self._last_good = key
        self.loaded, self.loaded_settings = key[:2], key[2:]
        self.model_name, self.device_name = name, device
        self.generation.loaded()
        self.status_changed.emit()
        self._remember(*key[:2])  # only a model that loaded joins the recent lists
        self.stage_defaults = dict(defaults)
        self.reference_cap = int(defaults.get("max_references") or DEFAULT_REFERENCE_CAP)
        self.stage_defaults_changed.emit()
        self._plan_timer.start()  # the plan that came with the load is for the model's own size
        if self._defaults_for == key[:2]:
            self._defaults_for = None
            self.apply_model_defaults(announce=self._announce_defaults)

    def _on_plan(self, plan: dict) -> None:
        self.plan, self.peak = dict(plan), None
        self.memory_changed.emit()

    def _on_peak(self, peak) -> None:
        self.peak = None if peak is None else int(peak)
        self.memory_changed.emit()

    def _clear_memory_problem(self) -> None:
        if self.memory_problem or self.lighter_mode:
            self.memory_problem, self.lighter_mode = "", ""
            self.memory_changed.emit()

    def _on_out_of_memory(self, lighter: str) -> None:
        """Comes just before the one-line ``failed`` message, which is kept in the memory row too."""
        self.lighter_mode = lighter
        self._out_of_memory_pending = True

    @property
    def loading_model(self) -> bool:
        return self._loading is not None

    def suggested_mode(self) -> str:
        """A lighter memory mode to offer: the one the last out-of-memory error named, else the one the plan says
        would fit; "" when there is none or it is already chosen (or what "auto" chose)."""
        plan = self.plan or {}
        mode = self.lighter_mode or ("" if plan.get("fits", True) else plan.get("suggestion") or "")
        return "" if mode in (self.controls.get("memory"), plan.get("mode")) else mode

    def refresh_plan(self) -> None:
        """Ask the worker for the loaded engine's plan at the current size and number of references."""
        self._plan_timer.stop()
        if self.busy:  # asked again when the job ends, so the peak of this run stays beside its own plan
            self._plan_after_job = True
            return
        if self._closed or self.loaded is None or self.loaded != self.model_key():
            return
        self.client.plan(self.controls.to_request(self.subjects.references()))

    def _on_size_edited(self, name: str) -> None:
        if name in ("", "width", "height"):
            self._plan_timer.start()

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
        try:
            self.history.add(result.path, result.request, result.seconds, result.label, result.thumbnail_png)
        except sqlite3.Error as error:  # e.g. locked by a second window for too long: the PNG is the truth
            log.warning("could not add %s to the history index: %s", result.path, error)
            self.problem.emit(HISTORY, f"Saved {Path(result.path).name}, but the history list could not be updated: "
                              f"{first_line(error)}")
        caption = result_caption(result.request, result.seconds, result.info)  # one format, a sweep's cells too
        self.canvas_image.emit(result.image, caption)
        if result.info.get("compile"):
            self.message.emit(result.info["compile"])
        if self._job is not None and self._job.variations:
            self.comparison.fill_cell(result.batch_index, result.path, result.image)

    def _on_unsaved(self, result: UnsavedResult) -> None:
        if self._closed:
            return
        self.unsaved.append(result)
        self.unsaved_changed.emit()
        caption = f"{result_caption(result.request)} · not saved"
        self.canvas_image.emit(result.image, caption)
        if self._job is not None and self._job.variations:
            self.comparison.fill_cell(result.batch_index, "", result.image)
        count = len(self.unsaved)
        kept = "it is kept" if count == 1 else f"{count} images are kept"
        self.problem.emit(RUN, f"Could not save to {result.folder}: {result.reason}; {kept} here, "
                          f"use File > Save result as…")

    def save_unsaved_as(self, path: str, result: UnsavedResult | None = None) -> None:
        """Write an unsaved result (default: the oldest) with its recipe to ``path``; it joins the history."""
        if not self.unsaved:
            self.message.emit("Every result is saved")
            return
        result = result or self.unsaved[0]
        target = Path(path) if Path(path).suffix.lower() == ".png" else Path(path).with_suffix(".png")

        def write() -> str:
            from ...recipe import save_png

            return str(save_png(result.pil, target, result.request))

        def done(saved: str) -> None:
            if result in self.unsaved:
                self.unsaved.remove(result)
                self.unsaved_changed.emit()
            if self._closed:
                return
            try:
                thumb = qimage_to_png_bytes(thumbnail(result.image))
                self.history.add(saved, result.request, result.seconds, result.label, thumb)
            except sqlite3.Error as error:
                log.warning("could not add %s to the history index: %s", saved, error)
            left = f" ({len(self.unsaved)} more not saved)" if self.unsaved else ""
            self.message.emit(f"Saved {Path(saved).name} in {Path(saved).parent}{left}")

        def failed(error: BaseException) -> None:
            reason = save_problem(error) if isinstance(error, OSError) else first_line(error)
            self.problem.emit(RUN, f"Could not save {target.name}: {reason}; the image is still kept")

        run_io(write, on_done=done, on_error=failed)

    def _keep_unsaved(self) -> None:
        """At quit: unsaved results go to the data folder's unsaved/ (best effort: that disk may be full too)."""
        if not self.unsaved:
            return
        from ...recipe import save_png

        folder = unsaved_dir()
        for result in list(self.unsaved):
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-seed{result.request.seed}-{uuid.uuid4().hex[:6]}.png"
            try:
                save_png(result.pil, folder / name, result.request)
                self.unsaved.remove(result)
            except OSError as error:
                log.error("could not keep an unsaved result in %s: %s", folder, error)

    def _on_job_ended(self, outcome: str) -> None:
        if self._closed:
            return
        step, total = self.generation.step, self.generation.total  # where a cancel took effect
        self.generation.stop()
        self._job = None
        if self._preload_pending:
            self._preload_pending = False
            self.preload_model()
        if outcome == "cancelled":
            self.message.emit(f"Cancelled at step {step} of {total}; finished images were kept")
            self.canvas_caption.emit(f"Cancelled at step {step} of {total}")
        else:
            self._clear_memory_problem()  # a run finished: the last out-of-memory error is history
        if self._plan_after_job:
            self._plan_after_job = False
            self.refresh_plan()
        self.job_finished.emit(outcome)

    def _on_failed(self, text: str) -> None:
        if self._closed:
            return
        failed_key = None
        if self._out_of_memory_pending:
            self._out_of_memory_pending = False
            self.memory_problem = text.removeprefix("Could not load model: ")
            self.memory_changed.emit()
        if text.startswith("Could not load model"):
            failed_key, self._loading, self.loaded, self.loaded_settings = self._loading, None, None, None
            self.model_name = "No model loaded"
            self.stage_defaults = None
            self.status_changed.emit()
            self.stage_defaults_changed.emit()
        had_job, self._job = self._job is not None, None
        self.generation.stop()
        if self._plan_after_job and failed_key is None:
            self._plan_after_job = False
            self.refresh_plan()
        self.problem.emit(area_of_failure(text), text)  # stays in a banner until dismissed or the next run
        if had_job:
            self.job_finished.emit("failed")
        if failed_key is not None:
            self._fall_back(failed_key)
        elif self._preload_pending:
            self._preload_pending = False
            self.preload_model()

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
               on_error=lambda error: self.problem.emit(SUBJECTS, f"Could not read the drop: {first_line(error)}"))

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
        images, over = within_cap(subject.images, plan.images, self.reference_cap, self.model_name or "This model")
        note = "; ".join(n for n in (plan.message(), over) if n)
        if not images:
            self.problem.emit(SUBJECTS, note or "Nothing to add")
            return
        added = self.subjects.add_images(images, index)
        text = f"Added {len(added)} image{'s' if len(added) != 1 else ''} to {subject.name}"
        if note:
            self.problem.emit(SUBJECTS, f"{text}. {note}")
        else:
            self.message.emit(text)

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
               on_error=lambda error: self.problem.emit(SUBJECTS, f"Could not paste: {first_line(error)}"))

    def restore_recipe(self, request: GenerationRequest, source: str, outside: list[str] = ()) -> None:
        """Take instruction, controls and references from a generated PNG's recipe. Paths in ``outside`` (outside
        the user's folders) are not followed: the current model/add-on stay, such references are left out, and the
        status line says so (dropping those files directly uses them)."""
        notes = []
        if outside:
            more = ", …" if len(outside) > 1 else ""
            notes.append(f"left out {len(outside)} path{'s' if len(outside) > 1 else ''} outside your folders "
                         f"({Path(outside[0]).name}{more}): drop them directly to use them")
            request = request.replace(
                references=[p for p in request.references if p not in outside],
                model=self.controls.get("model") if request.model in outside else request.model,
                addon=self.controls.get("addon") if request.addon in outside else request.addon)
        if request.model and not Path(request.model).is_dir() and not is_repo_id(request.model):
            notes.append(f"its model folder {Path(request.model).name} is gone, kept the current model")
            request = request.replace(model=self.controls.get("model"))
        if request.addon and not Path(request.addon).is_dir():
            notes.append(f"its add-on folder {Path(request.addon).name} is gone, kept the current add-on")
            request = request.replace(addon=self.controls.get("addon"))
        model_changed = (request.model, request.addon) != self.model_key()
        self.controls.apply_request(request)
        if model_changed:  # the recipe's own τ and guidance stay: they are what made the image
            self.choose_model(request.model, request.addon, take_defaults=False)
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
               on_error=lambda error: self.message.emit(f"Could not save library: {first_line(error)}"))

    def open_library(self, library: libraries.Library) -> None:
        self.subjects.add_subject(library.name, library.images)
        self.message.emit(f"Opened library “{library.name}”")

    # --- history and comparison ---------------------------------------------------------------
    def show_record(self, record: HistoryRecord) -> None:
        caption = result_caption(record.request, record.seconds)
        self.show_canvas.emit()
        run_io(QImage, record.path,
               on_done=lambda image: self.canvas_image.emit(image, caption) if not self._closed else None)

    def compare_records(self, records: list[HistoryRecord], mode: str | None = None) -> None:
        if len(records) < 2:
            self.message.emit("Select two or more results to compare (Ctrl+click)")
            return
        items = [CompareItem(r.path, result_caption(r.request)) for r in records]
        self.comparison.show(items, mode if mode != GRID else None)
        self.show_comparison.emit()

    # --- model choice -------------------------------------------------------------------------
    def choose_model(self, model: str, addon: str | None = None, take_defaults: bool = True) -> None:
        """Switch to ``model`` (a folder, a repo id or "" for the demo) and ``addon`` (None: keep the current).

        It joins the recent list only once it has loaded; when it loads, its stage defaults replace the
        controls' unless ``take_defaults`` is off (a restored recipe keeps its own values)."""
        self.controls.set("model", model)
        if addon is not None:
            self.controls.set("addon", addon)
        self._defaults_for = self.model_key() if take_defaults else None
        self._clear_memory_problem()
        self._announce_defaults = True
        self._preload_pending = self.busy  # loads when the running job ends
        if not self.busy:
            self.preload_model()

    def choose_addon(self, addon: str, take_defaults: bool = True) -> None:
        self.choose_model(self.controls.get("model"), addon, take_defaults)

    def choose_memory(self, device: str | None = None, memory: str | None = None) -> None:
        """Run on ``device`` ("" = automatic) in memory mode ``memory`` (None: keep the current); the model loads
        again with them (once the running job ends), and they are remembered with the session."""
        if device is not None:
            self.controls.set("device", device)
        if memory is not None:
            self.controls.set("memory", memory)
        self._clear_memory_problem()
        if self.loaded is not None and self.loaded == self.model_key() \
                and self.loaded_settings == self.controls.engine_settings():
            return  # already loaded like that
        self._preload_pending = self.busy
        if not self.busy:
            self.preload_model()

    def use_suggested_mode(self) -> None:
        mode = self.suggested_mode()
        if mode:
            self.message.emit(f"Memory mode {mode}: loading the model again")
            self.choose_memory(memory=mode)

    def apply_model_defaults(self, announce: bool = False) -> None:
        """Set τ1/τ2/guidance to the loaded model's recommended values; the status bar says where they come
        from when they changed something (always with ``announce``)."""
        defaults = self.stage_defaults
        if defaults is None:
            self.message.emit("No model is loaded yet, so it has no stage defaults")
            return
        before = [self.controls.get(name) for name in STAGE_FIELDS]
        self._applying_defaults = True
        try:
            self.controls.set("tau2", defaults["tau2"])  # tau2 first: it pushes tau1 up, never past the target
            self.controls.set("tau1", defaults["tau1"])
            self.controls.set("guidance_scale", defaults["guidance_scale"])
        finally:
            self._applying_defaults = False
        changed = before != [self.controls.get(name) for name in STAGE_FIELDS]
        if announce or changed:
            self.message.emit(f"Stage defaults τ1 {defaults['tau1']:.2f} / τ2 {defaults['tau2']:.2f}, guidance "
                              f"{defaults['guidance_scale']:g} from: {defaults['origin']}")

    def _on_control_edited(self, name: str) -> None:
        """A stage value set by hand (or by a recipe) before the chosen model loaded is kept, not overwritten."""
        if name in ("", *STAGE_FIELDS) and not self._applying_defaults:
            self._defaults_for = None

    def _remember(self, model: str, addon: str) -> None:
        if model:
            self.recent_models = [model] + [m for m in self.recent_models if m != model][: RECENT_MODELS - 1]
            self.recent_models_changed.emit()
        if addon:
            self.recent_addons = [addon] + [a for a in self.recent_addons if a != addon][: RECENT_ADDONS - 1]
            self.recent_addons_changed.emit()

    def _fall_back(self, failed: tuple[str, str, str, str] | None) -> None:
        """After a failed load the choice goes back to the last model (device, memory mode) that loaded, which
        loads again."""
        target = self._last_good
        if target is None or failed is None or target == failed or self.engine_key() != failed:
            return
        for name, value in zip(("model", "addon", "device", "memory"), target, strict=True):
            self.controls.set(name, value)
        if not self.busy:
            self.preload_model()

    # --- session ------------------------------------------------------------------------------
    def session_snapshot(self) -> dict:
        return {**self.subjects.to_dict(), "controls": self.controls.to_dict(),
                "recent_models": list(self.recent_models), "recent_addons": list(self.recent_addons)}

    def _restore_session(self) -> bool:
        data, self.startup_message = load_session()
        if not data:
            return False
        self.subjects.load_dict(data)
        self.controls.load_dict(data.get("controls") or {})
        self.recent_models = [str(m) for m in data.get("recent_models") or []][:RECENT_MODELS]
        self.recent_addons = [str(a) for a in data.get("recent_addons") or []][:RECENT_ADDONS]  # newer sessions only
        return True

    def shutdown(self, wait_for_load: bool = True) -> bool:
        """Save the session, cancel and join the worker, keep unsaved results, close the index. Safe to call
        twice. Returns whether the worker thread ended: with ``wait_for_load`` off, a model load still running is
        not waited for (it cannot be interrupted, and writes nothing the user made)."""
        if self._closed:
            return self.client.thread.isFinished()
        self.autosaver.save_now()
        self._closed = True
        joined = self.client.shutdown(wait_for_load)
        self._keep_unsaved()
        self.history.close()
        return joined
