"""Benchmarks of the desktop window, reported as ratios measured in one run.

    python benchmarks/bench_app.py --out benchmarks/results

1. Cold start to a visible window (first paint of the main window), as a ratio against a bare
   PySide6 ``QMainWindow`` started the same way. Fresh subprocesses, interleaved, several repeats,
   median. Target <= 1.5.
2. The longest GUI-thread stall while a generation streams a preview after every step, measured with
   a 5 ms heartbeat ``QTimer`` (the largest gap between ticks beyond the interval). Target <= 50 ms.
3. Preview cost: generation time with previews every step / with previews off (the engine's
   ``previews`` switch plus the worker's). Target <= 1.05.
4. The longest GUI stall while 100 jobs are queued during a generation, and while they run
   (``bench_queue.py``). Target <= 50 ms.

The generation benchmarks use the real engine on the tiny random-weight model (``build_tiny_model``)
at 512 x 512, so the numbers measure the app's own overhead, not a real model's speed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

# Child programs for the cold start. They print VISIBLE at the main window's first paint and READY at
# the first paint once the window is complete (for the app: the workspace built after the shell).
_REPORT_PAINTS = """
from PySide6.QtCore import QEvent, QObject, QTimer
class Paints(QObject):
    def __init__(self, built):
        super().__init__()
        self.built, self.seen_first = built, False
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint:
            if not self.seen_first:
                self.seen_first = True
                QTimer.singleShot(0, lambda: print("VISIBLE", flush=True))
            if self.built():
                watched.removeEventFilter(self)
                QTimer.singleShot(0, lambda: (print("READY", flush=True), os._exit(0)))
        return False
