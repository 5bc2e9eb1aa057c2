"""A/B split: two results drawn over each other, A left of a draggable line and B right of it."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

GRAB = 8  # pixels either side of the line that grab it rather than pan


class SplitView(QWidget):
    split_changed = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.image_a, self.image_b = QImage(), QImage()
        self.label_a, self.label_b = "A", "B"
        self.split = 0.5          # fraction of the image width shown from A
        self._zoom = 1.0          # on top of fit-to-widget
        self._offset = QPointF()  # pan, in widget pixels
        self._drag: str | None = None
        self._last = QPointF()
        self.setMouseTracking(True)
        self.setMinimumSize(200, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Drag the line to compare A (left) with B (right); wheel zooms, drag elsewhere pans, "
                        "double-click resets.")

    def set_images(self, a: QImage, b: QImage, label_a: str = "A", label_b: str = "B") -> None:
        self.image_a, self.image_b, self.label_a, self.label_b = a, b, label_a, label_b
        self.update()

    def set_split(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction != self.split:
            self.split = fraction
            self.split_changed.emit(fraction)
            self.update()

    def image_rect(self) -> QRectF:
        """Where the images are drawn: fitted to the widget, then zoomed and panned."""
        if self.image_a.isNull():
            return QRectF(self.rect())
        size = self.image_a.size().toSizeF().scaled(self.size().toSizeF(), Qt.AspectRatioMode.KeepAspectRatio)
        size *= self._zoom
        top_left = QPointF((self.width() - size.width()) / 2, (self.height() - size.height()) / 2) + self._offset
        return QRectF(top_left, size)

    def _line_x(self) -> float:
        rect = self.image_rect()
        return rect.left() + self.split * rect.width()

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Window))
        rect = self.image_rect()
        line = self._line_x()
        if not self.image_a.isNull():
            painter.save()
            painter.setClipRect(QRectF(rect.left(), rect.top(), line - rect.left(), rect.height()))
            painter.drawImage(rect, self.image_a)
            painter.restore()
        if not self.image_b.isNull():
            painter.save()
            painter.setClipRect(QRectF(line, rect.top(), rect.right() - line, rect.height()))
            painter.drawImage(rect, self.image_b)  # same rect: B is aligned pixel for pixel with A
            painter.restore()
        painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 2))
        painter.drawLine(QPointF(line, rect.top()), QPointF(line, rect.bottom()))
        self._label(painter, self.label_a, Qt.AlignmentFlag.AlignLeft)
        self._label(painter, self.label_b, Qt.AlignmentFlag.AlignRight)
        painter.end()

    def _label(self, painter: QPainter, text: str, align: Qt.AlignmentFlag) -> None:
        palette = self.palette()
        metrics = painter.fontMetrics()
        width = min(metrics.horizontalAdvance(text) + 20, self.width() // 2 - 8)
        height = metrics.height() + 6
        x = 6 if align == Qt.AlignmentFlag.AlignLeft else self.width() - width - 6
        box = QRectF(x, 6, width, height)
        background = QColor(palette.color(QPalette.ColorRole.Window))
        background.setAlphaF(0.85)
        painter.fillRect(box, background)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        elided = metrics.elidedText(text, Qt.TextElideMode.ElideRight, int(width - 8))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, elided)

    def mousePressEvent(self, event) -> None:
        position = event.position()
        self._drag = "split" if abs(position.x() - self._line_x()) <= GRAB else "pan"
        self._last = position
        if self._drag == "pan":
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        position = event.position()
        if self._drag == "split":
            rect = self.image_rect()
            self.set_split((position.x() - rect.left()) / max(rect.width(), 1.0))
        elif self._drag == "pan":
            self._offset += position - self._last
            self._last = position
            self.update()
        else:
            near = abs(position.x() - self._line_x()) <= GRAB
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)

    def mouseReleaseEvent(self, _event) -> None:
        self._drag = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, _event) -> None:
        self._zoom, self._offset = 1.0, QPointF()
        self.update()

    def wheelEvent(self, event) -> None:
        factor = 1.25 if event.angleDelta().y() > 0 else 0.8
        new_zoom = min(max(self._zoom * factor, 0.2), 32.0)
        # Zoom about the cursor: the image point under it stays under it.
        cursor = event.position()
        centre = QPointF(self.width() / 2, self.height() / 2)
        ratio = new_zoom / self._zoom
        self._offset = (self._offset + centre - cursor) * ratio - (centre - cursor)
        self._zoom = new_zoom
        self.update()
        event.accept()
