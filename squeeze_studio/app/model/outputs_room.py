"""Results and history: the latest results of this run, the ones that could not be written (kept in memory and
offered with Save As, put in the data folder at quit), and showing or comparing results from the history.

It follows the worker's ``finished`` and ``unsaved`` signals; every saved result joins the history index.
"""
from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ...errors import first_line
from ..background_io import run_io
from ..images import qimage_to_png_bytes, thumbnail
from ..persistence.history_index import HistoryRecord
from ..persistence.paths import unsaved_dir
from ..worker import SavedResult, UnsavedResult, save_problem
from .captions import result_caption
from .comparison import GRID, CompareItem
from .problems import HISTORY, RUN

log = logging.getLogger(__name__)
RECENT_RESULTS = 32  # decoded results kept in memory; older ones are read back from their PNG when shown


class OutputsRoom(QObject):
    unsaved_changed = Signal()               # results kept in memory because they could not be written

    def __init__(self, studio):
        super().__init__(studio)
        self._studio = studio
        self.history, self.comparison = studio.history, studio.comparison
        self.results: list[SavedResult] = []  # the latest results of this run, oldest first
        self.unsaved: list[UnsavedResult] = []  # could not be written; offered with Save As, oldest first
        studio.client.worker.finished.connect(self._on_result)
        studio.client.worker.unsaved.connect(self._on_unsaved)

    def _in_sweep(self) -> bool:
        job = self._studio.running_job
        return job is not None and bool(job.variations)

    def _on_result(self, result: SavedResult) -> None:
        if self._studio.closed:
            return
        self.results = [*self.results[-(RECENT_RESULTS - 1):], result]
        try:
            self.history.add(result.path, result.request, result.seconds, result.label, result.thumbnail_png)
        except sqlite3.Error as error:  # e.g. locked by a second window for too long: the PNG is the truth
            log.warning("could not add %s to the history index: %s", result.path, error)
            self._studio.problem.emit(HISTORY, f"Saved {Path(result.path).name}, but the history list could not "
                                      f"be updated: {first_line(error)}")
        caption = result_caption(result.request, result.seconds, result.info)  # one format, a sweep's cells too
        self._studio.canvas_image.emit(result.image, caption)
        self._studio.canvas_copy_paste.emit(result.copy_paste)
        if result.info.get("compile"):
            self._studio.message.emit(result.info["compile"])
        if self._in_sweep():
            self.comparison.fill_cell(result.batch_index, result.path, result.image)

    def _on_unsaved(self, result: UnsavedResult) -> None:
        if self._studio.closed:
            return
        self.unsaved.append(result)
        self.unsaved_changed.emit()
        caption = f"{result_caption(result.request)} · not saved"
        self._studio.canvas_image.emit(result.image, caption)
        self._studio.canvas_copy_paste.emit(result.copy_paste)
        if self._in_sweep():
            self.comparison.fill_cell(result.batch_index, "", result.image)
        count = len(self.unsaved)
        kept = "it is kept" if count == 1 else f"{count} images are kept"
        self._studio.problem.emit(RUN, f"Could not save to {result.folder}: {result.reason}; {kept} here, "
                                  f"use File > Save result as…")

    def save_unsaved_as(self, path: str, result: UnsavedResult | None = None) -> None:
        """Write an unsaved result (default: the oldest) with its recipe to ``path``; it joins the history."""
        if not self.unsaved:
            self._studio.message.emit("Every result is saved")
            return
        result = result or self.unsaved[0]
        target = Path(path) if Path(path).suffix.lower() == ".png" else Path(path).with_suffix(".png")

        def write() -> str:
            from ...recipe import save_png

            return str(save_png(result.pil, target, result.request, copy_paste=result.copy_paste))

        def done(saved: str) -> None:
            if result in self.unsaved:
                self.unsaved.remove(result)
                self.unsaved_changed.emit()
            if self._studio.closed:
                return
            try:
                thumb = qimage_to_png_bytes(thumbnail(result.image))
                self.history.add(saved, result.request, result.seconds, result.label, thumb)
            except sqlite3.Error as error:
                log.warning("could not add %s to the history index: %s", saved, error)
            left = f" ({len(self.unsaved)} more not saved)" if self.unsaved else ""
            self._studio.message.emit(f"Saved {Path(saved).name} in {Path(saved).parent}{left}")

        def failed(error: BaseException) -> None:
            reason = save_problem(error) if isinstance(error, OSError) else first_line(error)
            self._studio.problem.emit(RUN, f"Could not save {target.name}: {reason}; the image is still kept")

        run_io(write, on_done=done, on_error=failed)

    def keep_unsaved(self) -> None:
        """At quit: unsaved results go to the data folder's unsaved/ (best effort: that disk may be full too)."""
        if not self.unsaved:
            return
        from ...recipe import save_png

        folder = unsaved_dir()
        for result in list(self.unsaved):
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-seed{result.request.seed}-{uuid.uuid4().hex[:6]}.png"
            try:
                save_png(result.pil, folder / name, result.request, copy_paste=result.copy_paste)
                self.unsaved.remove(result)
            except OSError as error:
                log.error("could not keep an unsaved result in %s: %s", folder, error)

    # --- history and comparison -----------------------------------------------------------------
    def show_record(self, record: HistoryRecord) -> None:
        caption = result_caption(record.request, record.seconds)
        self._studio.show_canvas.emit()
        def read(path: str):
            from ...recipe import inspect_recipe

            return QImage(path), inspect_recipe(path).copy_paste

        def shown(image_and_score) -> None:
            if not self._studio.closed:
                self._studio.canvas_image.emit(image_and_score[0], caption)
                self._studio.canvas_copy_paste.emit(image_and_score[1])

        run_io(read, record.path, on_done=shown)

    def compare_records(self, records: list[HistoryRecord], mode: str | None = None) -> None:
        if len(records) < 2:
            self._studio.message.emit("Select two or more results to compare (Ctrl+click)")
            return
        items = [CompareItem(r.path, result_caption(r.request)) for r in records]
        self.comparison.show(items, mode if mode != GRID else None)
        self._studio.show_comparison.emit()
