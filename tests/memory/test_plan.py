"""The memory plan: parameter counts against the models themselves, token counts against what the pipeline makes,
and the choices (auto, fits, the lighter mode) on given free memory. Plain Python, no GPU."""
import subprocess
import sys

import pytest
import torch

from squeeze_studio.hub.reference_configs import QWEN_IMAGE_EDIT_PLUS as REFERENCE
from squeeze_studio.hub.registry import KNOWN_MODELS
from squeeze_studio.memory import MEMORY_MODES, PLANNED_MODES, plan_memory
from squeeze_studio.memory.plan import ENCODING_CACHE_SIZE, MARGIN, lighter_mode
from squeeze_studio.memory.sizes import model_facts
from squeeze_studio.pipeline import SqueezePipeline

GIB = 2**30
ROOMY = dict(free_vram=200 * GIB, free_ram=500 * GIB, gpus=1)


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("kind", ["squeeze", "stock"])
def test_parameter_counts_are_the_loaded_models_own(kind, tiny_model_dir, tiny_stock_dir):
    folder = tiny_model_dir if kind == "squeeze" else tiny_stock_dir
    pipe = SqueezePipeline.from_pretrained(folder)
    weights = model_facts(folder).weights
    for role in ("transformer", "text_encoder", "vae"):
        assert weights[role].parameters == numel(getattr(pipe, role)), role
    # The connector (from its file, or the identity connector's formula for a stock base) and the preview map.
    small = numel(pipe.connector) + (numel(pipe.preview_projection) if pipe.preview_projection is not None else 0)
    assert weights["connector"].parameters == small
    transformer = weights["transformer"]
    assert transformer.largest_tensor == max(p.numel() for p in pipe.transformer.parameters())
    assert transformer.largest_block == max(numel(block) for block in pipe.transformer.transformer_blocks)
    assert transformer.outside_blocks == numel(pipe.transformer) - sum(
        numel(block) for block in pipe.transformer.transformer_blocks)


def test_an_addon_connector_replaces_the_base_one(tmp_path, tiny_stock_dir):
    from squeeze_studio.dla import LayerConnector
    from squeeze_studio.hub.defaults import PAPER_DEFAULTS
    from squeeze_studio.hub.resolve import resolve_model
    from squeeze_studio.pipeline.addon import save_addon

    pipe = SqueezePipeline.from_pretrained(tiny_stock_dir)
    pipe.connector = LayerConnector(mode="lap", num_layers=3, hidden_size=32, num_heads=2)
    addon = save_addon(pipe, tmp_path / "addon", resolve_model(tiny_stock_dir), PAPER_DEFAULTS)
    assert model_facts(tiny_stock_dir, addon).weights["connector"].parameters == numel(pipe.connector)


