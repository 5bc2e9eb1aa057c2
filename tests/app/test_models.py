"""Real models in the window: the Models dialog over a fake Hugging Face cache, a broken folder kept out of the
recent list, per-model stage defaults on the stage bar, the add-on picker, and a download's Cancel."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from squeeze_studio.app.worker import default_engine_factory
from squeeze_studio.hub import manager
from squeeze_studio.hub.defaults import BASE_DEFAULTS

from .fake_engine import FakeEngineFactory
from .helpers import LONG

STOCK_REPO = "Qwen/Qwen-Image-Edit-2509"  # what the shared ``fake_hf_cache`` fixture holds


def open_models(window, qtbot):
    dialog = window.workspace.open_models()
    qtbot.waitUntil(lambda: bool(dialog.models) and not dialog.busy, timeout=LONG)
    return dialog


def cells(table, row: int) -> list[str]:
    return [table.item(row, column).text() for column in range(table.columnCount())]


def row_of(dialog, name: str) -> int:
    return [m.name for m in dialog.models].index(name)


def test_models_dialog_lists_the_fake_cache_and_the_demo(make_window, qtbot, fake_hf_cache):
    window = make_window()
    combo = window.workspace.controls_panel.model
    combo.activated.emit(combo.findText("Models…"))  # the model combo's entry opens the dialog
    dialog = window.workspace.models_dialog
    assert dialog is not None and dialog.isVisible()
    assert combo.currentText() == "Built-in demo model"  # the entry is not a choice
    qtbot.waitUntil(lambda: bool(dialog.models) and not dialog.busy, timeout=LONG)

    names = [m.name for m in dialog.models]
    assert names == [manager.DEMO_NAME, STOCK_REPO]
    where, size, status = cells(dialog.installed, 1)[1:]
    assert (where, status) == ("Hugging Face cache", "complete")
    assert size.endswith(("MB", "kB"))
    assert cells(dialog.installed, 0)[0] == f"{manager.DEMO_NAME}  (chosen)"
    # The cached model is no longer offered for download; its successor is, with size, license and VRAM.
    offered = [cells(dialog.available, row) for row in range(dialog.available.rowCount())]
    assert [row[1] for row in offered] == ["Qwen/Qwen-Image-Edit-2511"]
    assert offered[0][2].endswith("GB") and offered[0][3] == "Apache-2.0" and "(estimate)" in offered[0][4]

    dialog.installed.selectRow(1)
    assert dialog.use_button.isEnabled() and dialog.remove_button.isEnabled()
    dialog.installed.selectRow(0)
    assert not dialog.remove_button.isEnabled()  # the demo is built in


def test_using_a_cached_repo_loads_it_with_its_own_stage_defaults(make_window, qtbot, fake_hf_cache):
    """The real engine on the tiny stock model in the fake cache: a base whose connector is untrained runs as
    itself (τ1 1 / τ2 0), and the window says so."""
    window = make_window(default_engine_factory)
    studio, panel = window.studio, window.workspace.controls_panel
    dialog = open_models(window, qtbot)
    dialog.installed.selectRow(row_of(dialog, STOCK_REPO))
    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        dialog.use_button.click()

    assert studio.models.model_key() == (STOCK_REPO, "")
    assert studio.models.recent_models == [STOCK_REPO]
    assert panel.model.currentText() == STOCK_REPO
    assert (studio.controls.get("tau1"), studio.controls.get("tau2")) == (1.0, 0.0)
    assert studio.controls.get("guidance_scale") == BASE_DEFAULTS.guidance_scale
    assert panel.stage_bar.values() == (1.0, 0.0)
    assert panel.stage_bar.model_default() == (1.0, 0.0) and panel.stage_bar.shows_model_marker()
    assert "connector is untrained" in panel.stage_bar.toolTip() and "identity" in panel.stage_bar.toolTip().lower()
    assert window.last_message.startswith("Stage defaults τ1 1.00 / τ2 0.00")
    assert "connector is untrained" in window.last_message
    assert "connector is untrained" in panel.defaults_button.toolTip()


def test_a_broken_model_folder_stays_out_of_the_recent_list(make_window, qtbot, tiny_model, tmp_path):
    """The real engine verifies the folder: a model whose transformer weights are gone is refused in one
    line, is not remembered, and the choice goes back to the model that last loaded."""
    broken = Path(shutil.copytree(tiny_model, tmp_path / "broken"))
    [weights] = (broken / "transformer").glob("*.safetensors")
    weights.unlink()
    window = make_window(default_engine_factory)
    studio, combo = window.studio, window.workspace.controls_panel.model
    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        studio.models.choose_model(str(tiny_model))
    assert studio.models.recent_models == [str(tiny_model)]

    with qtbot.waitSignal(studio.client.worker.failed, timeout=LONG):
        studio.models.choose_model(str(broken))
    qtbot.waitUntil(lambda: studio.models.loaded == (str(tiny_model), ""), timeout=LONG)  # the last good one, again

    assert studio.models.recent_models == [str(tiny_model)]
    assert str(broken) not in [combo.itemData(i) for i in range(combo.count())]
    assert combo.currentData() == str(tiny_model)
    message = window.workspace.problems.text("run")  # a banner on the canvas (issue 22)
    assert message.startswith("Could not load model") and "transformer" in message and "\n" not in message


def test_a_failed_first_load_is_not_remembered(make_window, qtbot, tmp_path):
    folder = tmp_path / "half-model"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    factory = FakeEngineFactory(broken={str(folder): f"unreadable model_index.json in {folder}"})
    window = make_window(factory)
    window.studio.models.choose_model(str(folder))
    qtbot.waitUntil(lambda: window.last_message.startswith("Could not load model"), timeout=LONG)
    assert window.studio.models.recent_models == []
    assert window.last_message == f"Could not load model: unreadable model_index.json in {folder}"
    assert window.studio.models.model_name == "No model loaded"


def test_switching_models_moves_the_stage_bar_to_each_models_default(make_window, qtbot, tmp_path):
    base = tmp_path / "stock-base"
    base.mkdir()
    factory = FakeEngineFactory(defaults={str(base): BASE_DEFAULTS})
    window = make_window(factory)
    studio, bar = window.studio, window.workspace.controls_panel.stage_bar
    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        studio.models.choose_model(str(base))
    assert bar.values() == (1.0, 0.0) and bar.shows_model_marker()
    assert BASE_DEFAULTS.origin in window.last_message

    bar.set_values(0.7, 0.2, emit=True)  # the user's own setting; double-click goes back to the model's
    bar.mouseDoubleClickEvent(None)
    assert (studio.controls.get("tau1"), studio.controls.get("tau2")) == (1.0, 0.0)
    menu = bar.defaults_menu()  # right-click: either default
    assert [a.text() for a in menu.actions()] == ["Reset to model defaults (τ1 1.00 / τ2 0.00)",
                                                  "Reset to the method's defaults (τ1 0.95 / τ2 0.85)"]
    menu.actions()[1].trigger()
    assert (studio.controls.get("tau1"), studio.controls.get("tau2")) == (0.95, 0.85)
    studio.controls.set("guidance_scale", 7.0)
    window.workspace.controls_panel.defaults_button.click()  # τ and guidance back to the model's
    assert [studio.controls.get(name) for name in ("tau1", "tau2", "guidance_scale")] == [1.0, 0.0, 4.0]

    with qtbot.waitSignal(studio.models.stage_defaults_changed, timeout=LONG):
        studio.models.choose_model("")  # the demo: the paper's default
    assert bar.values() == (0.95, 0.85) and not bar.shows_model_marker()
    assert studio.controls.get("guidance_scale") == 2.5


def test_a_first_start_takes_the_models_defaults(make_window, qtbot):
    tuned = BASE_DEFAULTS.__class__(0.9, 0.6, 3.0, "demo-model/stage_defaults.json")
    window = make_window(FakeEngineFactory(defaults={"": tuned}))  # no session yet
    with qtbot.waitSignal(window.studio.models.stage_defaults_changed, timeout=LONG):
        window.studio.models.preload_model()
    assert [window.studio.controls.get(n) for n in ("tau1", "tau2", "guidance_scale")] == [0.9, 0.6, 3.0]
    assert window.last_message.endswith("from: demo-model/stage_defaults.json")


def test_a_restored_session_keeps_its_stage_values_when_the_model_loads(make_window, qtbot, tmp_path):
    base = tmp_path / "stock-base"
    base.mkdir()
    first = make_window(FakeEngineFactory())
    first.studio.controls.set("model", str(base))
    first.studio.controls.set("tau1", 0.7)
    first.studio.controls.set("tau2", 0.3)
    first.close()

    second = make_window(FakeEngineFactory(defaults={str(base): BASE_DEFAULTS}))
    with qtbot.waitSignal(second.studio.models.stage_defaults_changed, timeout=LONG):
        second.studio.models.preload_model()
    assert (second.studio.controls.get("tau1"), second.studio.controls.get("tau2")) == (0.7, 0.3)
    assert second.workspace.controls_panel.stage_bar.model_default() == (1.0, 0.0)  # shown, not applied


def test_the_add_on_picker_loads_an_add_on_and_remembers_it_across_sessions(make_window, qtbot, tmp_path):
    addon = tmp_path / "my-addon"
    addon.mkdir()
    tuned = BASE_DEFAULTS.__class__(0.9, 0.6, 3.0, "add-on my-addon (tau sweep)")
    factory = FakeEngineFactory(defaults={str(addon): tuned})
    window = make_window(factory)
    picker = window.workspace.controls_panel.addon
    assert picker.currentText() == "No add-on" and picker.toolTip()
    with qtbot.waitSignal(window.studio.models.stage_defaults_changed, timeout=LONG):
        window.studio.models.choose_addon(str(addon))
    assert factory.loaded[-1] == ("", str(addon))
    assert window.studio.models.recent_addons == [str(addon)]
    assert picker.currentText() == "my-addon"
    assert window.workspace.controls_panel.stage_bar.values() == (0.9, 0.6)
    window.close()

    later = make_window(FakeEngineFactory())
    assert later.studio.models.recent_addons == [str(addon)]
    assert later.studio.controls.get("addon") == str(addon)
    assert later.workspace.controls_panel.addon.currentText() == "my-addon"


def test_a_session_from_before_add_ons_still_opens(make_window, studio_home):
    import json

    studio_home.mkdir(parents=True, exist_ok=True)
    (studio_home / "session.json").write_text(json.dumps({
        "version": 1, "subjects": [{"name": "Toy", "images": []}], "current": 0,
        "controls": {"instruction": "the toy", "tau1": 0.8, "tau2": 0.5, "model": ""}, "recent_models": []}))
    window = make_window()
    assert window.studio.controls.get("addon") == "" and window.studio.models.recent_addons == []
    assert window.studio.controls.get("tau1") == 0.8


def test_a_recipe_naming_a_repo_id_is_not_a_missing_folder(make_window, qtbot, tmp_path):
    from PIL import Image

    from squeeze_studio.recipe import save_png
    from squeeze_studio.request import GenerationRequest

    from .helpers import drop_files

    request = GenerationRequest(instruction="the toy", tau1=0.9, tau2=0.1, model=STOCK_REPO)
    png = save_png(Image.new("RGB", (16, 16)), tmp_path / "from-repo.png", request)
    factory = FakeEngineFactory(defaults={STOCK_REPO: BASE_DEFAULTS})
    window = make_window(factory)
    with qtbot.waitSignal(window.studio.models.stage_defaults_changed, timeout=LONG):
        drop_files(window.workspace.canvas.view.viewport(), [str(png)])
    assert window.studio.models.model_key() == (STOCK_REPO, "")
    assert "gone" not in window.last_message
    assert (window.studio.controls.get("tau1"), window.studio.controls.get("tau2")) == (0.9, 0.1)  # the recipe's


def test_remove_asks_and_deletes_from_the_fake_cache(make_window, qtbot, fake_hf_cache):
    window = make_window()
    dialog = open_models(window, qtbot)
    dialog.installed.selectRow(row_of(dialog, STOCK_REPO))
    questions = []
    dialog.ask = lambda title, text: questions.append(text) or False
    dialog.remove_button.click()
    assert "Delete Qwen/Qwen-Image-Edit-2509 from the Hugging Face cache" in questions[0]
    assert fake_hf_cache.is_dir()  # answered No

    dialog.ask = lambda title, text: True
    dialog.remove_button.click()
    qtbot.waitUntil(lambda: not dialog.busy and [m.name for m in dialog.models] == [manager.DEMO_NAME], timeout=LONG)
    assert not fake_hf_cache.parent.parent.exists()
    assert "Deleted Qwen/Qwen-Image-Edit-2509" in window.last_message


def test_remove_forgets_an_added_folder_and_keeps_its_files(make_window, qtbot, tiny_model):
    manager.add_user_folder(tiny_model)
    window = make_window()
    dialog = open_models(window, qtbot)
    dialog.installed.selectRow(row_of(dialog, tiny_model.name))
    dialog.ask = lambda title, text: "stays on disk" in text
    dialog.remove_button.click()
    qtbot.waitUntil(lambda: not dialog.busy and tiny_model.name not in [m.name for m in dialog.models], timeout=LONG)
    assert (tiny_model / "model_index.json").is_file()
    assert manager.user_folders() == []


def test_verify_reports_one_line_from_a_background_thread(make_window, qtbot, tiny_model, tmp_path):
    broken = Path(shutil.copytree(tiny_model, tmp_path / "broken"))
    [weights] = (broken / "transformer").glob("*.safetensors")
    weights.unlink()
    manager.add_user_folder(broken)
    window = make_window()
    dialog = open_models(window, qtbot)
    dialog.installed.selectRow(row_of(dialog, "broken"))
    assert not dialog.use_button.isEnabled()  # the listing already saw it is incomplete
    dialog.verify_button.click()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=LONG)
    assert dialog.status.text().startswith("broken: ") and "transformer" in dialog.status.text()
    assert "\n" not in dialog.status.text()


NEXT_REPO = "Qwen/Qwen-Image-Edit-2511"  # the first model the dialog offers for download over the fake cache
WEIGHTS = ("transformer/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
           "vae/diffusion_pytorch_model.safetensors")


def loopback_hub(monkeypatch, folder: Path, **disturb):
    """The loopback Hub of the model-manager tests (tests/hub/fake_hub.py) serving ``folder`` as ``NEXT_REPO``, with
    huggingface_hub pointed at it: the dialog's download runs the real ``manager.download`` over HTTP."""
    import sys

    from huggingface_hub import constants

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
    try:
        from fake_hub import FakeHub
    finally:
        sys.path.pop(0)
    hub = FakeHub(NEXT_REPO, folder, **disturb).__enter__()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)  # transfers are seen mid-file
    return hub


