"""The one long-lived worker that owns the engine, living in its own ``QThread``.

The engine is a plain generator with no Qt in it (``StepEvent`` per step, ``ImageResult`` per image);
this worker turns those yields into signals, saves each result PNG with its recipe, and maps every
failure to a one-line message. It also reports the devices present, the engine's memory plan (a plain
dict) and the measured peak after a run; running out of memory, while loading or at a step, is one line
that names a lighter mode (``out_of_memory`` carries the mode), and the engine stays usable. The GUI thread
only ever talks to it through queued signals plus one thread-safe cancel flag, and never imports torch:
the engine module is imported here, lazily, in the worker thread.
"""
from __future__ import annotations

import errno
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from ..errors import first_line
from ..hub.defaults import PAPER_DEFAULTS
from ..request import GenerationRequest
from .images import pil_to_qimage, qimage_to_png_bytes, thumbnail
from .model.memory_info import is_out_of_memory_line, plan_dict, usable_settings, window_line

if TYPE_CHECKING:
    from ..events import ImageResult, StepEvent

log = logging.getLogger(__name__)

# (model, add-on, device=..., memory=...) -> engine. "" = the built-in demo / no add-on / the best device present;
# memory "auto" = the fastest mode the memory plan says fits. The worker passes device and memory only when one is
# not automatic, so a factory that takes just (model, add-on) keeps working while both stay automatic.
EngineFactory = Callable[..., Any]


def default_engine_factory(model: str, addon: str = "", device: str = "", memory: str = "auto") -> Any:
    """Load the real engine. Runs in the worker thread: this is where torch gets imported.

    ``model``: "" for the built-in demo, a folder, or a Hugging Face repo id (from the local cache only);
    ``addon``: "" or an add-on folder; ``device``: "" (the best present), "cuda", "cuda:1", "mps" or "cpu";
    ``memory``: a mode of ``memory.MEMORY_MODES``. The engine verifies all of them before loading and raises a
    one-line ``EngineError`` (a ``ValueError``) for a model that is missing, incomplete or does not match, and
    for running out of memory while loading (naming a lighter mode)."""
    from ..engine import Engine

    return Engine(model or None, addon or None, device=device or None, memory=memory or "auto")


def devices_present(factory: EngineFactory) -> list[str]:
    """The devices here, best first (the factory's ``available_devices()`` where it has one: a test's fake)."""
    probe = getattr(factory, "available_devices", None)
    if probe is None:
        from ..memory.devices import available_devices as probe
    return [str(device) for device in probe()]


def stage_defaults_of(engine: Any) -> dict:
    """The engine's recommended stage settings and how many references it takes, as a plain dict (the GUI thread
    never sees engine types)."""
    from .model.reference_limits import reference_cap_of

    defaults = getattr(engine, "stage_defaults", None) or PAPER_DEFAULTS
    return {"tau1": float(defaults.tau1), "tau2": float(defaults.tau2),
            "guidance_scale": float(defaults.guidance_scale), "origin": str(defaults.origin),
            "max_references": reference_cap_of(engine)}


@dataclass
class Job:
    """One unit of work for the worker: a plain generation, or a sweep over ``variations``."""

    request: GenerationRequest
    variations: list[dict] = field(default_factory=list)  # non-empty = sweep
    labels: list[str] = field(default_factory=list)       # one per variation, shown on its result
    device: str = ""        # "" = the best present
    memory: str = "auto"    # memory mode

    @property
    def images(self) -> int:
        return len(self.variations) if self.variations else self.request.batch_count


@dataclass
class SavedResult:
    path: str
    request: GenerationRequest
    seconds: float
    batch_index: int
    image: QImage
    thumbnail_png: bytes
    label: str = ""  # for sweep cells: the settings that differ, e.g. "τ1 0.95 · τ2 0.85"
    info: dict = field(default_factory=dict)  # ``ImageResult.info``: forward passes, what compiling cost
    copy_paste: Any = None  # the engine's ``copy_paste.CopyPaste`` for this image (None without references)


@dataclass
class UnsavedResult:
    """A finished image that could not be written (results folder read-only, gone, or the disk full): kept in
    memory with its recipe, so File > Save result as… can still write it anywhere."""

    request: GenerationRequest
    seconds: float
    batch_index: int
    image: QImage
    pil: Any             # the PIL image, for ``recipe.save_png`` (read only once handed over)
    folder: str          # where it should have gone
    reason: str          # one line: why it was not saved
    label: str = ""
    copy_paste: Any = None  # as SavedResult's


def save_problem(error: OSError) -> str:
    """Why a result could not be written, in the user's words."""
    code = getattr(error, "errno", None)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "the disk is full"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is read-only"
    if code == errno.ENOENT:
        return "the folder is gone"
    return first_line(error)


