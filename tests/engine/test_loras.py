"""Community LoRAs on the tiny stock model (``pipe.set_loras``): files written here with the key layouts ComfyUI/kohya,
lightx2v and diffusers/peft use for Qwen-Image, over the real module names of ``build_tiny_stock_model``'s
transformer. Properties only (changes / equals the base), never pixel values of random weights. The LoRAs are fused
into the weights (``loras.fused_adapters``), so "equals the base" holds to float rounding (``TOL``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from squeeze_studio.pipeline import LoraSpec, SqueezePipeline
from squeeze_studio.pipeline import loras as lora_module
from squeeze_studio.testing.loras import lora_tensors

TOL = 1e-5  # a fused LoRA taken out again leaves the weights to within float32 rounding


@pytest.fixture(scope="module")
def pipe(tiny_stock_dir):
    pipe = SqueezePipeline.from_pretrained(str(tiny_stock_dir))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe):
    return pipe(prompt="a toy on a beach", num_inference_steps=2, height=64, width=64, output_type="np",
                generator=torch.Generator().manual_seed(0)).images


@pytest.fixture(scope="module")
def base(pipe):
    return run(pipe)


def write(path, tensors, metadata=None):
    save_file(tensors, str(path), metadata=metadata)
    return str(path)


def kohya(pipe, path, seed=1):
    return write(path, lora_tensors(pipe.transformer, "kohya", rank=4, seed=seed))


def lightx2v(pipe, path, seed=2, blocks=None):
    return write(path, lora_tensors(pipe.transformer, "lightx2v", rank=8, alpha=1.0, scale=8, seed=seed,
                                    blocks=blocks))


def peft(pipe, path, seed=3):
    return write(path, lora_tensors(pipe.transformer, "peft", rank=4, seed=seed))


def test_comfyui_and_lightx2v_loras_change_the_image_and_weight_zero_is_the_base(pipe, base, tmp_path):
    comfy, lightning = kohya(pipe, tmp_path / "style.safetensors"), lightx2v(pipe, tmp_path / "lightning.safetensors")
    for path in (comfy, lightning):
        pipe.set_loras([LoraSpec(path, 1.0)])
        assert not np.allclose(run(pipe), base, atol=1e-3), path
    pipe.set_loras([LoraSpec(comfy, 0.0), LoraSpec(lightning, 0.0)])
    assert np.allclose(run(pipe), base, atol=TOL, rtol=0)
    pipe.set_loras([])  # back to the model alone: the slow test below checks its image


@pytest.mark.slow
def test_diffusers_peft_naming_loads_too_and_an_empty_list_is_the_model_alone(pipe, base, tmp_path):
    pipe.set_loras([LoraSpec(peft(pipe, tmp_path / "peft.safetensors"))])
    try:
        assert not np.allclose(run(pipe), base, atol=1e-3)
    finally:
        pipe.set_loras([])
    assert np.allclose(run(pipe), base, atol=TOL, rtol=0)  # the adapters stay loaded, unfused and switched off


def test_several_at_once_each_with_its_weight_and_no_file_read_twice(pipe, tmp_path, monkeypatch):
    a, b = kohya(pipe, tmp_path / "a.safetensors"), lightx2v(pipe, tmp_path / "b.safetensors")
    reads = []
    real = lora_module.read_lora
    monkeypatch.setattr(lora_module, "read_lora", lambda path, p: reads.append(path.name) or real(path, p))
    layer = pipe.transformer.transformer_blocks[1].img_mlp.net[2]
    names = pipe.set_loras([LoraSpec(a, 1.0), LoraSpec(b, 0.5)])
    assert pipe.transformer.active_adapters() == names and len(names) == 2
    assert (layer.scaling[names[0]], layer.scaling[names[1]]) == (1.0, 0.5)  # weight x the adapter's own scale (1)
    pipe.set_loras([LoraSpec(a, 1.0)])
    assert pipe.transformer.active_adapters() == names[:1]
    assert pipe.set_loras([LoraSpec(b, 0.25), LoraSpec(a, -1.0)]) == names[::-1]  # switching back reads nothing
    assert (layer.scaling[names[0]], layer.scaling[names[1]]) == (-1.0, 0.25)
    assert reads == ["a.safetensors", "b.safetensors"]
    pipe.set_loras([])


@pytest.mark.slow
def test_a_lora_beside_an_addon_keeps_the_addon_adapter(pipe, base, tmp_path):
    addon = kohya(pipe, tmp_path / "addon.safetensors", seed=7)
    pipe.load_lora_weights(lora_module.read_lora(lora_module.check_lora_file(addon), pipe), adapter_name="addon")
    try:
        pipe.set_loras([])
        with_addon = run(pipe)
        names = pipe.set_loras([LoraSpec(lightx2v(pipe, tmp_path / "l.safetensors"), 0.0)])
        assert names[0] == "addon" and np.allclose(run(pipe), with_addon, atol=TOL, rtol=0)
        assert not np.allclose(with_addon, base, atol=1e-3)
        assert lora_module.fused_adapters(pipe.transformer) == set(names)
    finally:
        pipe.unfuse_lora()  # deleting a fused adapter would leave its delta in the weights
        pipe.delete_adapters("addon")
        pipe.set_loras([])


@pytest.mark.parametrize("kind", ["missing layers", "shapes"])
def test_a_lora_for_another_model_is_refused_in_one_line_and_nothing_changes(pipe, tmp_path, kind):
    before = set(getattr(pipe.transformer, "peft_config", None) or {})
    if kind == "missing layers":  # a 60-block model's LoRA on a 2-block transformer
        path = lightx2v(pipe, tmp_path / "big.safetensors", blocks=range(2))
        extra = {f"transformer_blocks.59.{layer}.lora_{part}.weight": torch.zeros(8, 8)
                 for layer in ("attn.to_q", "attn.to_k") for part in ("down", "up")}
        path = write(tmp_path / "big.safetensors", {**_load(path), **extra,
                                                    **{k.replace(".lora_down.weight", ".alpha"): torch.tensor(1.0)
                                                       for k in extra if "down" in k}})
        expected = "big: 2 of 30 layers it names are not in this transformer (e.g. transformer_blocks.59.attn.to_k"
    else:
        tensors = lora_tensors(pipe.transformer, "lightx2v", rank=8)
        key = "transformer_blocks.0.attn.add_k_proj.lora_down.weight"
        tensors[key] = torch.zeros(8, 48)
        path = write(tmp_path / "wide.safetensors", tensors)
        expected = "wide: transformer_blocks.0.attn.add_k_proj is 32 -> 32 here, the LoRA expects 48 -> 32"
    with pytest.raises(ValueError) as raised:
        pipe.set_loras([LoraSpec(path)])
    assert str(raised.value).startswith(expected) and "\n" not in str(raised.value)
    assert set(getattr(pipe.transformer, "peft_config", None) or {}) == before


def _load(path):
    from safetensors.torch import load_file

    return load_file(path)


@pytest.mark.parametrize("name", ["style.bin", "style.pt", "style.ckpt", "fake.safetensors"])
def test_a_file_that_is_not_safetensors_is_never_unpickled(pipe, tmp_path, monkeypatch, name):
    import pickle

    path = tmp_path / name
    path.write_bytes(pickle.dumps({"lora_unet_x.lora_down.weight": [1.0]}))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load was called"))
    with pytest.raises(ValueError) as raised:
        pipe.set_loras([LoraSpec(str(path))])
    message = str(raised.value)
    assert "\n" not in message
    if name.endswith(".safetensors"):
        assert message.startswith("fake.safetensors is not a readable safetensors file")
    else:
        assert message.startswith(f"{name} is a pickled checkpoint")


def test_a_loras_scheduler_settings_apply_while_it_is_active(pipe, tmp_path):
    from squeeze_studio.hub.defaults import LoraDefaults
    from squeeze_studio.hub.lora_files import write_sidecar

    own = pipe.scheduler
    path = lightx2v(pipe, tmp_path / "fast.safetensors")
    write_sidecar(path, LoraDefaults(steps=4, guidance_scale=1.0, scheduler={"base_shift": 1.0986, "max_shift": 1.0986,
                                                                              "shift_terminal": None}))
    assert json.loads((tmp_path / "fast.squeeze.json").read_text())["steps"] == 4
    pipe.set_loras([LoraSpec(path)])
    assert pipe.scheduler.config.base_shift == 1.0986 and pipe.scheduler.config.shift_terminal is None
    assert pipe.scheduler.config.time_shift_type == own.config.time_shift_type  # the rest is the model's
    pipe.set_loras([LoraSpec(path, 0.0)])
    assert pipe.scheduler is own
    pipe.set_loras([])
    assert pipe.scheduler is own


def _base_weights(transformer) -> dict[str, torch.Tensor]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return {name: module.get_base_layer().weight.detach().clone() for name, module in transformer.named_modules()
            if isinstance(module, BaseTunerLayer)}


def _forward(transformer):
    """One transformer step on fixed random inputs (64 x 64 latents of 4 channels, 3 text tokens)."""
    g = torch.Generator().manual_seed(0)
    config = transformer.config
    with torch.no_grad():
        return transformer(hidden_states=torch.randn(1, 16, config.in_channels, generator=g),
                           encoder_hidden_states=torch.randn(1, 3, config.joint_attention_dim, generator=g),
                           encoder_hidden_states_mask=None, timestep=torch.tensor([0.5]), guidance=None,
                           img_shapes=[[(1, 4, 4)]], return_dict=False)[0]


def _unfused(pipe, specs):
    """The transformer's output with ``specs`` run by peft beside the weights, as before fusing existed."""
    pipe.set_loras(specs)
    pipe.unfuse_lora()
    try:
        return _forward(pipe.transformer)
    finally:
        pipe.set_loras([])


