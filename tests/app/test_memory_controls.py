"""GPU memory in the window: device and memory-mode pickers (remembered), the plan and the measured peak in the
controls, which mode would fit, and running out of memory while loading and at step k (one line, a lighter mode
offered, and the next generation works), with a fake engine and with the real one on the tiny model."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from squeeze_studio.memory.modes import MEMORY_MODES

from .fake_engine import GIB, FakeEngineFactory, fake_plan
from .helpers import LONG, prepare

FREE_24GB = int(23.4 * GIB)  # what a 24 GB card has free


def plan_line(mode: str, device: str = "cuda") -> str:
    """The memory row's line for the plan the fake engine gets from ``plan_memory`` (the figures are the planner's,
    so a change there does not need a change here; the wording is this test's)."""
    plan = fake_plan(mode, device, None if device == "cpu" else FREE_24GB)
    ram = f"{plan.ram_bytes / GIB:.1f} GiB RAM"
    vram = "" if device == "cpu" else f"{plan.vram_bytes / GIB:.1f} GiB VRAM, "
    return f"plan: {vram}{ram} ({mode} on {device})"


def gpu_factory(**options) -> FakeEngineFactory:
    return FakeEngineFactory(devices=["cuda", "cpu"], free_vram=FREE_24GB, peak=int(5.9 * GIB), **options)


def memory_row(window):
    return window.workspace.controls_panel.memory


def combo_items(combo) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def loaded(window, qtbot, factory=None):
    """Wait for the model (and the plan for the current size that follows it) to arrive."""
    studio = window.studio
    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        studio.models.preload_model()
    qtbot.waitUntil(lambda: studio.models.plan is not None, timeout=LONG)


def generate(window, qtbot, outcome: str = "done") -> None:
    with qtbot.waitSignal(window.studio.job_finished, timeout=LONG) as finished:
        assert window.studio.generate()
    assert finished.args == [outcome]
    qtbot.waitUntil(lambda: not window.studio.busy, timeout=LONG)


def test_the_memory_row_shows_the_devices_the_modes_and_the_plan(make_window, qtbot, images):
    window = make_window(gpu_factory())
    row = memory_row(window)
    assert row.plan_label.text() == "plan: shown once the model has loaded"
    loaded(window, qtbot)

    assert combo_items(row.device) == ["Automatic (cuda)", "cuda", "cpu"]
    assert combo_items(row.mode) == list(MEMORY_MODES) and row.mode.currentText() == "auto"
    enabled = {row.mode.itemText(i): row.mode.model().item(i).isEnabled() for i in range(row.mode.count())}
    assert enabled == {**{mode: True for mode in MEMORY_MODES}, "multi-gpu": False}  # one CUDA card here
    assert all(row.mode.itemData(i, 3) for i in range(row.mode.count()))  # every mode says what it does
    assert row.plan_label.text() == plan_line("group-offload")  # what "auto" chose on a 24 GB card
    assert "predictions" in row.plan_label.toolTip() and "group-offload on cuda (bf16) at 32x32" in \
        row.plan_label.toolTip()
    assert not row.note_row.isVisible()

    prepare(window, images[:2])
    generate(window, qtbot)
    assert row.plan_label.text() == plan_line("group-offload") + " · measured peak 5.9 GiB"


def test_on_the_cpu_the_plan_is_ram_only_and_no_peak(make_window, qtbot, images):
    window = make_window(FakeEngineFactory(peak=GIB))
    loaded(window, qtbot)
    row = memory_row(window)
    assert combo_items(row.device) == ["Automatic (cpu)", "cpu"]
    prepare(window, images[:1])
    generate(window, qtbot)
    assert row.plan_label.text() == plan_line("full", "cpu")


def test_a_plan_that_does_not_fit_says_which_mode_would_and_a_click_takes_it(make_window, qtbot):
    factory = gpu_factory()
    window = make_window(factory)
    loaded(window, qtbot)
    row, studio = memory_row(window), window.studio
    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        row.mode.activated.emit(row.mode.findData("full"))
    qtbot.waitUntil(lambda: (studio.models.plan or {}).get("mode") == "full", timeout=LONG)
    assert factory.settings[-1] == ("", "full")
    assert row.plan_label.text() == plan_line("full")
    assert row.note_label.text() == "does not fit in 23.4 GiB free VRAM: try group-offload"
    assert row.use_button.isVisible() and row.use_button.text() == "Use group-offload"

    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        row.use_button.click()
    qtbot.waitUntil(lambda: (studio.models.plan or {}).get("mode") == "group-offload", timeout=LONG)
    assert factory.settings[-1] == ("", "group-offload") and row.mode.currentText() == "group-offload"
    assert not row.note_row.isVisible()


