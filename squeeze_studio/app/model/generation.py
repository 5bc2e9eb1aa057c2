"""Progress of the running job as observable state: phase, step counts, ETA and the latest preview.

The ETA weighs the steps by what their stage costs (``stages.cost``): a VAE-focused step runs one transformer pass
where a layout or identity step runs two, and a layout step leaves the reference tokens out, so the time per unit of
work so far, times the work left, is the estimate."""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal

from ...stages.cost import step_cost, uniform_stages

IDLE, LOADING, RUNNING, CANCELLING = "idle", "loading", "running", "cancelling"


class GenerationState(QObject):
    phase_changed = Signal(str)
    progress_changed = Signal()
    preview_changed = Signal(object)  # QImage

    def __init__(self, clock=time.monotonic, parent: QObject | None = None):
        super().__init__(parent)
        self._clock = clock
        self.phase = IDLE
        self.step = 0            # within the current image, 1-based once running
        self.total = 0           # steps per image
        self.image_index = 0     # 0-based image of the batch / sweep
        self.images = 1
        self.previews_received = 0
        self._started = 0.0
        self._costs: list[float] = []  # per step of one image, relative to a CFG step; empty: all alike

    @property
    def busy(self) -> bool:
        return self.phase != IDLE

    @property
    def done_steps(self) -> int:
        return self.image_index * self.total + self.step

    @property
    def all_steps(self) -> int:
        return max(self.images * self.total, 1)

    @property
    def fraction(self) -> float:
        return min(self.done_steps / self.all_steps, 1.0) if self.total else 0.0

    def _work(self, steps: int) -> float:
        """The work of the first ``steps`` steps of an image."""
        costs = self._costs if len(self._costs) == self.total else [1.0] * self.total
        whole, part = divmod(steps, max(self.total, 1))
        return whole * sum(costs) + sum(costs[:part])

    @property
    def eta_seconds(self) -> float | None:
        """Time per unit of work so far times the work left (steps weighted by their stage's cost); None until a
        step has finished."""
        if self.done_steps <= 0 or self.phase != RUNNING:
            return None
        done = self._work(self.done_steps)
        per_work = (self._clock() - self._started) / max(done, 1e-9)
        return per_work * (self._work(self.all_steps) - done)

    def start(self, images: int, steps: int, request=None) -> None:
        """``request``: the job's ``GenerationRequest``, whose stages, guidance and references weigh the steps."""
        self._costs = [] if request is None else [
            step_cost(stage, request.guidance_scale, len(request.references))
            for stage in uniform_stages(steps, request.tau1, request.tau2)]
        self.images, self.total, self.step, self.image_index = max(images, 1), steps, 0, 0
        self.previews_received = 0
        self._started = self._clock()
        self._set_phase(RUNNING)
        self.progress_changed.emit()

    def loading(self) -> None:
        if self.phase == RUNNING and self.done_steps == 0:
            self._set_phase(LOADING)

    def loaded(self) -> None:
        if self.phase == LOADING:
            self._started = self._clock()  # the load time would make the first ETA far too long
            self._set_phase(RUNNING)

    def advance(self, step: int, total: int, image_index: int, preview) -> None:
        if self.phase == LOADING:
            self.loaded()
        self.step, self.total, self.image_index = step, total, image_index
        self.progress_changed.emit()
        if preview is not None:
            self.previews_received += 1
            self.preview_changed.emit(preview)

    def cancelling(self) -> None:
        if self.busy:
            self._set_phase(CANCELLING)

    def stop(self) -> None:
        self._set_phase(IDLE)
        self.progress_changed.emit()

    def _set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self.phase_changed.emit(phase)
