"""A loopback stand-in for the Hugging Face Hub: one local folder served as one model repo, so download tests
(progress, resume, cancel) never reach the internet.

    with FakeHub("Qwen/Qwen-Image-Edit-2509", folder) as hub:
        ...  # point HF_ENDPOINT (and huggingface_hub.constants.ENDPOINT) at hub.url

It answers what ``snapshot_download`` asks: the repo info (``GET /api/models/{repo}/revision/{rev}``), the file
listing (``/api/models/{repo}/tree/{rev}``) and each file (``HEAD``/``GET /{repo}/resolve/{rev}/{path}``, with
``Range`` for resumed transfers). Unknown repos get the Hub's 401 ``RepoNotFound``, unknown revisions 404
``RevisionNotFound``. Ways to disturb a transfer:

- ``cut``: ``{path: n}`` sends only the first ``n`` bytes of that file's first full ``GET``, then drops the
  connection (a network outage mid-file);
- ``hold``: paths whose ``GET`` sends the first chunk, sets ``started`` and waits for ``release`` before the rest
  (a slow transfer a test can cancel or interrupt at a known point).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

CHUNK = 64 * 1024
COMMIT = "0" * 39 + "1"


class FakeHub:
    def __init__(self, repo_id: str, folder: str | Path, commit: str = COMMIT,
                 cut: dict[str, int] | None = None, hold: tuple[str, ...] = ()):
        self.repo_id, self.folder, self.commit = repo_id, Path(folder), commit
        self.files = sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())
        self.cut = dict(cut or {})
        self.hold = set(hold)
        self.started, self.release = threading.Event(), threading.Event()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def gets(self, path: str) -> list[str]:
        """The ``GET`` requests made for one repo file (with their ``Range``, if any)."""
        return [r for r in self.requests if r.startswith("GET ") and r.split(" ")[1].endswith(f"/{path}")]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _reply(self, status: int, headers: dict[str, str], data: bytes = b"", body: bool = True) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _serve(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                rng = self.headers.get("Range")
                hub.requests.append(f"{self.command} {path}" + (f" Range={rng}" if rng else ""))
                api = f"/api/models/{hub.repo_id}/"
                if path.startswith("/api/models/") and not path.startswith(api):
                    return self._reply(401, {"X-Error-Code": "RepoNotFound"}, body=body)
                if path.startswith(api):
                    kind, _, revision = path[len(api):].partition("/")
                    if revision.split("/")[0] not in ("main", hub.commit):
                        return self._reply(404, {"X-Error-Code": "RevisionNotFound"}, body=body)
                    if kind == "revision":
                        listing = {"id": hub.repo_id, "modelId": hub.repo_id, "sha": hub.commit,
                                   "siblings": [{"rfilename": f} for f in hub.files]}
                    else:
                        listing = [{"type": "file", "path": f, "size": (hub.folder / f).stat().st_size,
                                    "oid": hashlib.sha1((hub.folder / f).read_bytes()).hexdigest()}
                                   for f in hub.files]
                    return self._reply(200, {"Content-Type": "application/json"}, json.dumps(listing).encode(), body)
                prefix = f"/{hub.repo_id}/resolve/"
                name = path[len(prefix):].split("/", 1)[-1] if path.startswith(prefix) else ""
                if name not in hub.files:
                    return self._reply(404, {"X-Error-Code": "EntryNotFound"}, body=body)
                self._send_file(name, rng, body)

            def _send_file(self, name: str, rng: str | None, body: bool) -> None:
                data = (hub.folder / name).read_bytes()
                start = int(rng[6:].split("-")[0] or 0) if rng and rng.startswith("bytes=") else 0
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", hub.commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                view = memoryview(data)[start:]
                stop = hub.cut.pop(name, None) if not start else None
                try:
                    for i in range(0, len(view) if stop is None else stop, CHUNK):
                        self.wfile.write(view[i:min(i + CHUNK, len(view) if stop is None else stop)])
                        self.wfile.flush()
                        if name in hub.hold and i == 0:
                            hub.started.set()
                            hub.release.wait(30)
                    if stop is not None:
                        self.close_connection = True
                        self.connection.shutdown(2)  # drop it mid-file: the client sees a broken transfer
                except OSError:  # the client cancelled or was killed
                    pass

        return Handler

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def add_to_cache(cache: Path, repo_id: str, folder: Path, commit: str = COMMIT, ref: str | None = "main") -> Path:
    """Put ``folder`` into a Hugging Face cache the way huggingface_hub lays it out (blobs, snapshot links, a
    ref); returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / file.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    if ref:
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return snapshot


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
