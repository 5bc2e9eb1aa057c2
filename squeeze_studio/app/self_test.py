"""``squeeze-studio --self-test``: is this install able to generate? One line, exit 0 (1 when it is not).

It runs the real window offscreen (no display needed) in a throw-away data folder, loads the built-in demo model
in the worker thread exactly as a start does, puts the first sample subject and its first instruction in, runs
one generation and checks the result PNG: the model's size, not one flat colour (a NaN anywhere in the
pipeline decodes to a constant image), its recipe readable. The packaged app runs the same command.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

TIMEOUT_S = 600


def run_self_test(configure: Callable | None = None, timeout_s: float = TIMEOUT_S) -> int:
    """``configure(app)`` names and icons the QApplication; ``main`` passes its own, so this module never
    imports ``main`` (which imports this one)."""
    start = time.perf_counter()
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    with tempfile.TemporaryDirectory(prefix="squeeze-self-test-") as home:
        os.environ["SQUEEZE_STUDIO_HOME"] = home  # nothing lands in the user's folders
        try:
            line, ok = _generate_and_check(configure, timeout_s, start)
        except Exception as error:  # noqa: BLE001 - a self-test reports, it does not crash
            line, ok = f"self-test failed: {type(error).__name__}: {error}", False
    print(line, flush=True)
    return 0 if ok else 1


def _generate_and_check(configure: Callable | None, timeout_s: float, start: float) -> tuple[str, bool]:
    import numpy as np
    from PIL import Image
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ..recipe import read_recipe
    from .model.samples import load_samples
    from .ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "squeeze-studio"])
    if configure is not None:
        configure(app)
    samples = load_samples()
    if not samples:
        return "self-test failed: no sample subjects (resources/samples is missing)", False
    window = MainWindow()
    try:
        studio = window.studio
        window.load_sample(0, 0)
        studio.controls.set_seed_locked(True)
        studio.controls.set("seed", 1)
        outcome: list[str] = []
        failures: list[str] = []
        loop = QEventLoop()
        studio.job_finished.connect(lambda result: (outcome.append(result), loop.quit()))
        studio.client.worker.failed.connect(failures.append)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        if not studio.generate():
            return f"self-test failed: could not start a generation: {window.last_message}", False
        loop.exec()
        if outcome != ["done"] or not studio.outputs.results:
            why = failures[-1] if failures else ("timed out" if not outcome else outcome[0])
            return f"self-test failed: generation {why}", False
        result = studio.outputs.results[-1]
        image = Image.open(result.path)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        expected = (result.request.width, result.request.height)
        spread = float(pixels.std())
        problems = []
        if image.size != expected:
            problems.append(f"size {image.size} instead of {expected}")
        if not np.isfinite(pixels).all() or spread < 2.0:
            problems.append(f"a flat image (pixel std {spread:.2f})")
        if read_recipe(result.path).instruction != result.request.instruction:
            problems.append("its recipe does not read back")
        if problems:
            return f"self-test failed: {'; '.join(problems)}", False
        import torch

        from .. import __version__

        models = studio.models
        return (f"self-test passed: {models.model_name} on {models.device_name}, {image.width}x{image.height} in "
                f"{result.seconds:.1f} s ({time.perf_counter() - start:.1f} s with start-up), pixel std {spread:.1f}; "
                f"Squeeze Studio {__version__}, torch {torch.__version__}"), True
    finally:
        window.close()
