"""Soak test of the window (issue 15): many generations in one window process, measured. Not part of the test suite.

    python benchmarks/soak.py              # 200 generations
    python benchmarks/soak.py --count 50   # a shorter run

The real app window (offscreen unless ``QT_QPA_PLATFORM`` says otherwise) with its real worker thread and the
built-in demo model; a preview after every step, the history strip open, and every 20 generations the compare
view refreshed with the latest four results (the window switches to it, then back to the canvas). It prints:

- memory growth: resident memory after the last generation minus after the 10th (target <= 50 MB);
- results in the history: rows in the history index and entries in the strip / generations asked for (200/200);
- the longest GUI stall: the largest gap between ticks of a 5 ms heartbeat ``QTimer`` beyond its interval, over
  the whole run, the first 10 generations excluded (target <= 50 ms; the way ``bench_app.py`` measures it);
- wall time.

The data folder is a fresh temp folder (``$SQUEEZE_STUDIO_HOME``), so your own history is never touched.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
WARM_UP = 10


def rss_mb() -> float:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="generations (default 200)")
    parser.add_argument("--steps", type=int, default=20, help="steps per generation (a preview after each)")
    parser.add_argument("--compare-every", type=int, default=20)
    args = parser.parse_args()

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = tempfile.TemporaryDirectory(prefix="squeeze-soak-")
    os.environ["SQUEEZE_STUDIO_HOME"] = str(Path(tmp.name) / "home")

    from PIL import Image
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from squeeze_studio.app.main import configure_application
    from squeeze_studio.app.persistence.history_index import HistoryIndex
    from squeeze_studio.app.ui.main_window import MainWindow
    from squeeze_studio.app.worker import default_engine_factory

    references = []
    for index, colour in enumerate(("red", "teal")):
        references.append(str(Path(tmp.name) / f"ref{index}.png"))
        Image.new("RGB", (96, 96), colour).save(references[-1])

    app = QApplication.instance() or QApplication([])
    configure_application(app)
    window = MainWindow(engine_factory=default_engine_factory)  # the demo model ("" = built in)
    window.show()
    studio, workspace = window.studio, window.workspace
    workspace.history_dock.show()
    studio.subjects.add_images(references)
    studio.controls.set("instruction", "the toy on a beach at sunset, seen from above")
    studio.controls.set("num_inference_steps", args.steps)

    gaps: list[float] = []
    clock, heartbeat = QElapsedTimer(), QTimer()
    heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
    heartbeat.setInterval(5)

    def tick() -> None:
        gaps.append(clock.nsecsElapsed() / 1e6 - 5.0)
        clock.restart()

    heartbeat.timeout.connect(tick)
    outcomes: list[str] = []
    studio.job_finished.connect(outcomes.append)
    previews = 0
    rss_after_warm_up = None
    longest = 0.0
    start = time.perf_counter()
    for number in range(1, args.count + 1):
        loop = QEventLoop()  # a real event loop, as in the app (processEvents polling would hide stalls)
        studio.job_finished.connect(loop.quit)
        assert studio.generate(), window.last_message
        if not clock.isValid():
            clock.start()
            heartbeat.start()
        loop.exec()
        studio.job_finished.disconnect(loop.quit)
        previews += studio.generation.previews_received
        if number % args.compare_every == 0 and len(studio.history.records) >= 2:
            studio.outputs.compare_records(studio.history.records[:4])
            app.processEvents()
            workspace.tabs.setCurrentWidget(workspace.canvas)
        if number == WARM_UP:
            rss_after_warm_up = rss_mb()
            gaps.clear()  # the first generations load torch and the model
        if number > WARM_UP and gaps:
            longest = max(longest, max(gaps[1:] or [0.0]))
        if number % 50 == 0:
            print(f"  {number}/{args.count} generations, {time.perf_counter() - start:.0f} s", flush=True)
    heartbeat.stop()
    wall = time.perf_counter() - start
    longest = max(longest, max(gaps[1:] or [0.0]))
    growth = rss_mb() - (rss_after_warm_up or rss_mb())
    strip = workspace.history_strip.list.count()
    index = HistoryIndex()
    rows = len(index.recent(100_000))
    index.close()
    window.close()
    app.processEvents()
    tmp.cleanup()

    print(f"soak: {args.count} generations of {args.steps} steps, demo model, previews every step "
          f"({previews} received), history strip open, compare view refreshed every {args.compare_every}")
    print(f"memory growth after the first {WARM_UP}: {growth:+.1f} MB (target <= 50 MB)")
    print(f"results in the history: {rows}/{args.count} in the index, {strip}/{args.count} in the strip")
    print(f"jobs: {outcomes.count('done')} done, {len(outcomes) - outcomes.count('done')} not")
    print(f"longest GUI stall: {longest:.1f} ms (target <= 50 ms)")
    print(f"wall time: {wall:.1f} s ({wall / args.count:.2f} s per generation)")
    ok = growth <= 50 and rows == args.count and strip == args.count and longest <= 50
    print("verdict:", "all targets met" if ok else "a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