def test_device_and_mode_are_remembered_across_starts(make_window, qtbot):
    factory = gpu_factory()
    window = make_window(factory)
    loaded(window, qtbot)
    row = memory_row(window)
    with qtbot.waitSignal(window.studio.models.stage_defaults_changed, timeout=LONG):
        row.device.activated.emit(row.device.findData("cpu"))
    assert factory.settings[-1] == ("cpu", "auto")
    with qtbot.waitSignal(window.studio.models.stage_defaults_changed, timeout=LONG):
        row.mode.activated.emit(row.mode.findData("model-offload"))
    assert factory.settings[-1] == ("cpu", "model-offload")
    assert row.plan_label.text() == plan_line("model-offload", "cpu")
    loads = factory.loads
    window.studio.models.choose_memory(device="cpu")  # already loaded like that: no second load
    assert factory.loads == loads
    window.close()

    later_factory = gpu_factory()
    later = make_window(later_factory)
    assert later.studio.controls.engine_settings() == ("cpu", "model-offload")
    assert memory_row(later).device.currentText() == "cpu"  # shown before the worker has looked
    assert memory_row(later).mode.currentText() == "model-offload"
    loaded(later, qtbot)
    assert later_factory.settings == [("cpu", "model-offload")]


def test_old_sessions_and_a_device_that_is_gone(make_window, qtbot, studio_home):
    studio_home.mkdir(parents=True, exist_ok=True)
    session = studio_home / "session.json"
    session.write_text(json.dumps({"version": 1, "subjects": [{"name": "Toy", "images": []}], "current": 0,
                                   "controls": {"instruction": "the toy", "model": ""}}))
    window = make_window(gpu_factory())
    assert window.studio.controls.engine_settings() == ("", "auto")  # a session from before memory modes
    window.close()

    data = json.loads(session.read_text())
    assert (data["controls"]["device"], data["controls"]["memory"]) == ("", "auto")
    data["controls"].update(device="cuda:1", memory="multi-gpu")  # remembered from a machine with two cards
    session.write_text(json.dumps(data))
    factory = gpu_factory()
    window = make_window(factory)
    assert memory_row(window).device.currentText() == "cuda:1"
    loaded(window, qtbot)
    assert factory.settings == [("", "auto")]
    assert window.studio.controls.engine_settings() == ("", "auto")
    assert window.last_message == ("Device cuda:1 is not present here; memory mode multi-gpu needs two or more "
                                   "CUDA GPUs: using automatic instead")
    assert combo_items(memory_row(window).device) == ["Automatic (cuda)", "cuda", "cpu"]


def test_out_of_memory_while_loading_names_a_lighter_mode_and_the_next_generation_works(make_window, qtbot, images):
    factory = gpu_factory(out_of_memory_loading=("full",))
    window = make_window(factory)
    studio, row = window.studio, memory_row(window)
    studio.controls.set("memory", "full")
    prepare(window, images[:2])
    generate(window, qtbot, "failed")
    message = "Could not load model: out of memory loading fake-model with memory mode full: try memory mode " \
              "group-offload"
    assert window.last_message == message
    assert window.workspace.problems.text("run") == message  # a banner on the canvas (issue 22)
    assert row.note_label.text() == message.removeprefix("Could not load model: ")
    assert row.use_button.isVisible() and row.use_button.text() == "Use group-offload"

    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        row.use_button.click()
    generate(window, qtbot)
    assert factory.settings[-1] == ("", "group-offload") and studio.outputs.results
    assert not row.note_row.isVisible() and row.plan_label.text().endswith("measured peak 5.9 GiB")


def test_out_of_memory_at_step_k_is_one_line_and_the_next_generation_works(make_window, qtbot, images):
    factory = gpu_factory(out_of_memory_at_step=3)
    window = make_window(factory)
    studio, row = window.studio, memory_row(window)
    prepare(window, images[:2])
    generate(window, qtbot, "failed")
    assert window.last_message == ("out of memory at step 3 of 4 with memory mode group-offload at 32x32: try "
                                   "memory mode sequential")
    assert studio.generation.phase == "idle" and not studio.outputs.results
    assert row.note_label.text() == window.last_message and row.use_button.text() == "Use sequential"

    loads = factory.loads
    generate(window, qtbot)  # the same engine, still loaded
    assert factory.loads == loads and len(studio.outputs.results) == 1
    assert not row.note_row.isVisible()


def test_the_real_engine_runs_out_of_memory_at_load_and_at_step_k_then_works(make_window, qtbot, images,
                                                                           tiny_model, monkeypatch):
    """An injected ``torch.OutOfMemoryError``, converted by the engine: one line in the status bar each time, and
    the next generation works."""
    import torch

    from squeeze_studio.app.worker import default_engine_factory
    from squeeze_studio.memory import apply
    from squeeze_studio.pipeline import SqueezePipeline

    def once(original, after_calls: int = 0):
        calls = []

        def fail_once(*args, **kwargs):
            calls.append(1)
            if len(calls) == after_calls + 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return original(*args, **kwargs)

        return fail_once

    monkeypatch.setattr(apply, "apply_memory_mode", once(apply.apply_memory_mode))
    monkeypatch.setattr(SqueezePipeline, "velocity", once(SqueezePipeline.velocity, after_calls=1))
    window = make_window(default_engine_factory)
    studio = window.studio
    studio.controls.set("model", str(tiny_model))
    studio.controls.set("device", "cpu")  # chosen, not automatic: the factory gets it
    prepare(window, images[:1], steps=3)

    generate(window, qtbot, "failed")
    assert window.last_message == (f"Could not load model: out of memory loading {tiny_model.name} with memory "
                                   "mode full: try a smaller size or fewer references")
    generate(window, qtbot, "failed")  # loads this time, then step 2 runs out of memory
    assert window.last_message == ("out of memory at step 2 of 3 with memory mode full at 64x64: try a smaller "
                                   "size or fewer references")
    assert memory_row(window).note_label.text() == window.last_message
    generate(window, qtbot)
    assert len(studio.outputs.results) == 1 and Path(studio.outputs.results[0].path).is_file()
    assert memory_row(window).plan_label.text().startswith("plan: ") and "RAM (full on cpu)" in \
        memory_row(window).plan_label.text()