class EngineWorker(QObject):
    devices_found = Signal(object)       # list of devices present, best first (once, before the first load)
    model_loading = Signal(str, str, str, str)  # model ("" = demo), add-on ("" = none), device ("" = auto), memory
    model_ready = Signal(str, str, object)  # engine.model_name, engine.device_name, stage defaults dict
    plan_ready = Signal(object)          # the memory plan as a plain dict (``memory_info.plan_dict``)
    peak_measured = Signal(object)       # measured peak VRAM in bytes after a run, None off CUDA
    out_of_memory = Signal(str)          # the lighter mode to try ("" = none), just before ``failed``
    memory = Signal(str)                 # engine.memory_in_use()
    progress = Signal(int, int, int, object)  # step, total, batch_index, preview QImage or None
    finished = Signal(object)            # SavedResult: one image finished (a batch or sweep sends several)
    unsaved = Signal(object)             # UnsavedResult: one image finished but could not be written
    job_ended = Signal(str)              # "done" or "cancelled", after the job's last image
    failed = Signal(str)                 # one line, never a traceback

    def __init__(self, results_dir: Path, engine_factory: EngineFactory, cancel_flag: threading.Event,
                 previews: bool = True):
        super().__init__()
        self._results_dir = Path(results_dir)
        self._factory = engine_factory
        self._cancel = cancel_flag
        self.previews = previews  # off: skip converting/sending previews (used by the benchmark)
        self._engine: Any = None
        self._engine_key: tuple[str, str, str, str] | None = None  # (model, add-on, device, memory) loaded
        self._devices: list[str] | None = None  # probed before the first load
        self.loading = threading.Event()  # set while the factory loads a model (it cannot be interrupted)

    @property
    def engine(self) -> Any:
        """The loaded engine, for tests and benchmarks; only the worker thread may call into it."""
        return self._engine

    def set_results_dir(self, folder: Path) -> None:
        """Where the next results go (read by the worker thread when it saves; swapping one Path is atomic)."""
        self._results_dir = Path(folder)

    # --- slots, run in the worker thread --------------------------------------------------------
    @Slot(str, str, str, str)
    def load(self, model: str, addon: str, device: str = "", memory: str = "auto") -> None:
        self._load_or_report(model, addon, device, memory)

    @Slot(object)
    def run(self, job: Job) -> None:
        # Imported here, in the worker thread: they pull in PIL, which the window does not need to open.
        from ..events import GenerationCancelled

        engine = self._load_or_report(job.request.model, job.request.addon, job.device, job.memory)
        if engine is None:
            return
        self._send_plan(job.request)
        try:
            if job.variations:
                events = engine.sweep(job.request, job.variations, should_cancel=self._cancel.is_set)
            else:
                events = engine.generate(job.request, should_cancel=self._cancel.is_set)
            self._consume(events, job)
        except GenerationCancelled:
            self.job_ended.emit("cancelled")
        except Exception as error:  # noqa: BLE001 - shown as one line in the window, logged in full
            if is_out_of_memory_line(first_line(error)):
                log.warning("generation ran out of memory: %s", first_line(error))
                self.out_of_memory.emit(str(getattr(error, "lighter", "") or ""))
                self.failed.emit(window_line(first_line(error)))
            else:
                log.exception("generation failed")
                self.failed.emit(first_line(error))
        else:
            self._send_peak()
            self.job_ended.emit("done")
        finally:
            self._report_memory()

    @Slot(object)
    def plan(self, request: GenerationRequest) -> None:
        """The loaded engine's memory plan for ``request`` (its size and number of references)."""
        if self._engine is not None and self._engine_key[:2] == (request.model, request.addon):
            self._send_plan(request)

    def release(self) -> None:
        """Drop the engine (and its tensors) before the thread ends."""
        self._engine = None
        self._engine_key = None

    # --- internals ----------------------------------------------------------------------------
    def _load_or_report(self, model: str, addon: str, device: str = "", memory: str = "auto") -> Any:
        try:
            return self._ensure_engine(model, addon, device, memory)
        except Exception as error:  # noqa: BLE001
            log.warning("model load failed: %s", error)
            line = first_line(error)
            if is_out_of_memory_line(line):
                self.out_of_memory.emit(str(getattr(error, "lighter", "") or ""))
                line = window_line(line)
            self.failed.emit(f"Could not load model: {line}")
            return None

    def _ensure_engine(self, model: str, addon: str, device: str = "", memory: str = "auto") -> Any:
        if self._devices is None:
            try:
                self._devices = devices_present(self._factory)
            except Exception as error:  # noqa: BLE001 - the load below reports what is wrong
                log.warning("could not list devices: %s", error)
                self._devices = []
            self.devices_found.emit(list(self._devices))
        device, memory, _note = usable_settings(self._devices, device, memory)  # the window says why
        key = (model, addon, device, memory)
        if self._engine is None or self._engine_key != key:
            self.release()  # first: two large models side by side would not fit
            self.model_loading.emit(*key)
            self.loading.set()
            try:
                if device or memory != "auto":
                    self._engine = self._factory(model, addon, device=device, memory=memory)
                else:
                    self._engine = self._factory(model, addon)
            finally:
                self.loading.clear()
            self._engine_key = key
            self.model_ready.emit(str(self._engine.model_name), str(self._engine.device_name),
                                  stage_defaults_of(self._engine))
            plan = getattr(self._engine, "plan", None)
            if plan is not None:
                self.plan_ready.emit(plan_dict(plan))
            self._report_memory()
        return self._engine

    def _send_plan(self, request: GenerationRequest) -> None:
        plan_for = getattr(self._engine, "plan_for", None)
        if plan_for is None:
            return
        try:
            self.plan_ready.emit(plan_dict(plan_for(request)))
        except Exception as error:  # noqa: BLE001 - e.g. a size the model cannot take: the run says so too
            self.plan_ready.emit({"error": first_line(error)})

    def _send_peak(self) -> None:
        measured = getattr(self._engine, "measured_peak", None)
        if measured is not None:
            try:
                self.peak_measured.emit(measured())
            except Exception as error:  # noqa: BLE001 - best effort, like the memory display
                log.warning("could not read the peak memory: %s", error)

    def _consume(self, events: Iterator[StepEvent | ImageResult], job: Job) -> None:
        from ..events import GenerationCancelled, ImageResult, StepEvent

        try:
            for event in events:
                # The engine checks the flag too; checking here as well bounds a cancel to one step
                # even for an engine that forgets to.
                if self._cancel.is_set():
                    raise GenerationCancelled()
                if isinstance(event, StepEvent):
                    preview = None
                    if self.previews and event.preview is not None:
                        preview = pil_to_qimage(event.preview)
                    self.progress.emit(event.step, event.total, event.batch_index, preview)
                elif isinstance(event, ImageResult):
                    saved = self._save(event, job)
                    (self.finished if isinstance(saved, SavedResult) else self.unsaved).emit(saved)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _save(self, event: ImageResult, job: Job) -> SavedResult | UnsavedResult:
        """Write the result (atomically, with its recipe); when that fails (read-only, gone, disk full) the
        image is kept in memory instead and the job goes on: nothing made is lost."""
        from ..recipe import save_png

        folder = self._results_dir
        day = time.strftime("%Y-%m-%d")
        name = f"{time.strftime('%H%M%S')}-seed{event.request.seed}-{uuid.uuid4().hex[:6]}.png"
        image = pil_to_qimage(event.image)
        label = job.labels[event.batch_index] if 0 <= event.batch_index < len(job.labels) else ""
        try:
            path = save_png(event.image, folder / day / name, event.request, event.info, event.copy_paste)
        except OSError as error:
            log.warning("could not save a result in %s: %s", folder, error)
            return UnsavedResult(event.request, event.seconds, event.batch_index, image, event.image, str(folder),
                                 save_problem(error), label, event.copy_paste)
        return SavedResult(str(path), event.request, event.seconds, event.batch_index, image,
                           qimage_to_png_bytes(thumbnail(image)), label, event.info, event.copy_paste)

    def _report_memory(self) -> None:
        if self._engine is not None:
            try:
                self.memory.emit(str(self._engine.memory_in_use()))
            except Exception:  # noqa: BLE001 - memory display is best effort
                pass


