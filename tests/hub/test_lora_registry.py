"""Known distillation LoRAs (registry), downloaded one file at a time through the loopback Hub, and the
``squeeze models lora-defaults`` command that writes a LoRA's recommended settings beside it."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from fake_hub import FakeHub
from safetensors.torch import save_file

from squeeze_studio.cli import main
from squeeze_studio.hub import manager
from squeeze_studio.hub.lora_files import METADATA_KEY, lora_defaults
from squeeze_studio.hub.registry import KNOWN_LORAS, known_lora, known_lora_file

LIGHTNING_8 = "Qwen-Image-Edit-2509/Qwen-Image-Edit-2509-Lightning-8steps-V1.0-bf16.safetensors"


def test_registry_knows_the_lightning_loras_and_their_settings():
    assert {lora.key for lora in KNOWN_LORAS} == {f"lightning-{base}-{steps}step" for base in ("2509", "2511")
                                                   for steps in (4, 8)}
    lora = known_lora("Lightning-2509-8step")
    assert (lora.repo_id, lora.filename, lora.bases) == ("lightx2v/Qwen-Image-Lightning", LIGHTNING_8,
                                                         ("qwen-image-edit-2509",))
    assert known_lora("lightning-2511-4step").filename == "Qwen-Image-Edit-2511-Lightning-4steps-V1.0-bf16.safetensors"
    assert (lora.defaults.steps, lora.defaults.guidance_scale) == (8, 1.0)
    assert lora.defaults.scheduler["base_shift"] == lora.defaults.scheduler["max_shift"] == math.log(3)
    assert lora.defaults.scheduler["shift_terminal"] is None
    assert known_lora_file(LIGHTNING_8.split("/")[1]) is lora and known_lora_file("style.safetensors") is None


def test_download_fetches_only_the_loras_file_and_it_brings_its_settings(dirs, online, capsys, tmp_path):
    repo = tmp_path / "repo"
    (repo / "Qwen-Image-Edit-2509").mkdir(parents=True)
    save_file({"transformer_blocks.0.attn.to_q.lora_down.weight": torch.zeros(2, 4)}, str(repo / LIGHTNING_8))
    (repo / "Qwen-Image-Edit-2509" / "qwen_image_edit_2509_fp8_e4m3fn_scaled.safetensors").write_bytes(b"x" * 10**5)
    hub = online(FakeHub("lightx2v/Qwen-Image-Lightning", repo))
    assert main(["models", "download", "lightning-2509-8step", "--quiet"]) == 0
    err = capsys.readouterr().err
    path = Path(err.splitlines()[-1].split(" to ", 1)[1])
    assert path.name == LIGHTNING_8.split("/")[1] and path.read_bytes() == (repo / LIGHTNING_8).read_bytes()
    assert not [r for r in hub.requests if r.startswith("GET ") and "fp8" in r]  # the other files stay on the Hub
    assert "--lora " + str(path) in err
    defaults = lora_defaults(path)
    assert (defaults.steps, defaults.guidance_scale, defaults.origin.startswith("registry: lightx2v")) == (8, 1.0, True)
    assert manager.download_size("lightx2v/Qwen-Image-Lightning", files=[LIGHTNING_8]) == 0


def test_lora_defaults_command_writes_a_sidecar_and_metadata_is_read_too(dirs, capsys, tmp_path):
    path = tmp_path / "fast.safetensors"
    meta = json.dumps({"steps": 6, "guidance_scale": 1.5})
    save_file({"a.lora_down.weight": torch.zeros(1, 1)}, str(path), metadata={METADATA_KEY: meta})
    assert main(["models", "lora-defaults", str(path)]) == 0
    assert capsys.readouterr().out == 'fast: {"steps": 6, "guidance_scale": 1.5} (fast.safetensors metadata)\n'
    assert main(["models", "lora-defaults", str(path), "--steps", "4", "--tau1", "1", "--tau2", "0",
                 "--shift-terminal", "none", "--dynamic-shifting", "on", "--base-shift", "1.1"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'fast.squeeze.json'}\n")
    defaults = lora_defaults(path)
    assert (defaults.steps, defaults.guidance_scale, defaults.tau1, defaults.tau2) == (4, 1.5, 1.0, 0.0)
    assert defaults.scheduler == {"shift_terminal": None, "use_dynamic_shifting": True, "base_shift": 1.1}
    for argv, message in ((["--tau1", "0.2", "--tau2", "0.5"], "tau2 must not exceed tau1"),
                          (["--steps", "0"], "steps must be a whole number from 1 to 1000")):
        assert main(["models", "lora-defaults", str(path), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    (tmp_path / "old.bin").write_bytes(b"pickle")
    assert main(["models", "lora-defaults", str(tmp_path / "old.bin")]) == 2
    assert "old.bin is a pickled checkpoint" in capsys.readouterr().err