def test_loras_are_fused_and_switching_lists_or_weights_round_trips(pipe, tmp_path):
    a, b = kohya(pipe, tmp_path / "a.safetensors"), lightx2v(pipe, tmp_path / "b.safetensors")
    first, second = [LoraSpec(a, 1.0), LoraSpec(b, 0.5)], [LoraSpec(b, 0.25), LoraSpec(a, -1.0)]
    pipe.set_loras([LoraSpec(a, 0.0)])  # loads both adapters once, so the snapshot below is of the bare weights
    pipe.set_loras([LoraSpec(b, 0.0)])
    pipe.set_loras([])
    weights, alone = _base_weights(pipe.transformer), _forward(pipe.transformer)
    expected = [_unfused(pipe, specs) for specs in (first, second)]
    for specs, reference in zip((first, second), expected, strict=True):  # the switch happens while fused
        names = pipe.set_loras(specs)
        assert lora_module.fused_adapters(pipe.transformer) == set(names)
        out = _forward(pipe.transformer)
        assert torch.allclose(out, reference, atol=TOL, rtol=0) and not torch.allclose(out, alone, atol=1e-3)
    for specs in ([LoraSpec(a, 0.0)], []):  # weight 0, then no list: the model alone
        pipe.set_loras(specs)
        assert all(torch.allclose(w, weights[n], atol=TOL, rtol=0) for n, w in _base_weights(pipe.transformer).items())
        assert torch.allclose(_forward(pipe.transformer), alone, atol=TOL, rtol=0)
    assert not lora_module.fused_adapters(pipe.transformer)


