"""Screenshots of the studio features for real work, taken from the X screen with the built-in demo model:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_studio_screenshots.py

Writes next to this file:
- ``studio-queue.png``: three jobs queued (Ctrl+Enter while one runs), the queue panel and the title's progress;
- ``studio-two-subjects.png``: two subjects in one image, the chips above the instruction, the result;
- ``studio-picks.png``: a stage sweep in Compare with its pick numbers, and the stage bar's "your default" after
  eight picks (pressing 2, twice: the paper's default beat the other three settings);
- ``studio-copy-paste.png``: the copy-paste badge. The demo model never pastes a reference back (docs/copy-paste.md),
  so the script makes the pasted result itself: reference 1 saved as a result, scored by the real measure, then
  opened from the history like any other result.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from make_screenshots import grab  # noqa: E402  (one grab for every screenshot script)
from make_screenshots import wait as wait_until  # noqa: E402


def wait(condition, timeout_s: float = 300) -> None:
    """``make_screenshots.wait``, saying what the window last said when it does not get there."""
    try:
        wait_until(condition, timeout_s)
    except TimeoutError:
        from PySide6.QtWidgets import QApplication

        window = next(w for w in QApplication.topLevelWidgets() if hasattr(w, "studio"))
        raise TimeoutError(f"stuck; the window last said: {window.last_message!r}; busy={window.studio.busy}, "
                           f"queue={len(window.studio.queue.waiting)} waiting, paused={window.studio.queue.paused}"
                           ) from None


STEPS = int(os.environ.get("SHOT_STEPS", "60"))


def references(scratch: Path, seed: int, index: int, name: str, count: int = 2) -> tuple[list[str], str]:
    from PIL import Image

    from squeeze_studio.synth import make_example

    example = make_example(seed, "test", index, size=256, max_refs=count)
    paths = []
    for number, array in enumerate(example.references[:count]):
        path = scratch / f"{name}-{number + 1}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths, example.instruction


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="squeeze-studio-shots-"))
    os.environ["SQUEEZE_STUDIO_HOME"] = str(scratch / "home")
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from squeeze_studio.app.main import configure_application
    from squeeze_studio.app.ui.main_window import MainWindow

    app = QApplication(sys.argv)
    configure_application(app)
    window = MainWindow()
    window.resize(1500, 920)
    window.move(0, 0)
    window.show()
    studio, ws = window.studio, window.workspace
    wait(lambda: studio.models.loaded is not None or not studio.busy)
    toy, instruction = references(scratch, 11, 3, "toy")
    studio.subjects.rename(0, "toy")
    studio.subjects.add_images(toy)
    ws.editor.setPlainText(instruction)
    studio.controls.set("num_inference_steps", 20)
    studio.controls.set_seed_locked(True)

    # The queue: one job runs, three wait.
    studio.controls.set("num_inference_steps", STEPS)
    for seed in (1, 2, 3, 4):
        studio.controls.set("seed", seed)
        assert studio.generate(), window.last_message
    wait(lambda: studio.generation.step >= STEPS // 3)
    grab(window, "studio-queue.png")
    wait(lambda: not studio.busy and not studio.queue.waiting)
    studio.controls.set("num_inference_steps", 20)

    print("queue done", flush=True)
    # Picks: a sweep, then "2" three times in Compare.
    studio.controls.set("seed", 5)
    assert studio.sweep(vary_seed=False)
    wait(lambda: not studio.busy)
    ws.comparison_view.setFocus()
    for _ in range(3):
        QTest.keyClick(ws.comparison_view, Qt.Key.Key_2)
    print("sweep done", studio.picks.count(), "picks", flush=True)
    wait(lambda: studio.picks.preference is not None)
    ws.controls_panel.stage_bar.update()
    grab(window, "studio-picks.png")

    # Two subjects in one image.
    ball, _ = references(scratch, 11, 8, "ball", count=1)
    second = studio.subjects.add_subject("ball", ball)
    studio.subjects.select(0)
    studio.subjects.remove_image(1)  # the demo model reads two pictures at most: one of each subject
    studio.subjects.set_in_image(second, True)
    ws.editor.setPlainText("the toy and the ball side by side on a white background")
    ws.tabs.setCurrentWidget(ws.canvas)
    studio.controls.set("seed", 6)
    assert studio.generate(), window.last_message
    wait(lambda: not studio.busy)
    grab(window, "studio-two-subjects.png")

    # The copy-paste badge, on a result that is reference 1 pasted back (see the module's docstring).
    from PIL import Image

    from squeeze_studio.copy_paste import copy_paste
    from squeeze_studio.recipe import save_png

    pasted = Image.open(toy[0]).convert("RGB").resize((64, 64))
    request = studio.outputs.results[-1].request.replace(references=toy, subjects=[])
    score = copy_paste(pasted, [Image.open(path).convert("RGB") for path in toy])
    path = save_png(pasted, scratch / "pasted.png", request, copy_paste=score)
    record = studio.history.add(str(path), request, 0.0, "reference 1 pasted back")
    studio.outputs.show_record(record)
    wait(lambda: ws.canvas.copy_paste_badge.isVisible())
    grab(window, "studio-copy-paste.png")
    window.close()


if __name__ == "__main__":
    main()
