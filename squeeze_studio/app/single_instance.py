"""One window per user and data folder: a second ``squeeze-studio`` hands its files to the first and exits.

The first start listens on a ``QLocalServer``; a later start connects, sends its files as one JSON line, waits for
"ok" and exits 0, and the first window takes the files in as references and comes to the front. Desktop "Open
with" and double-clicks on images therefore land in the window already open. The server's name is derived from
the data folder, so a second data folder (``$SQUEEZE_STUDIO_HOME``) is a second, independent app; the socket sits
in ``$XDG_RUNTIME_DIR`` where there is one and accepts only the same user.
"""
from __future__ import annotations

import json
import logging
import os
import zlib
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

HANDOVER_TIMEOUT_MS = 2000
log = logging.getLogger(__name__)


def server_name(data_folder: Path) -> str:
    """A per-user, per-data-folder name; a full socket path under ``$XDG_RUNTIME_DIR`` on Unix when it exists."""
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    key = user + "\0" + str(data_folder.resolve())
    digest = f"{zlib.crc32(key.encode()):08x}"  # zlib: much cheaper to import than hashlib
    name = f"squeeze-studio-{digest}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if os.name == "posix" and runtime and Path(runtime).is_dir():
        return str(Path(runtime) / name)
    return name


class SingleInstance(QObject):
    files_received = Signal(object)  # list of absolute paths (or empty: "come to the front"); not Signal(list),
    # which would turn bytes that are not UTF-8 into nothing

    def __init__(self, name: str, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.server: QLocalServer | None = None
        self._buffers: dict[QLocalSocket, bytes] = {}

    # --- a later start ------------------------------------------------------------------------
    def hand_over(self, files: list[str], timeout_ms: int = HANDOVER_TIMEOUT_MS) -> bool:
        """Send ``files`` to a running first instance; True when it took them (then this process should exit)."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(min(timeout_ms, 500)):
            return False
        payload = json.dumps({"files": [str(Path(f).absolute()) for f in files]}).encode("utf-8") + b"\n"
        socket.write(payload)
        while socket.bytesToWrite() > 0:
            if not socket.waitForBytesWritten(timeout_ms):
                return False
        reply = b""
        while b"\n" not in reply and socket.waitForReadyRead(timeout_ms):
            reply += bytes(socket.readAll().data())
        socket.disconnectFromServer()
        return reply.strip() == b"ok"

    # --- the first start ----------------------------------------------------------------------
    def listen(self) -> bool:
        """Start the server; a socket left behind by a crashed instance is removed first. False when another
        instance turned out to be listening (it started at the same moment) or the server cannot start."""
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            if self.hand_over_probe():
                return False  # another instance is alive after all (it started at the same moment)
            QLocalServer.removeServer(self.name)
            if not server.listen(self.name):
                log.warning("single instance: cannot listen on %s: %s", self.name, server.errorString())
                return False
        server.newConnection.connect(self._accept)
        self.server = server
        return True

    def hand_over_probe(self) -> bool:
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        alive = socket.waitForConnected(200)
        socket.abort()
        return alive

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    def _accept(self) -> None:
        while self.server is not None and self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))

    def _read(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if b"\n" not in data:
            self._buffers[socket] = data
            return
        line = data.split(b"\n", 1)[0]
        self._buffers[socket] = b""
        try:
            files = [str(f) for f in json.loads(line.decode("utf-8")).get("files", [])]
        except (ValueError, AttributeError, UnicodeDecodeError):
            socket.write(b"bad\n")
            socket.disconnectFromServer()
            return
        socket.write(b"ok\n")
        socket.flush()
        socket.disconnectFromServer()
        self.files_received.emit(files)

    def _forget(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()


def default_name() -> str:
    from .persistence.paths import data_home

    return server_name(data_home())