def test_window_lines_leave_out_the_plan_and_the_cli_flag():
    from squeeze_studio.app.model.memory_info import fit_note, window_line

    plan = fake_plan("full", "cuda", None)
    line = (f"out of memory loading Qwen-Image-Edit-2509 with --memory full (plan: {plan.summary()}): try --memory "
            "group-offload")
    assert "(free VRAM unknown)" in line
    assert window_line(line) == "out of memory loading Qwen-Image-Edit-2509 with memory mode full: try memory mode " \
                                "group-offload"
    assert fit_note(vars(plan)) == ""  # free VRAM unknown: no claim either way
    short_of_ram = vars(fake_plan("group-offload", "cuda", FREE_24GB, free_ram=32 * GIB))
    assert fit_note(short_of_ram) == "does not fit in 32.0 GiB available RAM: close other programs"


def render_screenshot(path: Path) -> None:
    """The controls with the memory row as a 24 GB card would show them, with the plan's real prediction for
    Qwen-Image-Edit-2509 and no measured peak (none was measured): ``python -m tests.app.test_memory_controls
    docs/screenshots/controls-memory.png`` (offscreen, the fake engine)."""
    from PySide6.QtWidgets import QApplication

    from squeeze_studio.app.model.memory_info import plan_dict
    from squeeze_studio.app.model.studio import Studio
    from squeeze_studio.app.ui.controls_panel import ControlsPanel
    from squeeze_studio.hub.defaults import BASE_DEFAULTS

    app = QApplication.instance() or QApplication([])
    studio = Studio(gpu_factory(), restore_session=False)
    try:
        studio.controls.set("model", "Qwen/Qwen-Image-Edit-2509")
        studio.models.recent_models = ["Qwen/Qwen-Image-Edit-2509"]
        studio.models.recent_models_changed.emit()
        studio.models.stage_defaults = {"tau1": BASE_DEFAULTS.tau1, "tau2": BASE_DEFAULTS.tau2,
                                 "guidance_scale": BASE_DEFAULTS.guidance_scale, "origin": BASE_DEFAULTS.origin}
        studio.models.stage_defaults_changed.emit()
        studio.models.apply_model_defaults()
        studio.models._on_devices(["cuda", "cpu"])
        studio.models._on_plan(plan_dict(fake_plan("auto", "cuda", FREE_24GB, height=1024, width=1024)))
        panel = ControlsPanel(studio)
        panel.advanced.set_expanded(True)  # folded on a short screen; the memory row is what this shows
        panel.resize(356, panel.sizeHint().height() + 6)
        panel.show()
        for _ in range(5):
            app.processEvents()
        panel.grab().save(str(path), "PNG")
        panel.close()
    finally:
        studio.shutdown()


def test_the_memory_row_renders(qapp, studio_home, tmp_path):
    render_screenshot(tmp_path / "controls-memory.png")
    assert (tmp_path / "controls-memory.png").stat().st_size > 1000


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    render_screenshot(Path(sys.argv[1]))


def test_the_fake_engine_plans_with_plan_memory():
    """The fake engine's plans are the planner's, not figures copied from it that drift when it changes (its group-
    offload RAM once read 56.5 GiB where the planner, counting the pinned copy, says 95.6)."""
    from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS
    from squeeze_studio.memory.plan import plan_memory
    from squeeze_studio.models import default_model_path
    from squeeze_studio.request import GenerationRequest

    room = 120 * GIB
    engine = gpu_factory()("model", device="cuda")
    assert engine.plan == plan_memory(QWEN_IMAGE_EDIT_PLUS, "auto", 32, 32, 2, "cuda", free_vram=FREE_24GB,
                                      free_ram=room, gpus=1)
    request = GenerationRequest(instruction="x", references=["a.png", "b.png", "c.png"], width=1024, height=1024)
    assert engine.plan_for(request) == plan_memory(QWEN_IMAGE_EDIT_PLUS, engine.memory_mode, 1024, 1024, 3, "cuda",
                                                   free_vram=FREE_24GB, free_ram=room, gpus=1)
    on_cpu = FakeEngineFactory()("model", memory="model-offload")
    assert on_cpu.plan == plan_memory(default_model_path(), "model-offload", 32, 32, 2, "cpu", free_ram=room)
