"""The LoRA list in the window: add, weight, on/off, refusals, one list per model, kept with the session, and what
goes into the request."""
from __future__ import annotations

import json

from squeeze_studio.app.persistence.session import session_path

from .helpers import LONG


def lora_files(tmp_path, *names):
    paths = []
    for name in names:
        path = tmp_path / name
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # an empty safetensors header is enough here
        paths.append(str(path))
    return paths


def saved_loras():
    path = session_path()
    return json.loads(path.read_text())["controls"].get("loras") if path.exists() else None


def test_lora_list_with_weights_and_on_off_per_model_kept_with_the_session(make_window, qtbot, tmp_path):
    style, fast = lora_files(tmp_path, "style.safetensors", "fast.safetensors")
    window = make_window()
    panel, controls = window.workspace.controls_panel.loras, window.studio.controls
    assert panel.add_file(style) and panel.add_file(fast)
    assert [panel.list.item(i).text() for i in range(panel.list.count())] == ["style  ×1", "fast  ×1"]
    panel.list.setCurrentRow(0)
    panel.weight.setValue(0.6)
    panel.list.item(1).setCheckState(panel.list.item(1).checkState().Unchecked)  # switched off, still listed
    assert controls.to_request([]).loras == [{"path": style, "weight": 0.6}]
    assert panel.list.item(0).text() == "style  ×0.6"

    (tmp_path / "old.ckpt").write_bytes(b"pickle")
    assert not panel.add_file(str(tmp_path / "old.ckpt"))
    assert panel.problem.isVisibleTo(panel) and panel.problem.text().startswith("old.ckpt is a pickled checkpoint")
    assert not panel.add_file(style) and panel.problem.text() == "style is already in the list"
    assert panel.list.count() == 2

    demo = controls.get("model")
    controls.set("model", str(tmp_path / "another-model"))  # another model: its own (empty) list
    assert panel.list.count() == 0 and controls.to_request([]).loras == []
    controls.set("model", demo)
    assert controls.to_request([]).loras == [{"path": style, "weight": 0.6}]

    qtbot.waitUntil(lambda: (saved_loras() or {}).get(demo, [{}])[-1].get("enabled") is False, timeout=LONG)
    second = make_window()
    assert second.studio.controls.to_request([]).loras == [{"path": style, "weight": 0.6}]
    assert second.workspace.controls_panel.loras.list.count() == 2


def test_a_restored_recipe_brings_its_loras(make_window, tmp_path):
    from squeeze_studio.request import GenerationRequest

    (style,) = lora_files(tmp_path, "style.safetensors")
    window = make_window()
    controls = window.studio.controls
    controls.apply_request(GenerationRequest(instruction="x", model=controls.get("model"),
                                             loras=[{"path": style, "weight": 0.3, "name": "style", "sha256": ""}]))
    assert controls.to_request([]).loras == [{"path": style, "weight": 0.3}]
    assert window.workspace.controls_panel.loras.list.item(0).text() == "style  ×0.3"


def test_adding_a_few_step_lora_takes_its_steps_and_guidance(make_window, tmp_path):
    import torch
    from safetensors.torch import save_file

    from squeeze_studio.hub.lora_files import METADATA_KEY

    path = tmp_path / "turbo.safetensors"
    save_file({"a.lora_down.weight": torch.zeros(1, 1)}, str(path),
              metadata={METADATA_KEY: json.dumps({"steps": 8, "guidance_scale": 1.0, "tau1": 1.0, "tau2": 0.0})})
    window = make_window()
    panel, controls = window.workspace.controls_panel.loras, window.studio.controls
    assert panel.add_file(str(path))
    request = controls.to_request([])
    assert (request.num_inference_steps, request.guidance_scale, request.tau1, request.tau2) == (8, 1.0, 1.0, 0.0)
    assert window.workspace.controls_panel.steps.value() == 8
    assert panel.problem.text() == "Took its settings (turbo.safetensors metadata)"
