"""Every memory mode runs the tiny models on the CPU and gives the image ``full`` gives (diffusers' hooks with the
CPU as both devices: the same arithmetic), reading only weights it put on the compute device (the residency
tracker, ``testing/residency.py``; fp8 storage, previews and tiling in ``test_residency.py``); fp8 weights give what
fp8-rounded weights give."""
import numpy as np
import pytest
import torch

from squeeze_studio.engine import Engine, EngineError
from squeeze_studio.events import ImageResult
from squeeze_studio.memory.apply import check_supported, load_transformer
from squeeze_studio.request import GenerationRequest
from squeeze_studio.testing.residency import track_residency

ONE_CARD = ["model-offload", "group-offload", "sequential"]


@pytest.fixture(scope="module")
def request_(reference_files):
    return GenerationRequest(instruction="a toy on a beach", references=reference_files, num_inference_steps=3,
                             tau1=0.95, tau2=0.5, guidance_scale=2.5, width=64, height=64, seed=3)


def image(engine, request) -> np.ndarray:
    results = [e for e in engine.generate(request) if isinstance(e, ImageResult)]
    return np.asarray(results[0].image).astype(int)


@pytest.fixture(scope="module")
def full_images(tiny_model_dir, tiny_stock_dir, request_):
    images = {}
    for kind, folder in (("squeeze", tiny_model_dir), ("stock", tiny_stock_dir)):
        with track_residency() as tracker:
            images[kind] = image(Engine(folder, device="cpu", memory="full"), request_)
        assert tracker.reads > 100
    return images


# A stock base adds the identity connector and a preview map fitted on first use (8 s a run here: it encodes
# its references at 1024 x 1024), so it runs under one mode of each hook system: accelerate's and diffusers'.
CASES = [("squeeze", mode) for mode in ONE_CARD] + [("stock", "model-offload"), ("stock", "sequential")]


@pytest.mark.parametrize(("kind", "mode"), CASES)
def test_each_mode_gives_the_full_image(mode, kind, tiny_model_dir, tiny_stock_dir, request_, full_images):
    with track_residency() as tracker:  # a weight the mode never put on the compute device fails the run
        engine = Engine(tiny_model_dir if kind == "squeeze" else tiny_stock_dir, device="cpu", memory=mode)
        first = image(engine, request_)
        again = image(engine, request_)  # hooks re-armed, cached encoding: still the same
    assert engine.memory_mode == mode and engine.plan.mode == mode and tracker.reads > 100
    assert np.array_equal(first, full_images[kind]) and np.array_equal(again, first)


def test_fp8_weights_are_bf16_compute_on_fp8_rounded_weights(tiny_model_dir, request_, full_images):
    engine = Engine(tiny_model_dir, device="cpu", weights="fp8")
    assert torch.float8_e4m3fn in {p.dtype for p in engine.pipe.transformer.parameters()}
    assert engine.pipe.transformer.dtype == torch.float32  # the compute dtype on the CPU
    fp8 = image(engine, request_)
    rounded = Engine(tiny_model_dir, device="cpu")
    with torch.no_grad():
        for mine, stored in zip(rounded.pipe.transformer.parameters(), engine.pipe.transformer.parameters(),
                                strict=True):
            mine.copy_(stored.to(mine.dtype))
    assert np.array_equal(fp8, image(rounded, request_))
    assert np.abs(fp8 - full_images["squeeze"]).max() <= 8  # of 255: fp8 storage moves the image only slightly
    offloaded = Engine(tiny_model_dir, device="cpu", weights="fp8", memory="model-offload")  # the 24 GB recipe
    assert np.array_equal(image(offloaded, request_), fp8)


def test_a_single_file_transformer_loads_in_place_of_the_folders(tmp_path, tiny_model_dir, request_, full_images):
    from safetensors.torch import save_file

    full = Engine(tiny_model_dir, device="cpu")
    path = tmp_path / "transformer.safetensors"
    save_file({k: v.contiguous() for k, v in full.pipe.transformer.state_dict().items()}, path)
    assert np.array_equal(image(Engine(tiny_model_dir, device="cpu", weights=str(path)), request_),
                          full_images["squeeze"])


def test_vae_inputs_go_where_the_offload_hook_runs_the_vae(references):
    """Under offload the VAE's weights wait on the CPU until its hook moves them, so ``vae.device`` is the CPU;
    its inputs must go to the hook's execution device. "meta" stands in for a GPU."""
    from squeeze_studio.testing.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline()
    pipe.enable_model_cpu_offload(device="cpu")
    pipe.vae._hf_hook.execution_device = torch.device("meta")
    seen = []

    def encode(pixels, *args, **kwargs):
        seen.append(pixels.device)
        raise StopIteration

    pipe.vae.encode = encode
    with pytest.raises(StopIteration):
        pipe.backbone.encode_references(references[:1], 64 * 64)
    assert seen == [torch.device("meta")] and pipe.vae.device == torch.device("cpu")


def test_modes_this_machine_cannot_run_are_one_line(tiny_model_dir):
    with pytest.raises(ValueError, match="saves nothing on Apple silicon"):
        check_supported("model-offload", "mps", None)
    with pytest.raises(ValueError, match="fp8 is not supported on Apple MPS"):
        check_supported("full", "mps", "fp8")
    with pytest.raises(ValueError, match="int8 needs a CUDA GPU"):
        check_supported("full", "cpu", "int8")
    if torch.cuda.device_count() < 2:
        with pytest.raises(EngineError, match="multi-gpu needs two or more CUDA GPUs"):
            Engine(tiny_model_dir, device="cpu", memory="multi-gpu")
    with pytest.raises(EngineError, match="takes fp8, int8, nf4 or a .gguf"):
        Engine(tiny_model_dir, device="cpu", weights="fp4")
    with pytest.raises(EngineError, match=r"^device cuda:7 is not available here \(available: .*cpu\)$"):
        Engine(tiny_model_dir, device="cuda:7")


def test_quantized_weights_need_their_library(tiny_model_dir):
    from diffusers.utils import is_bitsandbytes_available

    if is_bitsandbytes_available():
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(ValueError, match=r"nf4 needs bitsandbytes: pip install 'squeeze-studio\[gpu\]'"):
        load_transformer(tiny_model_dir, "QwenImageTransformer2DModel", "nf4", torch.bfloat16)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="multi-gpu needs two CUDA GPUs; this machine has fewer")
def test_multi_gpu_gives_the_full_image(tiny_stock_dir, request_):
    full = image(Engine(tiny_stock_dir, device="cuda", memory="full"), request_)
    spread = image(Engine(tiny_stock_dir, device="cuda", memory="multi-gpu"), request_)
    assert np.abs(spread - full).max() <= 2  # bf16 on both: only the order of reductions may differ
