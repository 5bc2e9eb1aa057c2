"""Progress on the desktop's launcher or taskbar entry, where the desktop offers it.

Qt 6 has no API for this: ``QWinTaskbarProgress`` left with QtWinExtras in Qt 6, and nothing replaced it. On Linux
the de facto one is the Unity LauncherEntry D-Bus signal (read by KDE Plasma's task manager, Ubuntu's dock and
Dash to Dock / Dash to Panel), sent here through QtDBus on the session bus. Without a session bus (or on Windows
and macOS) nothing is sent; the window title carries the progress everywhere.
"""
from __future__ import annotations

import sys

from .desktop import APP_ID

PATH = "/org/squeeze_studio/launcher"
INTERFACE = "com.canonical.Unity.LauncherEntry"


class LauncherProgress:
    def __init__(self, app_id: str = APP_ID):
        self._uri = f"application://{app_id}.desktop"
        self._bus = None
        self._last: float | None = None
        if sys.platform.startswith("linux"):
            from PySide6.QtDBus import QDBusConnection

            bus = QDBusConnection.sessionBus()
            self._bus = bus if bus.isConnected() else None

    @property
    def available(self) -> bool:
        return self._bus is not None

    def show(self, fraction: float | None) -> None:
        """``fraction`` of the work done (0..1), or None to hide the bar; sent only when it moved by a per cent."""
        value = None if fraction is None else round(min(max(fraction, 0.0), 1.0), 2)
        if self._bus is None or value == self._last:
            return
        self._last = value
        from PySide6.QtDBus import QDBusMessage

        message = QDBusMessage.createSignal(PATH, INTERFACE, "Update")
        message.setArguments([self._uri, {"progress": value or 0.0, "progress-visible": value is not None}])
        self._bus.send(message)
