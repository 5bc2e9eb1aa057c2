"""A child process for the fault tests: the real app start (``AppStart``, offscreen, the demo model), driven by a
script instead of a person. It prints one JSON object per line on stdout:

- ``{"event": "restored", ...}`` once the window is built: the references, instruction and controls it restored;
- ``{"event": "work-saved"}`` after it set up the work (first run only) and the autosave wrote it;
- ``{"event": "result", "path": ...}`` for every result saved and added to the history (``generate`` mode);
- ``{"event": "closing", "load_started": ...}`` just before it closes the window while the model loads
  (``quit-loading`` mode): it waits (up to a minute) until the worker thread has begun the start-up load, and says
  whether it had, so a quit that found no load running cannot pass for one that did not wait;
- ``{"event": "loaded"}`` from the worker thread the moment a model load finishes (``quit-loading`` mode), so the
  test can tell whether the quit waited for it;
- ``queue`` mode: a first start runs one job and queues ``QUEUED_JOBS`` - 1 more, then says
  ``{"event": "queued", "seeds": [...]}`` (the queue file is written by then) and ``result`` with ``seed`` per
  result; a restart says ``{"event": "queue", "seeds": [...], "paused": ...}`` (what came back), resumes, and says
  ``{"event": "drained"}`` once every job has run, then quits.

    python tests/app/app_driver.py generate REF...        # generate forever, until killed
    python tests/app/app_driver.py quit-loading REF...    # close the window while the model loads
    python tests/app/app_driver.py queue REF...           # queue jobs (first start) or drain the queue (restart)

``$SQUEEZE_STUDIO_HOME`` names the data folder (the results go in it too).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# What the first child sets up; later children must restore exactly this.
WORK = {"instruction": "the toy on a beach at sunset", "num_inference_steps": 6, "tau1": 0.9, "tau2": 0.6,
        "guidance_scale": 3.0}
QUEUED_JOBS = 4


def say(**event) -> None:
    print(json.dumps(event), flush=True)


def main() -> int:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from squeeze_studio.app import worker as worker_module
    from squeeze_studio.app.main import AppStart, configure_application

    mode, references = sys.argv[1], sys.argv[2:]
    load_started = threading.Event()
    probe_devices = worker_module.devices_present

    def devices_present(factory):  # the worker's first step of a load (it imports torch): the load has begun
        load_started.set()
        return probe_devices(factory)

    worker_module.devices_present = devices_present
    app = QApplication([sys.argv[0]])
    configure_application(app)
    start = AppStart(app, [])
    window = start.window

    def built() -> None:
        studio = window.studio
        if studio is None:
            QTimer.singleShot(10, built)
            return
        controls = studio.controls
        say(event="restored", references=studio.subjects.references(),
            **{name: controls.get(name) for name in WORK})
        if mode == "quit-loading":
            worker = studio.client.worker  # said in the worker thread itself: the main thread may be busy closing
            worker.model_ready.connect(lambda *_: say(event="loaded"), Qt.ConnectionType.DirectConnection)
            give_up = time.monotonic() + 60

            def close_once_loading() -> None:
                if not load_started.is_set() and time.monotonic() < give_up:
                    QTimer.singleShot(1, close_once_loading)
                    return
                say(event="closing", load_started=load_started.is_set())
                window.close()

            QTimer.singleShot(0, close_once_loading)
            return
        if window.fresh_start:  # the first start loaded a sample subject: the work goes in a subject of its own
            studio.subjects.add_subject("Kill test", references)
            for name, value in WORK.items():
                controls.set(name, value)
            studio.autosaver.save_now()
            say(event="work-saved")
        studio.history.added.connect(lambda record: say(event="result", path=record.path, seed=record.request.seed))
        if mode == "queue":
            drive_queue(window)
            return
        studio.job_finished.connect(lambda _outcome: QTimer.singleShot(0, studio.generate))
        studio.generate()

    window.first_painted.connect(lambda: QTimer.singleShot(0, built))
    return start.run()


def drive_queue(window) -> None:
    from PySide6.QtCore import QTimer

    from squeeze_studio.app.persistence.queue_file import flush

    studio = window.studio
    if window.fresh_start:
        studio.controls.set("num_inference_steps", 2)
        for _ in range(QUEUED_JOBS):
            studio.generate()  # the first runs, the others queue
        flush()  # on disk: from here on a kill -9 must lose none of them
        say(event="queued", seeds=[job.request.seed for job in studio.queue.jobs])
        return
    say(event="queue", seeds=[job.request.seed for job in studio.queue.jobs], paused=studio.queue.paused)

    def drained(_outcome) -> None:
        if not studio.queue.jobs and not studio.busy:
            say(event="drained")
            QTimer.singleShot(0, window.close)

    studio.job_finished.connect(drained)
    studio.set_queue_paused(False)


if __name__ == "__main__":
    sys.exit(main())