paints = Paints({built})
window.installEventFilter(paints)
"""

BARE_CHILD = """
import os, sys
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv)
window = QMainWindow()
window.resize(1280, 820)
{report}
window.show()
app.exec()
"""

# Exactly what squeeze_studio.app.main.main() does (AppStart).
APP_CHILD = """
import os, sys
from PySide6.QtWidgets import QApplication
from squeeze_studio.app.main import AppStart, configure_application
app = QApplication(sys.argv)
configure_application(app)
start = AppStart(app, [])
window = start.window
{report}
start.run()
"""


def child_env(home: Path) -> dict:
    return {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "SQUEEZE_STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def time_to_visible(program: str, home: Path) -> tuple[float, float]:
    """Seconds from process start to the first paint, and to the first paint of the complete window."""
    built = "lambda: getattr(window, 'workspace', True) is not None"
    code = textwrap.dedent(program).format(report=_REPORT_PAINTS.format(built=built))
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=child_env(home),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    marks = {}
    for line in process.stdout:
        marks[line.strip()] = time.perf_counter() - start
        if "READY" in marks:
            break
    process.wait(timeout=120)
    if "READY" not in marks:
        raise RuntimeError("child exited before its window was painted")
    return marks["VISIBLE"], marks["READY"]


def populate_history(home: Path, count: int) -> None:
    """``count`` result PNGs with recipes and thumbnails, as after weeks of use."""
    from PIL import Image

    from squeeze_studio.app.persistence.history_index import HistoryIndex
    from squeeze_studio.recipe import save_png
    from squeeze_studio.request import GenerationRequest

    home.mkdir(parents=True, exist_ok=True)
    index = HistoryIndex(home / "history.sqlite")
    thumbnail = home / "thumb.png"
    Image.new("RGB", (128, 128), "gray").save(thumbnail)
    for i in range(count):
        request = GenerationRequest(instruction=f"result {i}", seed=i)
        path = save_png(Image.new("RGB", (64, 64), (i % 256, 90, 140)), home / "results" / f"{i}.png", request)
        index.add(str(path), request, 1.0, thumbnail=thumbnail.read_bytes())
    index.close()


def bench_cold_start(repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh, used = Path(tmp) / "fresh", Path(tmp) / "used"
        populate_history(used, 200)
        for label, home in (("empty data folder", fresh), ("200 results in history", used)):
            bare, app = [], []
            time_to_visible(BARE_CHILD, home)  # warm the OS file cache for both before timing
            time_to_visible(APP_CHILD, home)
            for _ in range(repeats):  # interleaved, so load changes on the machine hit both alike
                bare.append(time_to_visible(BARE_CHILD, home)[0])
                app.append(time_to_visible(APP_CHILD, home))
            bare_median = statistics.median(bare)
            for index, what in ((0, "first paint of the window"), (1, "complete window painted")):
                app_median = statistics.median(sample[index] for sample in app)
                ratio = app_median / bare_median
                rows.append({"name": f"cold start: {what} ({label})", "app_s": app_median,
                             "bare_qmainwindow_s": bare_median, "ratio": ratio,
                             "target": "<= 1.5" if index == 0 else "(reported)",
                             "ok": ratio <= 1.5 if index == 0 else None,
                             "samples_app_s": [sample[index] for sample in app], "samples_bare_s": bare})
                print(f"cold start, {what} ({label}): app {app_median:.3f}s / bare {bare_median:.3f}s "
                      f"= {ratio:.2f}", flush=True)
    return rows


class Run:
    """One window with the real engine on the tiny model; runs generations and watches the GUI thread."""

    def __init__(self, model: Path, references: list[str], size: int, steps: int):
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        from squeeze_studio.app.ui.main_window import MainWindow

        self.previews = True

        def factory(model: str, addon: str = ""):
            from squeeze_studio.engine import Engine

            return Engine(model, addon or None, previews=self.previews)

        self.window = MainWindow(engine_factory=factory)
        self.window.show()
        studio = self.studio = self.window.studio
        studio.subjects.add_images(references)
        studio.controls.set("instruction", "the toy on a beach at sunset, seen from above")
        for name, value in (("model", str(model)), ("width", size), ("height", size),
                            ("num_inference_steps", steps), ("seed", 3)):
            studio.controls.set(name, value)
        studio.controls.set_seed_locked(True)
        self.heartbeat = QTimer()
        self.heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
        self.heartbeat.setInterval(5)
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []
        self.heartbeat.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.gaps.append(self.clock.nsecsElapsed() / 1e6)
        self.clock.restart()

    def _wait(self, condition, timeout_s: float = 600) -> None:
        from PySide6.QtWidgets import QApplication

        deadline = time.perf_counter() + timeout_s
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError("generation did not finish")
            QApplication.processEvents()
            time.sleep(0.001)

    def load(self, previews: bool) -> None:
        """(Re)load the engine with previews on or off, outside any timing."""
        self.previews = previews
        self.studio.client.worker.previews = previews
        self.studio.client.worker.release()
        loaded = []
        self.studio.client.worker.memory.connect(lambda _text: loaded.append(1))
        self.studio.models.preload_model()
        self._wait(lambda: loaded)

    def generate(self, watch: bool) -> tuple[float, list[float]]:
        """Seconds from Generate to the finished result, and the heartbeat gaps seen meanwhile."""
        from PySide6.QtCore import QEventLoop, QTimer

        done = []
        self.studio.job_finished.connect(done.append)
        self.gaps = []
        if watch:
            self.clock.start()
            self.heartbeat.start()
        start = time.perf_counter()
        assert self.studio.generate()
        loop = QEventLoop()  # a real event loop, as in the app (processEvents polling would hide stalls)
        self.studio.job_finished.connect(loop.quit)
        QTimer.singleShot(600_000, loop.quit)
        if not done:
            loop.exec()
        elapsed = time.perf_counter() - start
        self.heartbeat.stop()
        self.studio.job_finished.disconnect(loop.quit)
        assert done == ["done"], done
        return elapsed, self.gaps[1:]  # the first gap includes the time before the timer started

    def close(self) -> None:
        self.window.close()


def tiny_studio_setup():
    """A private data folder, a tiny random-weight model and two references in a temporary folder: (the folder,
    which removes itself when dropped; the model; the reference paths)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image

    from squeeze_studio.testing.tiny import build_tiny_model

    tmp = tempfile.TemporaryDirectory()
    os.environ["SQUEEZE_STUDIO_HOME"] = str(Path(tmp.name) / "home")
    model = build_tiny_model(Path(tmp.name) / "tiny")
    references = []
    for i, colour in enumerate(("red", "teal")):
        references.append(str(Path(tmp.name) / f"ref{i}.png"))
        Image.new("RGB", (256, 256), colour).save(references[-1])
    return tmp, model, references


def bench_generation(repeats: int, size: int, steps: int) -> list[dict]:
    from PySide6.QtWidgets import QApplication

    tmp, model, references = tiny_studio_setup()
    app = QApplication.instance() or QApplication([])
    run = Run(model, references, size, steps)
    rows = []
    try:
        run.load(previews=True)
        run.generate(watch=False)  # warm-up: first-call allocations, caches
        stalls = []
        for _ in range(repeats):
            _, gaps = run.generate(watch=True)
            stalls.append(max(gaps) - 5.0)
        worst = max(stalls)
        rows.append({"name": f"longest GUI stall during a generation ({steps} steps, {size}x{size}, "
                             "preview every step)", "value_ms": worst, "median_of_runs_ms": statistics.median(stalls),
                     "target": "<= 50 ms", "ok": worst <= 50.0, "samples_ms": stalls})
        print(f"GUI stall: worst {worst:.1f} ms, median of runs {statistics.median(stalls):.1f} ms", flush=True)

        times = {True: [], False: []}
        for _ in range(repeats):  # alternate, reloading the engine with the switch flipped
            for previews in (True, False):
                run.load(previews)
                run.generate(watch=False)
                times[previews].append(run.generate(watch=False)[0])
        on, off = statistics.median(times[True]), statistics.median(times[False])
        rows.append({"name": f"preview cost: generation with previews every step / previews off ({steps} steps, "
                             f"{size}x{size})", "previews_on_s": on, "previews_off_s": off, "ratio": on / off,
                     "target": "<= 1.05", "ok": on / off <= 1.05,
                     "samples_on_s": times[True], "samples_off_s": times[False]})
        print(f"preview cost: {on:.3f}s / {off:.3f}s = {on / off:.3f}", flush=True)
    finally:
        run.close()
        app.processEvents()
        tmp.cleanup()
    return rows


