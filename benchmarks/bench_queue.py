"""The window with 100 queued jobs: the longest GUI-thread stall (a 5 ms heartbeat ``QTimer``, the largest gap
between ticks beyond the interval) while 100 jobs are queued, one every 10 ms, during a generation, and while the
queue then runs them all; beside it, in the same run, the same 100 jobs started one by one as each ends (the
queue never longer than the running job). Each queue change rewrites ``queue.json`` (on the writer thread) and the
queue panel. Target <= 50 ms. The real engine on the tiny random-weight model: the app's own overhead.

    python benchmarks/bench_queue.py [--jobs 100] [--size 64] [--steps 4]   # also part of bench_app.py
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def bench_queue_stall(jobs: int = 100, size: int = 64, steps: int = 4) -> list[dict]:
    from bench_app import Run, tiny_studio_setup
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    tmp, model, references = tiny_studio_setup()
    app = QApplication.instance() or QApplication([])
    run = Run(model, references, size, steps)
    studio = run.studio
    try:
        run.load(previews=True)
        run.generate(watch=False)  # warm-up
        one_by_one = QEventLoop()
        started = [0]

        def next_one(_outcome=None) -> None:
            if started[0] == jobs:
                one_by_one.quit()
                return
            started[0] += 1
            QTimer.singleShot(0, studio.generate)

        studio.job_finished.connect(next_one)
        run.gaps = []
        run.clock.start()
        run.heartbeat.start()
        start = time.perf_counter()
        next_one()
        one_by_one.exec()
        alone_s = time.perf_counter() - start
        studio.job_finished.disconnect(next_one)
        alone_gaps = run.gaps[1:]
        loop = QEventLoop()
        queued: list[float] = []

        def queue_one() -> None:  # one Ctrl+Enter every 10 ms (a chain of 0 ms events would starve the heartbeat)
            if not queued:
                studio.controls.set("num_inference_steps", 200)  # a long first job: the others queue behind it
            start = time.perf_counter()
            assert studio.generate()
            queued.append((time.perf_counter() - start) * 1000)
            studio.controls.set("num_inference_steps", steps)
            if len(queued) == jobs + 1:
                studio.cancel()  # the long first job: the queue starts draining
                loop.quit()
            else:
                QTimer.singleShot(10, queue_one)

        run.gaps = []
        run.clock.restart()
        QTimer.singleShot(0, queue_one)
        loop.exec()
        queue_gaps = run.gaps[1:]
        run.gaps = []
        drained = QEventLoop()
        studio.job_finished.connect(lambda _o: drained.quit() if not studio.queue.jobs else None)
        start = time.perf_counter()
        drained.exec()
        drain_s = time.perf_counter() - start
        run.heartbeat.stop()
        drain_gaps = run.gaps[1:]
        assert not studio.queue.jobs and len(studio.history.records) >= jobs, len(studio.history.records)
    finally:
        run.close()
        app.processEvents()
        tmp.cleanup()
    rows = []
    for name, gaps in ((f"running {jobs} jobs one by one, none queued ({steps} steps, {size}x{size}; {alone_s:.0f} s)",
                        alone_gaps),
                       (f"queueing {jobs} jobs, one every 10 ms, during a generation", queue_gaps),
                       (f"running {jobs} queued jobs ({steps} steps, {size}x{size}; {drain_s:.0f} s)", drain_gaps)):
        worst = max(gaps) - 5.0
        late = sum(gap - 5.0 > 50.0 for gap in gaps)
        rows.append({"name": f"longest GUI stall {name}", "value_ms": worst,
                     "median_of_runs_ms": worst, "target": "<= 50 ms",  # one run
                     "ok": worst <= 50.0, "samples_ms": [], "ticks": len(gaps), "ticks_over_50ms": late})
        print(f"GUI stall {name}: worst {worst:.1f} ms; {late} of {len(gaps)} ticks late by over 50 ms", flush=True)
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"load average at the end: {load} on {os.cpu_count()} CPUs", flush=True)
    print(f"one Ctrl+Enter into a queue of up to {jobs}: median {sorted(queued)[len(queued) // 2]:.1f} ms, "
          f"worst {max(queued):.1f} ms", flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    from bench_app import markdown

    print(markdown(bench_queue_stall(args.jobs, args.size, args.steps)))