class EngineClient(QObject):
    """GUI-thread handle on the worker: owns the thread, submits jobs, cancels, shuts down cleanly."""

    _load = Signal(str, str, str, str)
    _run = Signal(object)
    _plan = Signal(object)

    def __init__(self, results_dir: Path, engine_factory: EngineFactory | None = None, parent=None):
        super().__init__(parent)
        self.cancel_flag = threading.Event()
        self.thread = QThread()
        self.thread.setObjectName("squeeze-engine")
        self.worker = EngineWorker(results_dir, engine_factory or default_engine_factory, self.cancel_flag)
        self.worker.moveToThread(self.thread)
        # Queued: the GUI thread only posts; the worker runs the slot in its own thread.
        self._load.connect(self.worker.load)
        self._run.connect(self.worker.run)
        self._plan.connect(self.worker.plan)
        self.thread.start()
        self._closed = False

    def load(self, model: str, addon: str = "", device: str = "", memory: str = "auto") -> None:
        if not self._closed:
            self._load.emit(model, addon, device, memory)

    def plan(self, request: GenerationRequest) -> None:
        """Ask for the loaded engine's memory plan for ``request``; it comes back as ``worker.plan_ready``."""
        if not self._closed:
            self._plan.emit(request)

    def submit(self, job: Job) -> None:
        if not self._closed:
            self.cancel_flag.clear()  # cleared here, not in the worker, so an early Cancel is never lost
            self._run.emit(job)

    def cancel(self) -> None:
        self.cancel_flag.set()

    def shutdown(self, wait_for_load: bool = True) -> bool:
        """Cancel whatever runs, let the worker return to its event loop, and join the thread; True once joined.

        A generation stops within one step. A model load cannot be interrupted: with ``wait_for_load`` off the
        thread is left to finish it and False comes back (the app then ends its process without waiting; the load
        writes nothing the user made)."""
        if self._closed:
            return self.thread.isFinished()
        self._closed = True
        self.cancel_flag.set()
        self.thread.quit()
        while not self.thread.wait(20):
            if not wait_for_load and self.worker.loading.is_set():
                log.warning("quit while a model loads: not waiting for the load to finish")
                return False
        self.worker.release()
        return True