@pytest.fixture
def next_hub(monkeypatch, tiny_stock_dir, fake_hf_cache):
    """A loopback Hub holding the weights mid-transfer (the small files go through) until ``hub.release``."""
    hub = loopback_hub(monkeypatch, tiny_stock_dir, hold=WEIGHTS)
    yield hub
    hub.release.set()
    hub.__exit__(None, None, None)


def next_snapshot(fake_hf_cache) -> dict[str, int]:
    """The files of ``NEXT_REPO`` in the Hugging Face cache (name: size), and no partial blob left."""
    repo = fake_hf_cache.parents[1].parent / ("models--" + NEXT_REPO.replace("/", "--"))
    assert not list(repo.glob("blobs/*.incomplete"))
    return {p.relative_to(s).as_posix(): p.stat().st_size for s in repo.glob("snapshots/*") for p in s.rglob("*")
            if p.is_file()}


def start_download(make_window, qtbot, questions: list | None = None):
    """Open the Models dialog and press Download on the first registry model, answering yes to every question
    (collected in ``questions``)."""
    window = make_window()
    dialog = open_models(window, qtbot)
    dialog.ask = lambda title, text: (questions.append(text) if questions is not None else None) or True
    dialog.available.selectRow(0)
    dialog.download_button.click()
    return window, dialog


