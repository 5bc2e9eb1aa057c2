"""The job queue: generations waiting their turn, each a frozen ``GenerationRequest`` (references and settings as
they were when queued) with the device and memory mode chosen then.

Every change is written to ``queue.json`` (``persistence/queue_file.py``), the running job too: after a
crash or a restart the queue comes back with the job that was running first again, paused until the user resumes
it (a job that crashed the app should not start unasked). ``Studio`` runs the jobs; this is the list.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from ...errors import first_line
from ...request import GenerationRequest
from ..persistence.queue_file import load_queue, save_queue

log = logging.getLogger(__name__)


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class QueuedJob:
    request: GenerationRequest
    device: str = ""       # "" = the best present
    memory: str = "auto"
    id: str = field(default_factory=_new_id)
    running: bool = False
    _text: str = field(default="", repr=False, compare=False)  # the frozen part as JSON, made once

    def to_json(self) -> str:
        """The job as a JSON object's text; the request is serialised once (it never changes)."""
        if not self._text:
            self._text = json.dumps({"id": self.id, "request": self.request.to_dict(), "device": self.device,
                                     "memory": self.memory})[:-1]
        return f'{self._text}, "running": {json.dumps(self.running)}}}'

    @classmethod
    def from_dict(cls, data: dict) -> QueuedJob:
        return cls(GenerationRequest.from_untrusted(data["request"]), str(data.get("device") or ""),
                   str(data.get("memory") or "auto"), str(data.get("id") or _new_id()), bool(data.get("running")))

    def label(self) -> str:
        """One line for the queue panel: the instruction's start, the seed and how many images."""
        text = " ".join(self.request.instruction.split())
        text = text if len(text) <= 40 else text[:39] + "…"
        count = self.request.batch_count
        return f"{text} · seed {self.request.seed}" + (f" · {count} images" if count > 1 else "")


class JobQueue(QObject):
    changed = Signal()

    def __init__(self, parent: QObject | None = None, path=None):
        super().__init__(parent)
        self.jobs: list[QueuedJob] = []   # the running one (if it came from the queue) first, then in order
        self.paused = False
        self._path = path

    # --- what the panel shows -------------------------------------------------------------------
    @property
    def waiting(self) -> list[QueuedJob]:
        return [job for job in self.jobs if not job.running]

    def find(self, job_id: str) -> QueuedJob | None:
        return next((job for job in self.jobs if job.id == job_id), None)

    # --- edits ----------------------------------------------------------------------------------
    def add(self, job: QueuedJob, first: bool = False) -> QueuedJob:
        """At the end, or (``first``) before every waiting job: a job that runs right away."""
        if first:
            self.jobs.insert(sum(job.running for job in self.jobs), job)
        else:
            self.jobs.append(job)
        self._changed()
        return job

    def remove(self, job_id: str) -> bool:
        """Cancel a waiting job (the running one is cancelled through ``Studio.cancel``)."""
        job = self.find(job_id)
        if job is None or job.running:
            return False
        self.jobs.remove(job)
        self._changed()
        return True

    def move(self, job_id: str, delta: int) -> bool:
        """Move a waiting job ``delta`` places (negative: sooner) among the waiting ones."""
        waiting = self.waiting
        job = self.find(job_id)
        if job is None or job.running:
            return False
        index = waiting.index(job)
        target = max(0, min(len(waiting) - 1, index + delta))
        if target == index:
            return False
        waiting.insert(target, waiting.pop(index))
        self.jobs = [j for j in self.jobs if j.running] + waiting
        self._changed()
        return True

    def duplicate(self, job_id: str) -> QueuedJob | None:
        """A copy of a job (the same frozen request) right after it, or after the running one."""
        job = self.find(job_id)
        if job is None:
            return None
        copy = QueuedJob(job.request.replace(), job.device, job.memory)
        self.jobs.insert(self.jobs.index(job) + 1, copy)
        self._changed()
        return copy

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self._changed()

    # --- running --------------------------------------------------------------------------------
    def next_job(self) -> QueuedJob | None:
        """The first waiting job, unless the queue is paused."""
        waiting = self.waiting
        return None if self.paused or not waiting else waiting[0]

    def started(self, job: QueuedJob) -> None:
        job.running = True
        self._changed()

    def finished(self, job: QueuedJob) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
            self._changed()

    # --- on disk --------------------------------------------------------------------------------
    def restore(self) -> str:
        """Load the saved queue: the job that was running waits first again, and a queue that comes back with jobs
        is paused. Returns one line for the status bar ("" when there was nothing)."""
        data, problem = load_queue(self._path)
        if not data:
            return problem
        jobs, skipped = [], 0
        for item in data["jobs"]:
            try:
                jobs.append(QueuedJob.from_dict(item))
            except (KeyError, TypeError, ValueError) as error:
                skipped += 1
                log.warning("queued job left out: %s", first_line(error))
        jobs.sort(key=lambda job: not job.running)  # the interrupted one runs first again
        for job in jobs:
            job.running = False
        self.jobs, self.paused = jobs, bool(jobs) or bool(data.get("paused"))
        self._changed()
        if not jobs:
            return problem
        line = f"{len(jobs)} queued job{'s' if len(jobs) != 1 else ''} restored; the queue is paused: Resume runs it"
        return "; ".join(n for n in (line, f"{skipped} unreadable left out" if skipped else "", problem) if n)

    def _changed(self) -> None:
        save_queue(self.paused, [job.to_json() for job in self.jobs], self._path)
        self.changed.emit()