def verdict(row: dict) -> str:
    return "—" if row["ok"] is None else ("yes" if row["ok"] else "no")


# A fresh process, so torch is really imported (in the worker thread) while the heartbeat runs.
LOAD_STALL_CHILD = """
import sys
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtWidgets import QApplication
from squeeze_studio.app.main import configure_application, create_window
from squeeze_studio.app.worker import default_engine_factory
app = QApplication(sys.argv)
configure_application(app)
window = create_window(default_engine_factory)
window.show()
studio = window.studio
studio.controls.set("model", {model!r})
gaps, clock, heartbeat = [], QElapsedTimer(), QTimer()
heartbeat.setTimerType(Qt.TimerType.PreciseTimer)
heartbeat.setInterval(5)
def tick():
    gaps.append(clock.nsecsElapsed() / 1e6)
    clock.restart()
heartbeat.timeout.connect(tick)
def ready():  # connected to the studio's signals, which arrive on the GUI thread
    if studio.models.device_name:
        heartbeat.stop()
        print("GAPS", max(gaps[1:]) - 5.0, len(gaps), flush=True)
        window.close()
        app.quit()
studio.models.status_changed.connect(ready)
studio.message.connect(lambda text: (print("FAILED", text, flush=True), window.close(), app.quit()))
def start():
    clock.start()
    heartbeat.start()
    studio.models.preload_model()
QTimer.singleShot(200, start)
app.exec()
"""


def bench_load_stall(repeats: int) -> list[dict]:
    """The longest GUI stall while the worker imports torch and loads the (tiny) model: informational."""
    from squeeze_studio.testing.tiny import build_tiny_model

    stalls = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "tiny")
        for _ in range(repeats):
            code = textwrap.dedent(LOAD_STALL_CHILD).format(model=str(model))
            done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(Path(tmp) / "home"),
                                  capture_output=True, text=True, timeout=600)
            line = next((x for x in done.stdout.splitlines() if x.startswith(("GAPS", "FAILED"))), "")
            if not line.startswith("GAPS"):
                raise RuntimeError(f"load-stall child failed: {line or done.stderr[-500:]}")
            stalls.append(float(line.split()[1]))
    worst = max(stalls)
    print(f"GUI stall while the engine loads: worst {worst:.1f} ms", flush=True)
    return [{"name": "longest GUI stall while the worker imports torch and loads the model (tiny model)",
             "value_ms": worst, "median_of_runs_ms": statistics.median(stalls), "target": "(reported)",
             "ok": None, "samples_ms": stalls}]


def markdown(rows: list[dict]) -> str:
    lines = ["| benchmark | measured | compared with | ratio / value | target | ok |", "|---|---|---|---|---|---|"]
    for row in rows:
        if "app_s" in row:
            lines.append(f"| {row['name']} | {row['app_s'] * 1000:.0f} ms | bare QMainWindow "
                         f"{row['bare_qmainwindow_s'] * 1000:.0f} ms | {row['ratio']:.2f} | {row['target']} | "
                         f"{verdict(row)} |")
        elif "value_ms" in row:
            lines.append(f"| {row['name']} | worst {row['value_ms']:.1f} ms | median of runs "
                         f"{row['median_of_runs_ms']:.1f} ms | {row['value_ms']:.1f} ms | {row['target']} | "
                         f"{verdict(row)} |")
        else:
            lines.append(f"| {row['name']} | {row['previews_on_s']:.3f} s | previews off {row['previews_off_s']:.3f} s "
                         f"| {row['ratio']:.3f} | {row['target']} | {verdict(row)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-start", action="store_true", help="skip the cold-start benchmark")
    args = parser.parse_args()

    rows = [] if args.skip_start else bench_cold_start(args.repeats)
    rows += bench_load_stall(3)
    rows += bench_generation(max(args.repeats // 2, 3), args.size, args.steps)
    from bench_queue import bench_queue_stall

    rows += bench_queue_stall()
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "qt_platform": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "command": "python benchmarks/bench_app.py " + " ".join(sys.argv[1:])}
    (args.out / "bench_app.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    table = markdown(rows)
    (args.out / "bench_app.md").write_text(f"# Squeeze Studio window benchmarks\n\n{table}\n"
                                           f"Machine: {meta['cpus']} CPUs, Python {meta['python']}, "
                                           f"Qt platform {meta['qt_platform']}.\n")
    print(table)


if __name__ == "__main__":
    main()
