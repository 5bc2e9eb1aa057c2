"""The two-handle stage bar for tau1/tau2, drawn along the denoising timeline.

Left is t = 1 (pure noise), right is t = 0 (the image). The handles split the run into the method's
three stages, named in plain words: layout (the paper's MLLM only, t >= tau1: layout and semantics form freely,
no copy-paste), identity (MLLM + VAE) and detail (VAE-focused, t < tau2). Either handle moved left gives more of
the references' identity, moved right more freedom: that is the bar's primary wording, τ1 / τ2 its secondary
readout. Colours come from the palette, so the bar follows the system's light or dark scheme.

Under the bar, filled ticks mark the paper's default and, where the loaded model recommends other
values (a base whose connector is untrained runs as itself: τ1 = 1, τ2 = 0), hollow ticks mark the
model's; the tooltip says where each came from. Once the user has picked enough results in the comparison view,
diamonds mark "your default": the setting their picks prefer (``model.preferences``), with how many picks it rests on.

The legend's right end shows what the schedule costs against stock CFG at every step (``stages.cost``: forward
passes weighted by tokens, at the run's steps, guidance and references), and the tooltip what a step of each stage
costs: the staged schedule is also the faster one.
"""
from __future__ import annotations

from html import escape

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

from ...request import DEFAULT_GUIDANCE, DEFAULT_TAU1, DEFAULT_TAU2
from ...stages import Stage
from ...stages.cost import schedule_work, step_cost, uniform_stages

STAGES = ("Layout", "Identity", "Detail")  # the paper's MLLM only, MLLM + VAE, VAE-focused
IDENTITY, FREEDOM = "◀ more identity", "more freedom ▶"
TOOLTIP = ("<b>Identity ↔ freedom</b>: drag a handle left to keep more of the subject's look, right to give the "
           "instruction more freedom of pose and layout.<br>")
HELP = "Double-click: this model's defaults. τ1 / τ2: where each handle sits on the run from noise (1) to image (0)."


def _blend(a: QColor, b: QColor, amount: float) -> QColor:
    """``amount`` of ``a`` over ``b``."""
    return QColor.fromRgbF(*(a.getRgbF()[i] * amount + b.getRgbF()[i] * (1 - amount) for i in range(3)))


def _readable_on(fill: QColor, palette: QPalette) -> QColor:
    """Whichever of the palette's text or base colour stands out more against ``fill``."""
    text, base = palette.color(QPalette.ColorRole.Text), palette.color(QPalette.ColorRole.Base)
    contrast = lambda c: abs(c.lightnessF() - fill.lightnessF())  # noqa: E731
    return text if contrast(text) >= contrast(base) else base