def test_token_counts_are_what_the_pipeline_makes(tiny_pipeline, tiny_model_dir, references):
    facts = model_facts(tiny_model_dir)  # tiny_pipeline's architecture, saved
    encoding = tiny_pipeline.encoder.encode(["a toy"], [references[:1]])[0]
    assert int(encoding.image_mask.sum()) == facts.image_tokens  # MLLM tokens per reference
    assert encoding.hidden_states.shape[1] == facts.mllm_layers + 1  # the all-layer stack
    latents = tiny_pipeline.backbone.prepare_latents(1, 64, 96, None, torch.float32, "cpu")
    assert latents.shape[1] == (64 // facts.size_multiple) * (96 // facts.size_multiple)  # target tokens
    tokens = tiny_pipeline.backbone.encode_references(references[:1], facts.reference_image_area).tokens
    assert tokens.shape[1] == facts.reference_image_area // facts.size_multiple**2  # a square reference's tokens


def test_the_reference_configs_are_the_real_architecture():
    """Meta-device builds of Qwen-Image-Edit-2509's configs: a 20.4B transformer (38 GiB in bf16), an 8.3B
    Qwen2.5-VL (15.4 GiB) and, built in memory for a stock base, a 0.8 GiB identity connector."""
    from squeeze_studio.pipeline.loading import identity_connector

    weights = model_facts(REFERENCE).weights
    assert round(weights["transformer"].parameters / 1e9, 1) == 20.4
    assert round(weights["transformer"].parameters * 2 / GIB) == 38
    assert round(weights["text_encoder"].parameters * 2 / GIB, 1) == 15.4
    with torch.device("meta"):
        assert weights["connector"].parameters == numel(identity_connector(REFERENCE))
    assert round(weights["connector"].parameters * 2 / GIB, 1) == 0.8


def test_the_registry_shows_what_the_plan_predicts():
    for model in KNOWN_MODELS:
        assert tuple(model.vram_gib) == PLANNED_MODES
        if model.repo_id:
            predicted = {mode: round(plan_memory(REFERENCE, mode, 1024, 1024, 2, "cuda", gpus=2, free_vram=0,
                                                 free_ram=0).vram_bytes / GIB, 1) for mode in PLANNED_MODES}
            assert model.vram_gib == predicted


def test_lighter_modes_need_less_and_fp8_halves_the_transformer():
    def vram(mode, **kwargs):
        return plan_memory(REFERENCE, mode, device="cuda", **ROOMY, **kwargs).vram_bytes

    assert vram("full") > vram("model-offload") > vram("group-offload") > vram("sequential")
    transformer = model_facts(REFERENCE).weights["transformer"].parameters
    assert vram("full") - vram("full", weights="fp8") == transformer  # 2 bytes -> 1 byte per parameter
    assert vram("model-offload", weights="fp8") < 22 * GIB  # what makes a 24 GB card enough


def test_bigger_outputs_and_more_references_need_more():
    def plan(**kwargs):
        return plan_memory(REFERENCE, "model-offload", device="cuda", **ROOMY, **kwargs)

    assert plan(height=1024, width=1024, references=3).vram_bytes > plan(height=1024, width=1024).vram_bytes
    assert plan(height=1536, width=1024).vram_bytes > plan(height=1024, width=1024).vram_bytes
    assert not plan(height=1024, width=1024).vae_tiling and plan(height=2048, width=2048).vae_tiling


def test_auto_takes_the_fastest_mode_that_fits_and_a_misfit_names_a_lighter_one():
    def plan(mode, free_gib, **kwargs):
        return plan_memory(REFERENCE, mode, device="cuda", free_vram=int(free_gib * GIB), free_ram=500 * GIB,
                           gpus=1, **kwargs)

    assert plan("auto", 80).mode == "full" and plan("auto", 80).fits
    assert plan("auto", 48).mode == "model-offload"
    assert plan("auto", 23.5).mode == "group-offload"
    assert plan("auto", 23.5, weights="fp8").mode == "model-offload"
    misfit = plan("full", 23.5)
    assert not misfit.fits and misfit.suggestion == "group-offload"
    assert misfit.summary().endswith("does not fit: try --memory group-offload")
    assert "\n" not in misfit.summary()
    assert plan("model-offload", 23.5, weights="fp8").fits
    short_of_ram = plan_memory(REFERENCE, "group-offload", device="cuda", free_vram=24 * GIB, free_ram=32 * GIB, gpus=1)
    assert not short_of_ram.fits and short_of_ram.suggestion == ""  # every mode keeps the weights in RAM


def test_after_running_out_of_memory_the_next_lighter_mode_is_named(tiny_model_dir):
    assert lighter_mode(REFERENCE, "full", free_vram=24 * GIB, free_ram=500 * GIB) == "group-offload"
    assert lighter_mode(tiny_model_dir, "full", free_vram=24 * GIB, free_ram=500 * GIB) == "model-offload"
    assert lighter_mode(tiny_model_dir, "group-offload", free_vram=24 * GIB, free_ram=500 * GIB) == "sequential"
    assert lighter_mode(tiny_model_dir, "sequential", free_vram=24 * GIB, free_ram=500 * GIB) == ""
    assert lighter_mode(tiny_model_dir, "full", device="cpu") == ""


def test_multi_gpu_is_per_card_and_needs_two():
    two = plan_memory(REFERENCE, "multi-gpu", device="cuda", free_vram=48 * GIB, free_ram=500 * GIB, gpus=2)
    one = plan_memory(REFERENCE, "multi-gpu", device="cuda", free_vram=48 * GIB, free_ram=500 * GIB, gpus=1)
    full = plan_memory(REFERENCE, "full", device="cuda", **ROOMY)
    transformer = model_facts(REFERENCE).weights["transformer"].parameters * 2
    assert transformer < two.vram_bytes < full.vram_bytes and two.fits and not one.fits


def test_on_the_cpu_everything_is_host_memory(tiny_model_dir):
    plan = plan_memory(tiny_model_dir, "auto", device="cpu", free_ram=500 * GIB)
    assert (plan.mode, plan.vram_bytes, plan.fits, plan.dtype) == ("full", 0, True, "fp32")
    assert plan.summary().startswith("full on cpu at 64x64, 2 references: ~")


def test_bad_requests_are_one_line(tiny_model_dir):
    with pytest.raises(ValueError, match="unknown memory mode 'turbo'"):
        plan_memory(tiny_model_dir, "turbo", device="cpu")
    with pytest.raises(ValueError, match="width must be a positive multiple of 16"):
        plan_memory(tiny_model_dir, "full", 64, 72, device="cpu")
    assert MEMORY_MODES[0] == "auto" and set(MEMORY_MODES[1:]) == set(PLANNED_MODES)


def test_the_plan_knows_the_pipelines_cache_size():
    from squeeze_studio.pipeline import pipeline_squeeze

    assert ENCODING_CACHE_SIZE == pipeline_squeeze.ENCODING_CACHE_SIZE


def test_planning_a_model_on_disk_imports_no_torch(tiny_model_dir):
    code = ("import sys; from squeeze_studio.memory import plan_memory, MEMORY_MODES, available_devices; "
            f"plan_memory({str(tiny_model_dir)!r}, 'model-offload', device='cuda', free_vram=2**30, free_ram=2**33, "
            "gpus=1).summary(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_squeeze_models_plan_prints_every_mode(capsys, tiny_model_dir):
    from squeeze_studio.cli import main

    assert main(["models", "plan", "qwen-image-edit-2509", "--device", "cuda:5"]) == 0  # not downloaded, no such GPU
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Qwen/Qwen-Image-Edit-2509 (not downloaded: its reference configs): 1024x1024, 2 references, "
                      "bf16 on cuda:5")
    assert out[1].startswith("parameters: transformer 20.43B, text_encoder 8.29B")
    rows = {line.split()[0]: line.split() for line in out[3:8]}
    assert list(rows) == list(PLANNED_MODES) and all(row[-1] == "?" for row in rows.values())
    assert rows["full"][1:3] == ["58.6", "GiB"] and rows["multi-gpu"][3:5] == ["per", "card"]
    assert out[-2] == "auto: chosen from the free VRAM when the model loads"
    assert main(["models", "plan", str(tiny_model_dir), "--device", "cpu", "--memory", "full", "--width", "32"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tiny-model: 32x64, 2 references, fp32 on cpu" and out[3].split()[:3] == ["full", "-", "2.0"]
    assert main(["models", "plan", "someone/unknown"]) == 2
    assert capsys.readouterr().err.startswith("error: someone/unknown is not in the Hugging Face cache")


def test_streamed_modes_count_the_page_locked_copies_and_fall_back_when_ram_is_short():
    def plan(mode, free_ram_gib, **kwargs):
        return plan_memory(REFERENCE, mode, device="cuda", free_vram=24 * GIB, free_ram=int(free_ram_gib * GIB),
                           gpus=1, **kwargs)

    transformer = model_facts(REFERENCE).weights["transformer"].parameters * 2  # bf16
    loaded = plan("model-offload", 500).ram_bytes  # accelerate's hooks pin nothing: the weights as loaded
    pinned = plan("group-offload", 500)
    # Block-level offload pins every transformer block before it lets go of the originals: both copies at once.
    assert pinned.ram_bytes - loaded >= transformer and not pinned.low_cpu_mem_usage
    short = plan("group-offload", pinned.ram_bytes * MARGIN / GIB - 1)
    assert short.fits and short.low_cpu_mem_usage and short.ram_bytes < pinned.ram_bytes
    assert "pinned as they move: RAM is short" in short.summary()
    # RAM gets the same 10 % margin as VRAM.
    assert not plan("sequential", plan("sequential", 500).ram_bytes * 1.05 / GIB).fits
    on_cpu = plan_memory(REFERENCE, "sequential", device="cpu", free_ram=500 * GIB)
    assert not on_cpu.low_cpu_mem_usage  # no CUDA stream, nothing pinned


def test_the_plans_choice_of_pinning_reaches_diffusers(monkeypatch):
    from types import SimpleNamespace

    import diffusers.hooks

    from squeeze_studio.memory.apply import apply_memory_mode

    seen = []
    module = SimpleNamespace(to=lambda device: None)
    transformer = SimpleNamespace(enable_group_offload=lambda **kwargs: seen.append(kwargs))
    pipe = SimpleNamespace(transformer=transformer, text_encoder=module, vae=module, connector=module,
                           preview_projection=None)
    monkeypatch.setattr(diffusers.hooks, "apply_group_offloading", lambda m, **kwargs: seen.append(kwargs))
    for low in (False, True):
        seen.clear()
        apply_memory_mode(pipe, "group-offload", "cuda", low_cpu_mem_usage=low)
        assert [(k["use_stream"], k["low_cpu_mem_usage"]) for k in seen] == [(True, low)] * 2
