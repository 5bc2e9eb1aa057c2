"""The subject gallery: several subjects, each a reorderable list of reference thumbnails.

Images and folders dropped from the file manager (or pasted) go to the shown subject; a thumbnail
dragged within the list moves it; Delete removes it. Subjects can be saved as libraries and reopened.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...pictures import subject_legend
from ..background_io import run_io
from ..file_names import display_name
from ..images import load_thumbnail
from ..model.studio import Studio
from ..model.subjects import MAX_SUBJECTS_IN_IMAGE
from ..persistence import libraries
from .file_drops import local_paths

ICON = 96
PATH_ROLE = Qt.ItemDataRole.UserRole


class ThumbnailList(QListWidget):
    files_dropped = Signal(object)  # list of local paths; a list signal would drop bytes that are not UTF-8
    image_dropped = Signal(object)    # QImage dragged from e.g. a browser
    moved = Signal(int, int)          # from row, to row
    remove_requested = Signal(list)   # rows

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(ICON, ICON))
        self.setGridSize(QSize(ICON + 16, ICON + 28))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)  # we reorder the model ourselves, in dropEvent
        self.setWordWrap(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)

    def _accepts(self, event) -> bool:
        mime = event.mimeData()
        return event.source() is self or mime.hasUrls() or mime.hasImage()

    def dragEnterEvent(self, event) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        if event.source() is self:
            source = self.currentRow()
            target_item = self.itemAt(event.position().toPoint())
            target = self.row(target_item) if target_item is not None else self.count() - 1
            event.setDropAction(Qt.DropAction.CopyAction)  # keep Qt from deleting the dragged item itself
            event.accept()
            if source >= 0:
                self.moved.emit(source, target)
            return
        if mime.hasUrls():
            paths = local_paths(mime)
            event.acceptProposedAction()
            self.files_dropped.emit(paths)
        elif mime.hasImage():
            event.acceptProposedAction()
            self.image_dropped.emit(mime.imageData())
        else:
            event.ignore()

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Delete) or event.key() == Qt.Key.Key_Backspace:
            self._remove_selected()
            return
        super().keyPressEvent(event)

    def _remove_selected(self) -> None:
        rows = sorted((self.row(item) for item in self.selectedItems()), reverse=True)
        if rows:
            self.remove_requested.emit(rows)

    def _context_menu(self, position) -> None:
        item = self.itemAt(position)
        if item is None:
            return
        row = self.row(item)
        menu = QMenu(self)
        menu.addAction("Move earlier", lambda: self.moved.emit(row, row - 1)).setEnabled(row > 0)
        menu.addAction("Move later", lambda: self.moved.emit(row, row + 1)).setEnabled(row < self.count() - 1)
        menu.addSeparator()
        menu.addAction("Remove from subject", self._remove_selected)
        menu.exec(self.viewport().mapToGlobal(position))


class SubjectGallery(QWidget):
    def __init__(self, studio: Studio, parent: QWidget | None = None):
        super().__init__(parent)
        self._studio = studio
        self._subjects = studio.subjects
        self._thumbnails: dict[str, QImage] = {}
        self._loading: set[str] = set()  # thumbnails being decoded, so a rebuild does not start them twice
        self._paths: list[str] = []  # the path of each row

        self.subject_box = QComboBox()
        self.subject_box.setToolTip("The subject whose images are the references of the next generation.")
        self.subject_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.subject_box.setMinimumContentsLength(10)
        self.subject_box.activated.connect(self._subjects.select)
        add = self._tool("+", "New empty subject", lambda: self._subjects.add_subject())
        self.menu_button = self._tool("Subject ▾", "Rename or remove this subject, save it as a reusable "
                                      "library, or open a saved library", None)
        self.menu_button.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0; }")  # it overlapped
        self.subject_menu = QMenu(self)
        self.subject_menu.aboutToShow.connect(self._fill_subject_menu)
        self.menu_button.setMenu(self.subject_menu)
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)

        top = QHBoxLayout()
        top.addWidget(self.subject_box, 1)
        top.addWidget(add)
        top.addWidget(self.menu_button)

        self.list = ThumbnailList()
        self.list.setToolTip("Reference images of this subject: drop images or folders here or paste (Ctrl+V). "
                             "More angles give the model a better grip on identity. Drag to reorder, Delete removes.")
        self.list.files_dropped.connect(lambda paths: studio.inputs.drop_paths(paths, self._subjects.current_index))
        self.list.image_dropped.connect(studio.inputs.paste_image)
        self.list.moved.connect(self._subjects.move_image)
        self.list.remove_requested.connect(self._remove_rows)
        self.in_image = QLabel()  # which subjects the next image holds, when more than one
        self.in_image.setWordWrap(True)
        self.in_image.setToolTip("The subjects in the next image and their pictures. Subject ▾ > Also in this image "
                                 "adds or removes one; the instruction can name them, or use the chips above it.")
        self.hint = QLabel("Drop images or folders here, or paste with Ctrl+V")
        self.hint.setWordWrap(True)
        self.hint.setEnabled(False)  # the disabled text role: a quiet hint in light and dark palettes

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.in_image)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.hint)

        self._subjects.changed.connect(self._rebuild)
        self._subjects.current_changed.connect(self._rebuild)
        self._rebuild()

    def _tool(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton(text=text)
        button.setToolTip(tip)
        if slot is not None:
            button.clicked.connect(slot)
        return button

    def paths(self) -> list[str]:
        """The shown images' paths, row by row (kept in Python: a QVariant would lose a name that is not UTF-8)."""
        return list(self._paths)

    def _rebuild(self, *_args) -> None:
        self.subject_box.clear()
        for subject in self._subjects.subjects:
            self.subject_box.addItem(f"{subject.name} ({len(subject.images)})")
            self.subject_box.setItemData(self.subject_box.count() - 1, subject.name, Qt.ItemDataRole.ToolTipRole)
        self.subject_box.setCurrentIndex(self._subjects.current_index)
        self.subject_box.setToolTip(f"{self._subjects.current.name}: the subject whose images are the references "
                                    "of the next generation.")
        self.list.clear()
        self._paths = list(self._subjects.current.images)
        missing_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        for path in self._subjects.current.images:
            item = QListWidgetItem(display_name(Path(path).name))
            item.setData(PATH_ROLE, path)
            item.setToolTip(display_name(path))
            if not Path(path).exists():
                item.setIcon(missing_icon)
                item.setText(f"{display_name(Path(path).name)} (missing)")
            elif path in self._thumbnails:
                item.setIcon(QIcon(QPixmap.fromImage(self._thumbnails[path])))
            self.list.addItem(item)
            if Path(path).exists() and path not in self._thumbnails and path not in self._loading:
                self._load_thumbnail(path)  # may finish at once (no asyncio loop): the item must exist
        self.hint.setVisible(not self._subjects.current.images)
        groups = self._subjects.request_subjects()
        self.in_image.setText(f"In this image: {subject_legend(groups)}" if groups else "")
        self.in_image.setVisible(bool(groups))

    def _load_thumbnail(self, path: str) -> None:
        def show(image: QImage) -> None:
            self._loading.discard(path)
            self._thumbnails[path] = image
            for row, shown in enumerate(self._paths):
                if shown == path and self.list.item(row) is not None:
                    self.list.item(row).setIcon(QIcon(QPixmap.fromImage(image)))

        self._loading.add(path)
        run_io(load_thumbnail, path, ICON, on_done=show, on_error=lambda _error: self._loading.discard(path))

    def _remove_rows(self, rows: list[int]) -> None:
        for row in sorted(rows, reverse=True):
            self._subjects.remove_image(row)

    def _rename(self) -> None:
        index = self._subjects.current_index
        name, ok = QInputDialog.getText(self, "Rename subject", "Name:", text=self._subjects.current.name)
        if ok:
            self._subjects.rename(index, name)

    def _fill_subject_menu(self) -> None:
        menu = self.subject_menu
        menu.clear()
        menu.addAction("Rename…", self._rename)
        menu.addAction("Remove from gallery (files stay on disk)",
                       lambda: self._subjects.remove_subject(self._subjects.current_index))
        also = menu.addMenu("Also in this image")
        others = [(i, s) for i, s in enumerate(self._subjects.subjects) if i != self._subjects.current_index]
        also.setEnabled(bool(others))
        full = len(self._subjects.image_subjects()) >= MAX_SUBJECTS_IN_IMAGE
        for index, subject in others:
            action = also.addAction(f"{subject.name} ({len(subject.images)})")
            action.setCheckable(True)
            action.setChecked(self._subjects.in_image(index))
            action.setEnabled(action.isChecked() or not full)
            action.toggled.connect(lambda on, i=index: self._subjects.set_in_image(i, on))
        menu.addSeparator()
        save = QAction("Save as library", menu)
        save.triggered.connect(self._studio.inputs.save_library)
        menu.addAction(save)
        found = libraries.list_libraries()
        open_menu = menu.addMenu("Open library")
        open_menu.setEnabled(bool(found))
        for library in found:
            action = open_menu.addAction(library.label())
            action.triggered.connect(lambda _checked=False, lib=library: self._studio.inputs.open_library(lib))