@pytest.mark.slow
def test_download_asks_with_the_size_and_cancel_stops_it(make_window, qtbot, next_hub, tiny_stock_dir,
                                                          fake_hf_cache):
    questions = []
    _, dialog = start_download(make_window, qtbot, questions)
    qtbot.waitUntil(lambda: next_hub.started.is_set() and dialog.download_progress is not None
                    and dialog.download_progress.value() > 0, timeout=LONG)  # bytes came, the weights are held
    needed = sum(p.stat().st_size for p in tiny_stock_dir.rglob("*") if p.is_file())
    assert f"Download {NEXT_REPO} (Apache-2.0)?" in questions[0]
    assert f"{manager.human_size(needed)} to download; " in questions[0]
    [cancel] = dialog.download_progress.findChildren(QPushButton)
    assert cancel.text() == "Cancel"
    cancel.click()
    next_hub.release.set()  # the held transfers go on, and stop at their next chunk
    qtbot.waitUntil(lambda: dialog.download_progress is None, timeout=LONG)
    assert dialog.status.text() == f"Download of {NEXT_REPO} cancelled; complete files are kept"
    landed = next_snapshot(fake_hf_cache)
    assert landed and not set(landed) & set(WEIGHTS)  # the small files whole, the held weights never finished
    assert all((tiny_stock_dir / name).stat().st_size == size for name, size in landed.items())


