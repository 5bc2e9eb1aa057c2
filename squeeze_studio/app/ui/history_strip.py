"""The history strip: every result, newest first, across restarts. Click shows it on the canvas; the results of
one sweep sit together under a "Sweep" label (drawing: ``history_delegate``)."""
from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QListView,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..background_io import run_io
from ..model.captions import result_caption, sweep_groups, thumbnail_caption
from ..model.comparison import SIDE_BY_SIDE, SPLIT
from ..model.studio import Studio
from ..persistence.history_index import HistoryRecord
from .history_delegate import CAPTION_ROLE, GROUP_ROLE, HEADER_ROLE, ICON, ID_ROLE, HistoryList


def decode_thumbnails(thumbnails: list[tuple[int, bytes]]) -> dict[int, QImage]:
    return {record_id: QImage.fromData(data) for record_id, data in thumbnails}


def describe(record: HistoryRecord) -> str:
    r = record.request
    size = f"{r.width}×{r.height}" if r.width and r.height else "native size"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
    return (f"{r.instruction}\n{when} · {result_caption(r, record.seconds)}\nCFG {r.guidance_scale:g} · "
            f"{r.num_inference_steps} steps · {size}\n{record.path}")


class HistoryStrip(QWidget):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio = studio
        self._history = studio.history
        self.list = HistoryList(self._history.find)
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setSpacing(2)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setAcceptDrops(False)
        self.list.viewport().setAcceptDrops(False)
        self.list.allow_drag_out()  # a result dragged out: its PNG and its pixels
        self.list.setToolTip("Every result, newest first. Click to show; Ctrl+click several to compare; drag one "
                             "into another application.")
        self.list.itemClicked.connect(self._clicked)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.itemSelectionChanged.connect(self._selection_changed)

        self.compare_button = QPushButton("Side by side")
        self.compare_button.setToolTip("Show the selected results next to each other with zoom and pan in step.")
        self.compare_button.clicked.connect(lambda: studio.outputs.compare_records(self.selected(), SIDE_BY_SIDE))
        self.split_button = QPushButton("A/B split")
        self.split_button.setToolTip("Overlay the first two selected results with a slider between them.")
        self.split_button.clicked.connect(lambda: studio.outputs.compare_records(self.selected()[:2], SPLIT))
        buttons = QVBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.split_button)
        buttons.addStretch(1)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        line = self.fontMetrics().height()
        self.setMinimumHeight(ICON + 2 * line + 36)  # the thumbnail, its two caption lines, the scroll bar

        self._history.reset.connect(self._rebuild)
        self._history.added.connect(self._added)
        self._history.removed.connect(self._removed)
        self._rebuild()
        self._selection_changed()

    def selected(self) -> list[HistoryRecord]:
        records = [self._history.find(item.data(ID_ROLE)) for item in self.list.selectedItems()]
        return [r for r in records if r is not None]

    def _item(self, record: HistoryRecord, with_icon: bool = True) -> QListWidgetItem:
        item = QListWidgetItem()
        item.setData(ID_ROLE, record.id)
        item.setToolTip(describe(record))
        item.setData(CAPTION_ROLE, thumbnail_caption(record.request))
        if not record.thumbnail:
            item.setText(record.request.instruction[:24])
        elif with_icon:
            item.setIcon(QIcon(QPixmap.fromImage(QImage.fromData(record.thumbnail))))
        return item

    def _rebuild(self) -> None:
        """List every record at once; decode the thumbnails off the GUI thread (hundreds at start-up)."""
        self.list.clear()
        for record in self._history.records:
            self.list.addItem(self._item(record, with_icon=False))
        self._regroup()
        thumbnails = [(r.id, r.thumbnail) for r in self._history.records if r.thumbnail]
        run_io(decode_thumbnails, thumbnails, on_done=self._show_thumbnails)

    def _show_thumbnails(self, images: dict[int, QImage]) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            image = images.get(item.data(ID_ROLE))
            if image is not None and item.icon().isNull():
                item.setIcon(QIcon(QPixmap.fromImage(image)))

    def _added(self, record: HistoryRecord) -> None:
        self.list.insertItem(0, self._item(record))
        if record.label:  # a sweep's cell: it joins (or starts) its group
            self._regroup()

    def _removed(self, record_id: int) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(ID_ROLE) == record_id:
                self.list.takeItem(row)
                self._regroup()
                return

    def _regroup(self) -> None:
        """A "Sweep" label before the results of each sweep, and its band behind them (``captions.sweep_groups``)."""
        for row in reversed(range(self.list.count())):
            if self.list.item(row).data(HEADER_ROLE):
                self.list.takeItem(row)
        items = [self.list.item(row) for row in range(self.list.count())]
        records = [self._history.find(item.data(ID_ROLE)) for item in items]
        for item in items:
            item.setData(GROUP_ROLE, False)
        groups = sweep_groups([r for r in records if r is not None]) if None not in records else []
        for first, last in reversed(groups):
            for item in items[first:last + 1]:
                item.setData(GROUP_ROLE, True)
            header = QListWidgetItem()
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            header.setData(HEADER_ROLE, f"Sweep · {last - first + 1}")
            request = records[first].request
            header.setToolTip(f"A stage sweep of {last - first + 1} results: {request.instruction}")
            self.list.insertItem(first, header)

    def _clicked(self, item: QListWidgetItem) -> None:
        record = self._history.find(item.data(ID_ROLE))
        if record is not None:
            self._studio.outputs.show_record(record)

    def _selection_changed(self) -> None:
        count = len(self.list.selectedItems())
        self.compare_button.setEnabled(count >= 2)
        self.split_button.setEnabled(count >= 2)

    def _context_menu(self, position) -> None:
        item = self.list.itemAt(position)
        record = self._history.find(item.data(ID_ROLE)) if item is not None else None
        if record is None:
            return
        menu = QMenu(self)
        menu.addAction("Show", lambda: self._studio.outputs.show_record(record))
        menu.addAction("Restore its settings", lambda: self._studio.inputs.restore_recipe(record.request, record.path))
        menu.addAction("Use as reference", lambda: self._studio.inputs.drop_paths([record.path], allow_recipe=False))
        menu.addSeparator()
        menu.addAction("Remove from history (keeps the file)", lambda: self._history.forget(record.id))
        menu.exec(self.list.viewport().mapToGlobal(position))

