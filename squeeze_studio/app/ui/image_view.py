"""An image view with wheel zoom and drag pan, and a group that keeps several views in step."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPalette, QPixmap, QTransform
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.05, 32.0


class ImageView(QGraphicsView):
    view_changed = Signal()  # zoom or pan changed by the user (not by a sync)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._item)
        self._fit = True  # until the user zooms, every new image is fitted to the view
        self._image_size = None
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setBackgroundRole(QPalette.ColorRole.Window)
        self.setAcceptDrops(False)  # drops go to the window, which decides what they mean
        self.viewport().setAcceptDrops(False)
        self.horizontalScrollBar().valueChanged.connect(self._scrolled)
        self.verticalScrollBar().valueChanged.connect(self._scrolled)
        self._syncing = False

    def has_image(self) -> bool:
        return not self._item.pixmap().isNull()

    def set_image(self, image: QImage | QPixmap | None, display_size=None) -> None:
        """Show ``image``; ``display_size`` (QSize) scales a small preview up to the result's size so the
        zoom level stays put when the final image replaces the preview."""
        pixmap = QPixmap.fromImage(image) if isinstance(image, QImage) else (image or QPixmap())
        self._item.setPixmap(pixmap)
        transform = QTransform()
        if display_size is not None and not pixmap.isNull() and pixmap.width() > 0:
            transform.scale(display_size.width() / pixmap.width(), display_size.height() / pixmap.height())
        self._item.setTransform(transform)
        size = self._item.mapRectToScene(self._item.boundingRect()).size()
        changed_size = size != self._image_size
        self._image_size = size
        self.scene().setSceneRect(QRectF(QPointF(0, 0), size))
        if self._fit or changed_size:
            self.fit()

    def fit(self) -> None:
        self._fit = True
        if self.has_image():
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        """One image pixel per screen pixel (View > Actual size), centred on what was in the middle."""
        centre = self.mapToScene(self.viewport().rect().center())
        self._fit = False
        self.setTransform(QTransform())
        self.centerOn(centre)
        self.view_changed.emit()

    def zoom(self) -> float:
        return self.transform().m11()

    def wheelEvent(self, event) -> None:
        factor = ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP
        new_zoom = self.zoom() * factor
        if MIN_ZOOM <= new_zoom <= MAX_ZOOM:
            self._fit = False
            self.scale(factor, factor)
            self.view_changed.emit()
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()
        self.view_changed.emit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit()

    def _scrolled(self) -> None:
        if not self._syncing:
            self.view_changed.emit()

    # --- for ViewSync -------------------------------------------------------------------------
    def view_state(self) -> tuple[float, float, float, bool]:
        """Zoom and the visible centre relative to the image (0..1), so views of differently sized
        images still line up."""
        centre = self.mapToScene(self.viewport().rect().center())
        rect = self.sceneRect()
        return (self.zoom() * max(rect.width(), 1.0), centre.x() / max(rect.width(), 1.0),
                centre.y() / max(rect.height(), 1.0), self._fit)

    def apply_view_state(self, state: tuple[float, float, float, bool]) -> None:
        scaled_zoom, cx, cy, fit = state
        self._syncing = True
        try:
            rect = self.sceneRect()
            if fit:
                self.fit()
            else:
                self._fit = False
                zoom = scaled_zoom / max(rect.width(), 1.0)
                self.setTransform(QTransform.fromScale(zoom, zoom))
                self.centerOn(cx * rect.width(), cy * rect.height())
        finally:
            self._syncing = False


class ViewSync:
    """Keeps zoom and pan of a set of ``ImageView`` equal: whichever the user moves, the rest follow."""

    def __init__(self):
        self.views: list[ImageView] = []
        self._busy = False

    def add(self, view: ImageView) -> None:
        self.views.append(view)
        view.view_changed.connect(lambda v=view: self._follow(v))

    def clear(self) -> None:
        self.views = []

    def _follow(self, leader: ImageView) -> None:
        if self._busy or leader not in self.views:
            return
        self._busy = True
        try:
            state = leader.view_state()
            for view in self.views:
                if view is not leader:
                    view.apply_view_state(state)
        finally:
            self._busy = False
