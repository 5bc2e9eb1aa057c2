"""End to end through the worker: the real engine on a tiny model, and a pausing fake for cancel/close."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from squeeze_studio.app.persistence.history_index import HistoryIndex
from squeeze_studio.recipe import read_recipe

from .fake_engine import FakeEngineFactory
from .helpers import LONG, prepare, real_engine_window, wait_until_paused


def test_full_generation_streams_a_preview_per_step_and_records_the_result(make_window, qtbot, tiny_model, images):
    window = real_engine_window(make_window, tiny_model)
    studio = window.studio
    prepare(window, images[:2], steps=5)
    steps_seen = []
    studio.client.worker.progress.connect(lambda step, total, index, preview: steps_seen.append(
        (step, total, preview is not None and not preview.isNull())))

    with qtbot.waitSignal(studio.job_finished, timeout=LONG) as finished:
        assert studio.generate()
    assert finished.args == ["done"]

    assert steps_seen == [(step, 5, True) for step in range(1, 6)]
    assert studio.generation.previews_received == 5
    [result] = studio.outputs.results
    assert Path(result.path).is_file()
    recipe = read_recipe(result.path)
    assert recipe.instruction == "the toy on a beach at sunset"
    assert recipe.references == images[:2]
    assert (recipe.seed, recipe.num_inference_steps, recipe.tau1, recipe.tau2) == (7, 5, 0.95, 0.85)

    assert window.workspace.history_strip.list.count() == 1
    assert studio.history.records[0].path == result.path
    index = HistoryIndex()  # a second connection: the record is on disk, not just in memory
    assert [r.path for r in index.recent()] == [result.path]
    index.close()
    assert window.workspace.canvas.view.has_image()
    assert window.workspace.model_label.text() == "Model: tiny"
    assert window.workspace.device_label.text() == "Device: cpu"
    assert window.workspace.memory_label.text()


def test_batch_makes_one_history_entry_per_image_newest_first(make_window, qtbot, images):
    window = make_window()
    prepare(window, images[:1], steps=2)
    window.studio.controls.set("batch_count", 3)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    seeds = [record.request.seed for record in window.studio.history.records]
    assert seeds == [9, 8, 7]
    assert window.workspace.history_strip.list.count() == 3


def test_cancel_takes_effect_within_one_step_with_the_real_engine(make_window, qtbot, tiny_model, images):
    window = real_engine_window(make_window, tiny_model)
    studio = window.studio
    prepare(window, images[:1], steps=12)
    steps_seen = []

    def on_progress(step, total, index, preview):  # runs in the worker thread (direct connection)
        steps_seen.append(step)
        if step == 3:
            studio.client.cancel()

    studio.client.worker.progress.connect(on_progress, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(studio.job_finished, timeout=LONG) as finished:
        studio.generate()
    assert finished.args == ["cancelled"]
    assert steps_seen == [1, 2, 3]
    assert studio.outputs.results == [] and window.workspace.history_strip.list.count() == 0
    qtbot.waitUntil(lambda: not studio.busy, timeout=LONG)
    assert window.workspace.generate_button.isEnabled()


def test_cancel_mid_run_from_the_window(make_window, qtbot, images):
    factory = FakeEngineFactory(pause_after_step=2)
    window = make_window(factory)
    studio = window.studio
    prepare(window, images[:1], steps=6)
    studio.generate()
    wait_until_paused(qtbot, factory)
    assert window.workspace.canvas.cancel_button.isVisible() and window.workspace.canvas.cancel_button.isEnabled()

    with qtbot.waitSignal(studio.job_finished, timeout=LONG) as finished:
        window.workspace.canvas.cancel_button.click()
    assert finished.args == ["cancelled"]
    qtbot.waitUntil(lambda: studio.generation.previews_received == 2 and not studio.busy, timeout=LONG)
    assert studio.history.records == []
    assert "Cancelled" in window.last_message
    assert not window.workspace.canvas.cancel_button.isVisible()


def test_escape_in_the_editor_cancels(make_window, qtbot, images):
    factory = FakeEngineFactory(pause_after_step=1)
    window = make_window(factory)
    prepare(window, images[:1], steps=4)
    window.workspace.editor.setFocus()
    # Ctrl+Enter generates.
    qtbot.keyClick(window.workspace.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    wait_until_paused(qtbot, factory)
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG) as finished:
        qtbot.keyClick(window.workspace.editor, Qt.Key.Key_Escape)
    assert finished.args == ["cancelled"]


def test_closing_the_window_mid_run_cancels_and_joins_the_worker(make_window, qtbot, images):
    factory = FakeEngineFactory(pause_after_step=2)
    window = make_window(factory)
    studio = window.studio
    prepare(window, images[:1], steps=50)
    studio.generate()
    wait_until_paused(qtbot, factory)

    window.close()  # must not hang: the paused run sees the cancel flag

    assert studio.client.thread.isFinished()
    assert studio.history.records == []


def test_closing_the_window_mid_run_with_the_real_engine(make_window, qtbot, tiny_model, images):
    """The steps are counted in the worker thread (a direct connection): the GUI thread is blocked in ``close()``
    and would count nothing while the run went on, so a close that never cancelled would pass. They are counted
    from the moment the close sets the cancel flag, so a loaded machine pausing the GUI thread changes nothing."""
    window = real_engine_window(make_window, tiny_model)
    studio = window.studio
    prepare(window, images[:1], steps=1000)
    steps, at_cancel = [], []
    studio.client.worker.progress.connect(lambda step, *_: steps.append(step), Qt.ConnectionType.DirectConnection)
    flag = studio.client.cancel_flag
    real_set = flag.set
    flag.set = lambda: (at_cancel.append(len(steps)), real_set())
    studio.generate()
    qtbot.waitUntil(lambda: len(steps) >= 2, timeout=LONG)
    window.close()
    assert studio.client.thread.isFinished()
    assert at_cancel, "the close never set the cancel flag"
    assert len(steps) - at_cancel[0] <= 1  # at most the step being passed on, not the other 990-odd
    assert studio.history.records == []


def test_bad_input_is_one_line_in_the_window_and_keeps_the_work(make_window, qtbot, images, tmp_path):
    window = make_window()
    studio = window.studio
    window.workspace.editor.setPlainText("")
    assert not studio.generate()
    assert window.last_message == "Write an instruction first"

    gone = tmp_path / "gone.png"
    gone.write_bytes(Path(images[0]).read_bytes())
    prepare(window, [str(gone)], instruction="keep this text")
    gone.unlink()
    assert not studio.generate()
    assert "gone.png" in window.last_message and "\n" not in window.last_message
    assert window.workspace.editor.toPlainText() == "keep this text"


def test_an_unloadable_model_is_a_one_line_message(make_window, qtbot, images, tmp_path):
    from squeeze_studio.app.worker import default_engine_factory

    window = make_window(default_engine_factory)
    prepare(window, images[:1])
    window.studio.controls.set("model", str(tmp_path / "no-such-model"))
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG):
        window.studio.generate()
    qtbot.waitUntil(lambda: not window.studio.busy, timeout=LONG)
    assert window.last_message.startswith("Could not load model") and "\n" not in window.last_message
    assert window.workspace.editor.toPlainText() == "the toy on a beach at sunset"
