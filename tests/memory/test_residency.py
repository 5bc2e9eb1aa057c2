"""Every memory mode puts on the compute device each weight it reads (``testing/residency.py``: a compute device
simulated on the CPU, where the modes' hooks otherwise move weights from the CPU to the CPU and hide a weight left
behind). Here: fp8 storage with previews and forced tiling; bf16 in every mode runs under the tracker in
``test_modes.py``, the training stage's encode pass and steps in ``tests/train/test_addon.py``."""
import functools

import pytest
import torch

from squeeze_studio.engine import Engine
from squeeze_studio.events import ImageResult, StepEvent
from squeeze_studio.memory.apply import apply_memory_mode
from squeeze_studio.request import GenerationRequest
from squeeze_studio.testing.residency import ResidencyError, track_residency

MODES = ["full", "model-offload", "group-offload", "sequential"]


@pytest.fixture(scope="module")
def request_(reference_files):
    return GenerationRequest(instruction="a toy on a beach", references=reference_files, num_inference_steps=3,
                             tau1=0.95, tau2=0.5, guidance_scale=2.5, width=64, height=64, seed=3)


def generate_tracked(model, request, mode, weights=None, addon=None):
    """One generation inside the tracker, previews on and the VAE decoding in 32-pixel tiles (forced: the tiny
    outputs are far below the size that tiles)."""
    with track_residency() as tracker:
        engine = Engine(model, addon=addon, device="cpu", memory=mode, weights=weights, previews=True)
        vae = engine.pipe.vae
        vae.enable_tiling = functools.partial(vae.enable_tiling, 32, 32, 16, 16)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("squeeze_studio.engine.vae_tiling", lambda height, width: True)
            events = list(engine.generate(request))
    assert vae.use_tiling
    assert all(e.preview is not None for e in events if isinstance(e, StepEvent))
    assert [type(e) for e in events][-1] is ImageResult
    assert tracker.reads > 100  # it checked the weights the run read
    return tracker


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_with_fp8_storage_places_every_weight_it_reads(mode, tiny_model_dir, request_):
    generate_tracked(tiny_model_dir, request_, mode, "fp8")


@pytest.mark.parametrize("offload_type", ["leaf_level", "block_level"])
def test_the_tracker_sees_a_weight_the_hooks_never_onload(offload_type):
    """nn.MultiheadAttention reads its output projection without calling it, so diffusers' leaf-level hooks never
    onload it (what ``--memory sequential`` did to the DLA connector before ``apply.reads_children_directly``);
    one group for the whole connector onloads it."""
    from diffusers.hooks import apply_group_offloading

    from squeeze_studio.dla import LayerConnector

    connector = LayerConnector(mode="dla", num_layers=3, hidden_size=16, num_heads=2, identity_init=False)
    states = torch.randn(1, 3, 5, 16)
    text = torch.tensor([[True, True, True, False, False]])
    with track_residency() as tracker:
        tracker.watch({"connector": connector})
        apply_group_offloading(connector, onload_device=torch.device("cpu"), offload_type=offload_type,
                               num_blocks_per_group=1)
        if offload_type == "leaf_level":
            with pytest.raises(ResidencyError, match=r"read connector\.\w+_lap\.blocks\.0\.attn\.out_proj"):
                connector(states, text, ~text)
        else:
            connector(states, text, ~text)
    assert tracker.reads > 0


def test_sequential_keeps_the_connector_in_one_group(tiny_model_dir):
    from squeeze_studio.pipeline import SqueezePipeline

    pipe = SqueezePipeline.from_pretrained(tiny_model_dir)
    apply_memory_mode(pipe, "sequential", "cpu")
    hooked = [name for name, m in pipe.connector.named_modules() if getattr(m, "_diffusers_hook", None)
              and m._diffusers_hook.get_hook("group_offloading") is not None]
    assert hooked == [""]  # the connector itself, not its leaves
    assert pipe.transformer.img_in._diffusers_hook.get_hook("group_offloading") is not None  # the rest: leaves


@pytest.mark.slow
@pytest.mark.parametrize("weights", [None, "fp8"])
@pytest.mark.parametrize("mode", MODES)
def test_a_stock_base_with_an_addon_places_every_weight_it_reads(mode, weights, tiny_stock_dir, tiny_addon,
                                                                   request_):
    generate_tracked(tiny_stock_dir, request_, mode, weights, addon=tiny_addon)


@pytest.fixture(scope="module")
def tiny_addon(tmp_path_factory, tiny_stock_dir):
    """A one-step add-on (connector + transformer LoRA) for the tiny stock base."""
    from squeeze_studio.cli import main
    from squeeze_studio.synth.dataset import make_dataset

    data = tmp_path_factory.mktemp("synth")
    make_dataset(data, 2, seed=0, split="train", max_refs=1)
    addon = tmp_path_factory.mktemp("addons") / "addon"
    assert main(["train", "stage", "--model", str(tiny_stock_dir), "--data", str(data), "--stage", "identity",
                 "--steps", "1", "--out", str(addon), "--lora-rank", "4", "--batch-size", "1", "--size", "64"]) == 0
    return addon
