"""The window fits the screen it opens on: its first size comes from the available area, never a fixed 1280 x 820.

A fixed first size was taller than a 1366 x 768 laptop's screen (and than 2560 x 1440 at scale 2, 1280 x 720 in
logical pixels): the status bar and the history were off-screen and the controls dock clipped. Now the first size is
the preferred one shrunk to the available area (less room for the title bar), centred; a saved geometry from a
larger screen is shrunk the same way; and on a short screen the controls' advanced section starts collapsed.
"""
from __future__ import annotations

from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QGuiApplication

PREFERRED = QSize(1280, 820)
FRAME = QSize(16, 48)  # room for the window frame and title bar the window manager adds around the client area
SHORT_SCREEN = 900     # available height (logical pixels) below which advanced controls start collapsed


def available_area(window=None) -> QRect:
    """The available area of the screen ``window`` is on (else the primary screen), in logical pixels."""
    screen = window.screen() if window is not None else None
    screen = screen or QGuiApplication.primaryScreen()
    return screen.availableGeometry() if screen is not None else QRect(0, 0, PREFERRED.width(), PREFERRED.height())


def first_geometry(available: QRect, preferred: QSize = PREFERRED) -> QRect:
    """The client-area rectangle of a first window on ``available``: ``preferred`` or smaller, centred."""
    width = max(min(preferred.width(), available.width() - FRAME.width()), 1)
    height = max(min(preferred.height(), available.height() - FRAME.height()), 1)
    left = available.left() + (available.width() - width) // 2
    top = available.top() + max((available.height() - height - FRAME.height()) // 2, 0) + FRAME.height() - 8
    return QRect(left, top, width, height)


def is_short(available: QRect) -> bool:
    return available.height() < SHORT_SCREEN


def fit_window(window, restored: bool) -> None:
    """Size ``window`` for its screen: the first size when nothing was ``restored``, else the restored geometry
    shrunk and moved onto the available area when it no longer fits there."""
    available = available_area(window)
    if not restored:
        window.setGeometry(first_geometry(available))
        return
    geometry = window.geometry()
    room = first_geometry(available, QSize(available.width(), available.height()))
    if geometry.width() <= room.width() and geometry.height() <= room.height() and available.contains(geometry):
        return
    size = QSize(min(geometry.width(), room.width()), min(geometry.height(), room.height()))
    window.setGeometry(first_geometry(available, size))