class StageBar(QWidget):
    values_changed = Signal(float, float)  # tau1, tau2
    user_default_chosen = Signal()         # "Use your default" in the menu (the controls panel also sets guidance)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._tau1, self._tau2 = DEFAULT_TAU1, DEFAULT_TAU2
        self._model_default: tuple[float, float] | None = None
        self._model_origin = ""
        self._user_default: tuple[float, float] | None = None
        self._user_words, self._user_picks = "", 0  # words: "your default τ1 … (from 12 picks)"
        self._run = (20, DEFAULT_GUIDANCE, 2)  # steps, guidance, references: what the cost figures assume
        self._active = 0  # 0 = tau1 handle, 1 = tau2 handle
        self._dragging = False
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(220)
        self._update_tooltip()
        self.setAccessibleName("Stage balance: identity or freedom")

    # --- values ------------------------------------------------------------------------------
    def values(self) -> tuple[float, float]:
        return self._tau1, self._tau2

    def set_values(self, tau1: float, tau2: float, emit: bool = False) -> None:
        tau1 = round(min(max(tau1, 0.0), 1.0), 2)
        tau2 = round(min(max(tau2, 0.0), tau1), 2)
        if (tau1, tau2) != (self._tau1, self._tau2):
            self._tau1, self._tau2 = tau1, tau2
            self._update_tooltip()
            self.update()
            if emit:
                self.values_changed.emit(tau1, tau2)

    def set_run(self, steps: int, guidance_scale: float, references: int) -> None:
        """The run the cost figures are for."""
        if (steps, guidance_scale, references) != self._run:
            self._run = (max(steps, 1), guidance_scale, references)
            self._update_tooltip()
            self.update()

    def work(self) -> float:
        """The run's transformer work against stock CFG at every step (the same steps, guidance and references)."""
        steps, guidance, references = self._run
        return schedule_work(uniform_stages(steps, self._tau1, self._tau2), guidance, references)

    def cost_text(self) -> str:
        """What a step of each stage costs against a CFG step, and the stage split at the run's steps."""
        steps, guidance, references = self._run
        stages = uniform_stages(steps, self._tau1, self._tau2)
        costs = ", ".join(f"{name} {step_cost(stage, guidance, references):.2f}" for name, stage in
                          zip(STAGES, Stage, strict=True))
        split = " | ".join(str(stages.count(stage)) for stage in Stage)
        return (f"A step costs, against a CFG step with {references} reference{'s' * (references != 1)}: {costs}. "
                f"At {steps} steps ({split}): ≈{self.work():.2f}× the work of CFG at every step.")

    def set_model_default(self, tau1: float, tau2: float, origin: str) -> None:
        """The loaded model's recommended τ1/τ2 and, in a few words, where they come from."""
        self._model_default, self._model_origin = (round(tau1, 2), round(tau2, 2)), origin
        self._model_default_changed()

    def clear_model_default(self) -> None:
        self._model_default, self._model_origin = None, ""
        self._model_default_changed()

    def _model_default_changed(self) -> None:
        self._update_tooltip()
        self.updateGeometry()  # one more line while the model's marker is shown
        self.update()

    def set_user_default(self, tau1: float, tau2: float, picks: int, words: str) -> None:
        """The setting the user's ``picks`` prefer, and the words that say so (``preferences.Preference.words``)."""
        self._user_default, self._user_picks, self._user_words = (round(tau1, 2), round(tau2, 2)), picks, words
        self._model_default_changed()

    def clear_user_default(self) -> None:
        self._user_default, self._user_picks, self._user_words = None, 0, ""
        self._model_default_changed()

    def user_default(self) -> tuple[float, float] | None:
        return self._user_default

    def model_default(self) -> tuple[float, float] | None:
        return self._model_default

    def shows_model_marker(self) -> bool:
        return self._model_default not in (None, (DEFAULT_TAU1, DEFAULT_TAU2))

    def reset(self, to_paper: bool = False) -> None:
        """Back to the model's default (the paper's when no model says otherwise)."""
        tau1, tau2 = (DEFAULT_TAU1, DEFAULT_TAU2) if to_paper or self._model_default is None else self._model_default
        self.set_values(tau1, tau2, emit=True)

    def _update_tooltip(self) -> None:
        """Three short lines (it had twelve): what the handles do, this model's default, the readout."""
        model = ""
        if self._model_default is not None:
            tau1, tau2 = self._model_default
            model = f"This model's default τ1 {tau1:.2f} / τ2 {tau2:.2f}: {escape(self._model_origin, quote=False)}<br>"
        user = f"{escape(self._user_words.capitalize(), quote=False)}<br>" if self._user_words else ""
        self.setToolTip(TOOLTIP + model + user + escape(self.cost_text(), quote=False) + "<br>" + HELP)

    def words(self) -> dict[str, str]:
        """What the bar writes: the primary wording above, the τ readout (secondary) and the defaults' marks below."""
        words = {"left": IDENTITY, "right": FREEDOM, "readout": f"τ1 {self._tau1:.2f} · τ2 {self._tau2:.2f}",
                 "default": "▲ default", "model": "", "user": "", "work": f"≈{self.work():.2f}× CFG work"}
        if self.shows_model_marker():
            words["model"] = "△ this model's default"
        if self._user_default is not None:
            words["user"] = f"◆ your default ({self._user_picks} picks)"
        return words

    def _move_active(self, t: float) -> None:
        if self._active == 0:
            self.set_values(t, min(self._tau2, t), emit=True)
        else:
            self.set_values(max(self._tau1, t), t, emit=True)

    # --- geometry ----------------------------------------------------------------------------
    def _line(self) -> int:
        return QFontMetrics(self.font()).height()

    def _height(self) -> int:
        """Axis labels, bar, ticks, readout, the model's and the user's default lines when shown, legend."""
        return self._line() * (4 + self.shows_model_marker() + (self._user_default is not None)) + 26

    def sizeHint(self) -> QSize:
        return QSize(320, self._height())

    def minimumSizeHint(self) -> QSize:
        return QSize(220, self._height())

    def _bar(self) -> QRectF:
        margin = 8.0
        return QRectF(margin, self._line() + 4, self.width() - 2 * margin, self._line() + 8)

    def _x(self, t: float) -> float:
        bar = self._bar()
        return bar.left() + (1.0 - t) * bar.width()

    def _t(self, x: float) -> float:
        bar = self._bar()
        return round(min(max(1.0 - (x - bar.left()) / max(bar.width(), 1.0), 0.0), 1.0), 2)

    # --- painting ----------------------------------------------------------------------------
    def stage_colors(self) -> list[QColor]:
        palette = self.palette()
        highlight, base = palette.color(QPalette.ColorRole.Highlight), palette.color(QPalette.ColorRole.Base)
        return [highlight, _blend(highlight, base, 0.55), _blend(highlight, base, 0.2)]

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette, bar, line = self.palette(), self._bar(), self._line()
        text_color = palette.color(QPalette.ColorRole.WindowText)
        colors = self.stage_colors()

        # The primary wording above the bar: what moving a handle each way does.
        words = self.words()
        painter.setPen(text_color)
        top = QRectF(bar.left(), 0, bar.width(), line)
        painter.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, words["left"])
        painter.drawText(top, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, words["right"])

        # The three stages, with their name inside when it fits.
        edges = [(1.0, self._tau1), (self._tau1, self._tau2), (self._tau2, 0.0)]
        metrics = QFontMetrics(self.font())
        for (start, end), color, name in zip(edges, colors, STAGES, strict=True):
            region = QRectF(self._x(start), bar.top(), self._x(end) - self._x(start), bar.height())
            painter.fillRect(region, color)
            if metrics.horizontalAdvance(name) + 8 <= region.width():
                painter.setPen(_readable_on(color, palette))
                painter.drawText(region, Qt.AlignmentFlag.AlignCenter, name)
        painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(bar)

        # The paper's default as two filled ticks under the bar; the model's, where it differs, hollow.
        self._paint_ticks(painter, (DEFAULT_TAU1, DEFAULT_TAU2), QPen(text_color, 1), text_color)
        if self.shows_model_marker():
            pen = QPen(palette.color(QPalette.ColorRole.Highlight), 1.5)
            self._paint_ticks(painter, self._model_default, pen, palette.color(QPalette.ColorRole.Base))
        if self._user_default is not None:
            link = palette.color(QPalette.ColorRole.Link)
            self._paint_ticks(painter, self._user_default, QPen(link, 1), link, diamond=True)

        # Handles: a grip on each threshold; the active one gets the focus colour.
        for index, t in enumerate((self._tau1, self._tau2)):
            x = self._x(t)
            grip = QRectF(x - 4, bar.top() - 4, 8, bar.height() + 8)
            active = index == self._active and self.hasFocus()
            painter.setBrush(palette.color(QPalette.ColorRole.Button))
            edge = palette.color(QPalette.ColorRole.Highlight if active else QPalette.ColorRole.WindowText)
            painter.setPen(QPen(edge, 2 if active else 1))
            painter.drawRoundedRect(grip, 3, 3)

        # The τ readout (secondary, in the placeholder colour), the defaults' marks, and the legend below.
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        below = bar.bottom() + 10
        readout = QRectF(bar.left(), below, bar.width(), line)
        painter.drawText(readout, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, words["readout"])
        painter.drawText(readout, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, words["default"])
        rows = 1
        for key in ("model", "user"):
            if words[key]:
                painter.drawText(readout.translated(0, rows * line),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, words[key])
                rows += 1
        legend = QRectF(bar.left(), below + rows * line + 4, bar.width(), line)
        self._paint_legend(painter, legend, colors)
        if self._paint_legend_width() + QFontMetrics(self.font()).horizontalAdvance(words["work"]) <= bar.width():
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(legend, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, words["work"])
        painter.end()

    def _paint_ticks(self, painter: QPainter, values, pen: QPen, fill: QColor, diamond: bool = False) -> None:
        painter.setPen(pen)
        painter.setBrush(fill)
        y = self._bar().bottom() + 2
        for t in values:
            x = self._x(t)
            points = [QPointF(x, y), QPointF(x - 4, y + 6), QPointF(x + 4, y + 6)]
            if diamond:
                points = [QPointF(x, y), QPointF(x - 3, y + 4), QPointF(x, y + 8), QPointF(x + 3, y + 4)]
            painter.drawPolygon(QPolygonF(points))

    def _paint_legend_width(self) -> float:
        metrics = QFontMetrics(self.font())
        swatch = self._line() * 0.7
        return sum(swatch + 4 + metrics.horizontalAdvance(name) + 12 for name in STAGES)

    def _paint_legend(self, painter: QPainter, row: QRectF, colors: list[QColor]) -> None:
        metrics = QFontMetrics(self.font())
        x = row.left()
        swatch = row.height() * 0.7
        for color, name in zip(colors, STAGES, strict=True):
            painter.fillRect(QRectF(x, row.center().y() - swatch / 2, swatch, swatch), color)
            painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
            painter.drawText(QRectF(x + swatch + 4, row.top(), row.width(), row.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
            x += swatch + 4 + metrics.horizontalAdvance(name) + 12

    # --- interaction -------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        d1, d2 = abs(x - self._x(self._tau1)), abs(x - self._x(self._tau2))
        if d1 == d2:  # handles on top of each other: left of them grabs tau1, right grabs tau2
            self._active = 0 if x <= self._x(self._tau1) else 1
        else:
            self._active = 0 if d1 < d2 else 1
        self._dragging = True
        self._move_active(self._t(x))

    def mouseMoveEvent(self, event) -> None:
        if self._dragging:
            self._move_active(self._t(event.position().x()))

    def mouseReleaseEvent(self, _event) -> None:
        self._dragging = False

    def mouseDoubleClickEvent(self, _event) -> None:
        self.reset()

    def contextMenuEvent(self, event) -> None:
        menu = self.defaults_menu()
        menu.exec(event.globalPos())
        menu.deleteLater()

    def defaults_menu(self) -> QMenu:
        menu = QMenu(self)
        if self._model_default is not None:
            menu.addAction("Reset to model defaults (τ1 {:.2f} / τ2 {:.2f})".format(*self._model_default),
                           self.reset)
        if self._user_default is not None:
            menu.addAction(f"Use {self._user_words}", self.user_default_chosen.emit)
        menu.addAction(f"Reset to the method's defaults (τ1 {DEFAULT_TAU1:.2f} / τ2 {DEFAULT_TAU2:.2f})",
                       lambda: self.reset(to_paper=True))
        return menu

    def keyPressEvent(self, event) -> None:
        step = 0.05 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.01
        current = self._tau1 if self._active == 0 else self._tau2
        if event.key() == Qt.Key.Key_Left:  # left = towards t = 1
            self._move_active(min(current + step, 1.0))
        elif event.key() == Qt.Key.Key_Right:
            self._move_active(max(current - step, 0.0))
        elif event.key() in (Qt.Key.Key_Space, Qt.Key.Key_Up, Qt.Key.Key_Down):
            self._active = 1 - self._active
            self.update()
        else:
            super().keyPressEvent(event)
