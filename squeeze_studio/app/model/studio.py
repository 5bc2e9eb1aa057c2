"""The root of the app state: it owns the rooms the widgets call and follow, and runs generations.

The rooms: ``models`` (model choice, loading, memory; ``models_room.py``), ``inputs`` (drops, paste, recipes,
libraries; ``inputs_room.py``), ``outputs`` (results, unsaved images, history and compare; ``outputs_room.py``) and
``queue`` (the jobs waiting their turn; ``queue.py``). The root keeps the subjects, controls, progress, history and
comparison state, runs the generations (every one passes through the queue, so a crash re-queues it), the session
autosave and the ``EngineClient`` through which (and only through which) the engine is reached.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ...errors import first_line
from ...request import GenerationRequest
from ..background_io import run_io
from ..persistence.history_repair import open_history
from ..persistence.paths import remove_partial_files, results_dir
from ..persistence.queue_file import flush as flush_queue
from ..persistence.session import SessionAutosaver, load_session
from ..worker import EngineClient, EngineFactory, Job
from .comparison import Comparison
from .controls import Controls
from .generation import GenerationState
from .history import History
from .inputs_room import InputsRoom
from .models_room import ModelsRoom
from .outputs_room import OutputsRoom
from .picks import Picks
from .problems import INSTRUCTION, SUBJECTS, area_of_failure
from .queue import JobQueue, QueuedJob
from .reference_limits import too_many
from .subjects import SubjectList
from .sweep import sweep_axes, sweep_variations, variation_label


class Studio(QObject):
    message = Signal(str)                    # one line for the status bar: what happened, progress
    problem = Signal(str, str)               # (area of ``problems.AREAS``, one line): a banner in that panel
    canvas_image = Signal(object, str)       # QImage, caption: what the canvas shows when idle
    canvas_copy_paste = Signal(object)       # the shown result's copy_paste.CopyPaste, or None: the badge
    canvas_caption = Signal(str)             # a new caption for what the canvas shows (e.g. where a cancel stopped)
    show_comparison = Signal()               # switch the window to the comparison view
    show_canvas = Signal()                   # switch the window to the canvas
    job_finished = Signal(str)               # "done", "cancelled" or "failed", after all its results

    def __init__(self, engine_factory: EngineFactory | None = None, restore_session: bool = True,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.subjects = SubjectList(self)
        self.controls = Controls(self)
        self.generation = GenerationState(parent=self)
        index, self.history_problem = open_history()  # a damaged index is set aside and rebuilt from the PNGs
        self.history = History(index, self)
        self.comparison = Comparison(self)
        self.picks = Picks(parent=self)  # the user's pairwise picks and "your default"
        self._job: Job | None = None
        self._queued: QueuedJob | None = None  # the queue's entry for the running job (a sweep has none)
        self._closed = False
        self.startup_message = ""  # shown by the window once it exists (e.g. an unreadable session file)

        self.client = EngineClient(results_dir(), engine_factory, self)
        self.models = ModelsRoom(self)
        self.outputs = OutputsRoom(self)
        self.inputs = InputsRoom(self)
        self.queue = JobQueue(self)
        queue_note = self.queue.restore()  # the job a crash interrupted waits first again, the queue paused
        worker = self.client.worker
        worker.progress.connect(self._on_progress)
        worker.job_ended.connect(self._on_job_ended)
        worker.failed.connect(self._on_failed)

        # Temp files a crash (or kill -9) left behind while writing a result; never a finished PNG.
        run_io(remove_partial_files, results_dir(), on_done=lambda _count: None)
        self.autosaver = SessionAutosaver(self.session_snapshot, parent=self)
        if not (restore_session and self._restore_session()):
            self.models.take_defaults_on_load()  # a first start takes the model's defaults; a session keeps its own
        self.controls.changed.connect(self.autosaver.schedule)
        self.subjects.changed.connect(self.autosaver.schedule)
        self.subjects.current_changed.connect(self.autosaver.schedule)
        self.models.follow_edits()
        self.picks.set_model(*self.models.model_key())
        self.controls.changed.connect(lambda name: self.picks.set_model(*self.models.model_key())
                                      if name in ("", "model", "addon") else None)
        self.picks.message.connect(self.message)
        self.startup_message = "; ".join(n for n in (self.startup_message, queue_note) if n)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running_job(self) -> Job | None:
        return self._job

    # --- generation ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.generation.busy

    def build_request(self) -> GenerationRequest | None:
        """The request for the next run, or None (with a message) when the settings cannot run."""
        if not self.controls.get("instruction").strip():
            self.problem.emit(INSTRUCTION, "Write an instruction first")
            return None
        missing = [Path(p).name for p in self.subjects.references() if not Path(p).exists()]
        if missing:
            self.problem.emit(SUBJECTS, f"Reference no longer exists: {', '.join(missing[:3])}")
            return None
        over = too_many(len(self.subjects.references()), self.models.reference_cap,
                        self.models.model_name or "This model")
        if over:
            self.problem.emit(SUBJECTS, over)
            return None
        self.controls.next_seed()
        request = self.controls.to_request(self.subjects.references()).replace(
            subjects=self.subjects.request_subjects())
        try:
            request.validate()
        except ValueError as error:
            self.problem.emit(area_of_failure(first_line(error)), first_line(error))
            return None
        return request

    def generate(self) -> bool:
        """Run the current settings now, or (while a job runs) queue them as they are now."""
        if self._closed:
            return False
        request = self.build_request()
        if request is None:
            return False
        job = QueuedJob(request, *self.controls.engine_settings())
        if self.busy:
            self.queue.add(job)
            waiting = len(self.queue.waiting)
            self.message.emit(f"Queued: {waiting} job{'s' if waiting != 1 else ''} waiting"
                              + (" (the queue is paused)" if self.queue.paused else ""))
            return True
        self._run_queued(self.queue.add(job, first=True))
        return True

    def set_queue_paused(self, paused: bool) -> None:
        """Pause the queue (the running job finishes) or resume it (the next job starts when idle)."""
        self.queue.set_paused(paused)
        if not paused:
            self._start_next()

    def _start_next(self) -> None:
        if self._closed or self.busy:
            return
        job = self.queue.next_job()
        if job is not None:
            self._run_queued(job)

    def _run_queued(self, queued: QueuedJob) -> None:
        self.queue.started(queued)
        self._queued = queued
        self.show_canvas.emit()
        self._submit(Job(queued.request, device=queued.device, memory=queued.memory))

    def _queued_ended(self, failed: bool) -> None:
        """The running job's entry leaves the queue; after a failure the rest waits (paused) for the user."""
        done, self._queued = self._queued, None
        if done is not None:
            self.queue.finished(done)
        if failed and self.queue.waiting and not self.queue.paused:
            self.queue.set_paused(True)
            self.message.emit("The queue is paused after a failed job: Resume runs the rest")

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
        self._submit(Job(request, variations, labels, *self.controls.engine_settings()))
        return True

    def cancel(self) -> None:
        if self.busy:
            self.client.cancel()
            self.generation.cancelling()

    def _submit(self, job: Job) -> None:
        self.models.job_started()
        self._job = job
        self.generation.start(job.images, job.request.num_inference_steps, job.request)
        self.client.submit(job)

    def _on_progress(self, step: int, total: int, batch_index: int, preview) -> None:
        if not self._closed:
            self.generation.advance(step, total, batch_index, preview)

    def _on_job_ended(self, outcome: str) -> None:
        if self._closed:
            return
        step, total = self.generation.step, self.generation.total  # where a cancel took effect
        self.generation.stop()
        self._job = None
        if outcome == "cancelled":
            self.message.emit(f"Cancelled at step {step} of {total}; finished images were kept")
            self.canvas_caption.emit(f"Cancelled at step {step} of {total}")
        self.models.job_ended(outcome)
        self._queued_ended(failed=False)
        self.job_finished.emit(outcome)
        self._start_next()

    def _on_failed(self, text: str) -> None:
        if self._closed:
            return
        failed_key = self.models.failed(text)
        had_job, self._job = self._job is not None, None
        self.generation.stop()
        if failed_key is None:
            self.models.plan_if_asked()
        self.problem.emit(area_of_failure(text), text)  # stays in a banner until dismissed or the next run
        if had_job:
            self._queued_ended(failed=True)
            self.job_finished.emit("failed")
        self.models.after_failure(failed_key)
        self._start_next()

    # --- session ------------------------------------------------------------------------------
    def session_snapshot(self) -> dict:
        return {**self.subjects.to_dict(), "controls": self.controls.to_dict(), **self.models.to_dict()}

    def _restore_session(self) -> bool:
        data, self.startup_message = load_session()
        if not data:
            return False
        self.subjects.load_dict(data)
        self.controls.load_dict(data.get("controls") or {})
        self.models.load_dict(data)
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
        flush_queue()  # the queue's last change is on disk before the process ends
        self.outputs.keep_unsaved()
        self.history.close()
        self.picks.close()
        return joined
