"""How the history strip draws its items: the thumbnail in its own colours (selection is a border, never a tint that
turns an orange result brown), a two-line caption under it, and a labelled band around the results of one sweep.
The list drags results out as their PNG files and pixels (``result_actions.result_mime``)."""
from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QStyle, QStyledItemDelegate

from .result_actions import result_mime

ICON = 80
ID_ROLE = Qt.ItemDataRole.UserRole
CAPTION_ROLE = Qt.ItemDataRole.UserRole + 1  # (line 1, line 2) under the thumbnail
HEADER_ROLE = Qt.ItemDataRole.UserRole + 2   # the sweep header's text: a narrow item before a group
GROUP_ROLE = Qt.ItemDataRole.UserRole + 3    # True for a result inside a sweep group
BORDER = 3  # the selection border, in pixels, around the thumbnail


class HistoryDelegate(QStyledItemDelegate):
    def line(self, option) -> int:
        return option.fontMetrics.height()

    def sizeHint(self, option, index) -> QSize:
        height = ICON + 2 * BORDER + 2 * self.line(option) + 6
        if index.data(HEADER_ROLE):
            return QSize(self.line(option) + 8, height)
        return QSize(ICON + 2 * BORDER + 8, height)

    def paint(self, painter: QPainter, option, index) -> None:
        painter.save()
        palette, rect = option.palette, option.rect
        header = index.data(HEADER_ROLE)
        if header or index.data(GROUP_ROLE):  # the sweep's band behind its header and its results
            painter.fillRect(rect, palette.color(QPalette.ColorRole.AlternateBase))
        if header:
            self._paint_header(painter, rect, palette, str(header))
            painter.restore()
            return
        icon_rect = QRect(rect.left() + (rect.width() - ICON) // 2, rect.top() + BORDER + 1, ICON, ICON)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if icon is not None and not icon.isNull():
            pixmap = icon.pixmap(QSize(ICON, ICON), QIcon.Mode.Normal)  # its own colours, never the selected tint
            size = pixmap.deviceIndependentSize().toSize().scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio)
            icon_rect = QRect(icon_rect.left() + (ICON - size.width()) // 2,
                              icon_rect.top() + (ICON - size.height()) // 2, size.width(), size.height())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(icon_rect, pixmap)
        else:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(icon_rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             str(index.data(Qt.ItemDataRole.DisplayRole) or ""))
        if option.state & QStyle.StateFlag.State_Selected:
            pen = QPen(palette.color(QPalette.ColorRole.Highlight), BORDER)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            half = BORDER / 2
            painter.drawRect(icon_rect.toRectF().adjusted(-half - 1, -half - 1, half + 1, half + 1))
        lines = index.data(CAPTION_ROLE) or ("", "")
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        top = rect.top() + ICON + 2 * BORDER + 4
        for number, text in enumerate(lines):
            row = QRect(rect.left() + 2, top + number * self.line(option), rect.width() - 4, self.line(option))
            shown = option.fontMetrics.elidedText(text, Qt.TextElideMode.ElideRight, row.width())
            painter.drawText(row, Qt.AlignmentFlag.AlignCenter, shown)
        painter.restore()

    def _paint_header(self, painter: QPainter, rect: QRect, palette: QPalette, text: str) -> None:
        active = QPalette.ColorGroup.Active  # the header cannot be selected, so Qt hands it the disabled colours
        painter.setPen(QPen(palette.color(active, QPalette.ColorRole.Highlight), 2))
        painter.drawLine(rect.left() + 1, rect.top() + 2, rect.left() + 1, rect.bottom() - 2)
        painter.setPen(palette.color(active, QPalette.ColorRole.WindowText))
        painter.translate(rect.center())
        painter.rotate(-90)
        painter.drawText(QRect(-rect.height() // 2, -rect.width() // 2, rect.height(), rect.width()),
                         Qt.AlignmentFlag.AlignCenter, text)


class HistoryList(QListWidget):
    """The strip's list: results drag out as files and pixels; ``find`` maps an item to its record."""

    def __init__(self, find, parent=None):
        super().__init__(parent)
        self._find = find
        self.setItemDelegate(HistoryDelegate(self))

    def allow_drag_out(self) -> None:
        """After ``setMovement(Static)``, which turns dragging off."""
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)

    def records(self, items) -> list:
        found = [self._find(item.data(ID_ROLE)) for item in items if item.data(ID_ROLE) is not None]
        return [record for record in found if record is not None]

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list", "application/x-qt-image"]

    def mimeData(self, items):
        records = self.records(items)
        image = QImage(records[0].path) if records else None
        return result_mime([r.path for r in records], image)

    def supportedDragActions(self):
        return Qt.DropAction.CopyAction