def test_a_download_that_does_not_fit_is_refused_in_one_line(make_window, qtbot, monkeypatch, next_hub,
                                                              fake_hf_cache):
    monkeypatch.setattr(manager, "free_space", lambda path: 1000)  # the real check, on a disk with 1 kB free
    _, dialog = start_download(make_window, qtbot)
    qtbot.waitUntil(lambda: not dialog.busy and "needs" in dialog.status.text(), timeout=LONG)
    assert dialog.status.text().startswith("Cannot download Qwen-Image-Edit-2511: needs 1.7 MB, 1.0 kB free on ")
    assert dialog.download_progress is None
    assert not [r for r in next_hub.requests if r.startswith("GET ") and "/resolve/" in r]  # no file fetched


def test_closing_the_window_mid_download_cancels_it(make_window, qtbot, next_hub, fake_hf_cache):
    window, dialog = start_download(make_window, qtbot)
    qtbot.waitUntil(lambda: next_hub.started.is_set(), timeout=LONG)
    release = threading.Timer(0.5, next_hub.release.set)  # the held transfers go on while the close waits
    release.start()
    try:
        window.close()  # must cancel the download and not leave its thread running
    finally:
        release.cancel()
        next_hub.release.set()
    assert not [t for t in threading.enumerate() if t.name == f"download {NEXT_REPO}"]
    assert not set(next_snapshot(fake_hf_cache)) & set(WEIGHTS)  # stopped, not finished
