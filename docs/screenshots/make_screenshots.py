"""Real screenshots of the window, taken from the X screen while the real engine runs.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots/make_screenshots.py [--model FOLDER]

Writes ``main-window-generating.png`` (a preview mid-generation), ``comparison-sweep.png`` (a stage
sweep grid) and ``comparison-split.png`` (A/B split) next to this file; with ``--dark`` the same with
a dark palette, as ``*-dark.png``. The model is ``--model``, else
the built-in demo model, else a tiny random-weight model (whose images are noise, but every part of
the window is real). Reference images and the instruction come from SynthSubjects.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))


def pick_model(explicit: str | None, scratch: Path) -> Path:
    from squeeze_studio.models import default_model_path

    if explicit:
        return Path(explicit)
    found = default_model_path()
    if found is not None:
        return found
    from squeeze_studio.testing.tiny import build_tiny_model

    print("no demo model found: using a tiny random-weight model", flush=True)
    return build_tiny_model(scratch / "tiny")


def make_references(scratch: Path) -> tuple[list[str], str]:
    from PIL import Image

    from squeeze_studio.synth import make_example

    example = make_example(7, "train", 3, size=256, max_refs=3)
    paths = []
    for index, array in enumerate(example.references):
        path = scratch / f"toy-{index + 1}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths, example.instruction


def dark_palette():
    """Roughly what a desktop in dark mode hands Qt; the window must read well with it unchanged."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    role = QPalette.ColorRole
    for name, colour in ((role.Window, "#2b2b2b"), (role.WindowText, "#e6e6e6"), (role.Base, "#1e1e1e"),
                         (role.AlternateBase, "#262626"), (role.Text, "#e6e6e6"), (role.Button, "#353535"),
                         (role.ButtonText, "#e6e6e6"), (role.Highlight, "#3d8ee8"),
                         (role.HighlightedText, "#ffffff"), (role.ToolTipBase, "#353535"),
                         (role.ToolTipText, "#e6e6e6"), (role.PlaceholderText, "#8a8a8a"), (role.Mid, "#555555"),
                         (role.Dark, "#1a1a1a"), (role.Light, "#505050")):
        palette.setColor(name, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor("#7a7a7a"))
    palette.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor("#7a7a7a"))
    palette.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor("#7a7a7a"))
    return palette


def wait(condition, timeout_s: float = 900) -> None:
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        QApplication.processEvents()
        time.sleep(0.005)


def grab(window, name: str, settle: bool = True) -> None:
    """What the X server shows for the window (not a widget re-render), saved as PNG."""
    from PySide6.QtWidgets import QApplication

    if settle:
        for _ in range(20):  # let pending paints reach the screen
            QApplication.processEvents()
            time.sleep(0.01)
    from PySide6.QtCore import QEvent

    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest.value)  # labels just given new text
    window.repaint()  # paint and flush now, so the screen holds this very state
    pixmap = window.screen().grabWindow(window.winId())
    pixmap.save(str(HERE / name), "PNG")
    print("wrote", HERE / name, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--size", type=int, default=0, help="output size (0 = the model's native size)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--dark", action="store_true",
                        help="a dark system palette (as a desktop in dark mode gives); writes *-dark.png")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="squeeze-shots-"))
    os.environ["SQUEEZE_STUDIO_HOME"] = str(scratch / "home")
    model = pick_model(args.model, scratch)
    references, instruction = make_references(scratch)

    from PySide6.QtWidgets import QApplication

    from squeeze_studio.app.main import configure_application
    from squeeze_studio.app.model.comparison import SPLIT
    from squeeze_studio.app.ui.main_window import MainWindow

    app = QApplication(sys.argv)
    configure_application(app)
    suffix = ""
    if args.dark:
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
        suffix = "-dark"
    window = MainWindow()
    window.resize(1500, 920)
    window.move(0, 0)  # the first size was centred for a smaller window: grown in place, it ran off the screen
    window.show()
    studio, ws = window.studio, window.workspace
    studio.subjects.rename(0, "Striped toy")
    ws.editor.setPlainText(instruction)
    studio.controls.set("model", str(model))
    studio.models.preload_model()
    wait(lambda: studio.models.loaded is not None)
    studio.subjects.add_images(references[:studio.models.reference_cap])  # the demo model takes two
    studio.controls.set("num_inference_steps", args.steps)
    studio.controls.set("width", args.size)
    studio.controls.set("height", args.size)
    studio.controls.set_seed_locked(True)

    # A few results first, so the history strip has something in it.
    for seed in (11, 12, 13):
        studio.controls.set("seed", seed)
        assert studio.generate(), window.last_message
        wait(lambda: not studio.busy)

    # Mid-generation: grabbed from inside the preview handler, so the shot shows exactly that step.
    grabbed = []

    def grab_mid_run(_preview) -> None:
        state = studio.generation
        if not grabbed and state.image_index == 0 and state.step >= args.steps // 2:
            grabbed.append(True)
            grab(window, f"main-window-generating{suffix}.png", settle=False)

    studio.generation.preview_changed.connect(grab_mid_run)
    studio.controls.set("seed", 14)
    studio.controls.set("batch_count", 2)
    assert studio.generate()
    wait(lambda: not studio.busy)
    studio.generation.preview_changed.disconnect(grab_mid_run)
    studio.controls.set("batch_count", 1)

    assert studio.sweep(vary_seed=False)
    wait(lambda: not studio.busy)
    grab(window, f"comparison-sweep{suffix}.png")

    records = studio.history.records
    studio.outputs.compare_records([records[1], records[0]], SPLIT)
    wait(lambda: not ws.comparison_view.split_view.image_b.isNull())
    ws.comparison_view.split_slider.setValue(420)
    grab(window, f"comparison-split{suffix}.png")
    window.close()


if __name__ == "__main__":
    main()