def test_an_unchanged_list_leaves_the_fused_weights_alone(pipe, tmp_path, monkeypatch):
    specs = [LoraSpec(kohya(pipe, tmp_path / "a.safetensors"), 0.75)]
    pipe.set_loras(specs)
    monkeypatch.setattr(type(pipe), "unfuse_lora", lambda *a, **k: pytest.fail("unfused for the same list"))
    monkeypatch.setattr(type(pipe), "fuse_lora", lambda *a, **k: pytest.fail("fused again for the same list"))
    pipe.set_loras(specs)  # what the engine does before every generation
    monkeypatch.undo()
    pipe.set_loras([])


@pytest.mark.parametrize("storage", ["fp8", "group-offload"])
def test_loras_run_unfused_where_the_weights_cannot_take_them(tiny_stock_dir, tmp_path, caplog, storage):
    import logging

    from diffusers.hooks import apply_group_offloading

    from squeeze_studio.memory.apply import store_in_fp8

    pipe = SqueezePipeline.from_pretrained(str(tiny_stock_dir))
    path = kohya(pipe, tmp_path / "a.safetensors")
    if storage == "fp8":
        store_in_fp8(pipe.transformer)
    else:
        apply_group_offloading(pipe.transformer, onload_device=torch.device("cpu"), offload_type="block_level",
                               num_blocks_per_group=1)
    with caplog.at_level(logging.INFO, logger=lora_module.__name__):
        names = pipe.set_loras([LoraSpec(path, 1.0)])
        pipe.set_loras([LoraSpec(path, 0.5)])
    assert not lora_module.fused_adapters(pipe.transformer) and pipe.transformer.active_adapters() == names
    lines = [r.getMessage() for r in caplog.records if "unfused" in r.getMessage()]
    reason = "float8_e4m3fn" if storage == "fp8" else "group offloading"
    assert len(lines) == 1 and reason in lines[0], lines


@pytest.mark.slow
def test_after_switching_the_image_equals_a_fresh_load_with_the_new_list(pipe, tiny_stock_dir, tmp_path):
    a, b = kohya(pipe, tmp_path / "a.safetensors"), lightx2v(pipe, tmp_path / "b.safetensors")
    new = [LoraSpec(b, 0.25), LoraSpec(a, -1.0)]
    pipe.set_loras([LoraSpec(a, 1.0), LoraSpec(b, 0.5)])
    run(pipe)
    pipe.set_loras(new)
    try:
        switched = run(pipe)
    finally:
        pipe.set_loras([])
    fresh = SqueezePipeline.from_pretrained(str(tiny_stock_dir))
    fresh.set_progress_bar_config(disable=True)
    fresh.set_loras(new)
    assert np.allclose(switched, run(fresh), atol=TOL, rtol=0)
