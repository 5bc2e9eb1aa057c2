"""Put a memory mode and a weight format into effect, with what diffusers and accelerate provide (no offload or
quantization of our own). Imports torch.

- ``full``: ``pipe.to(device)``.
- ``model-offload``: ``enable_model_cpu_offload``: the pipeline's ``model_cpu_offload_seq`` moves one whole
  component to the GPU when it runs (the MLLM leaves when the connector starts; a cached encoding never
  brings it back).
- ``group-offload``: diffusers group offloading, prefetching the next group on a CUDA stream: the transformer
  block by block, the MLLM layer by layer (its top level has no block list); VAE, connector and preview map
  stay on the GPU (small, used every generation).
- ``sequential``: the same hooks layer by layer for every component, except one that holds an
  ``nn.MultiheadAttention`` (the DLA connector): that reads its output projection's weights without calling it, so
  layer-by-layer hooks would never bring them to the GPU; such a component is one group, on the GPU while it runs
  (``reads_children_directly``; the residency harness in ``testing/residency.py`` found it). (Accelerate's
  ``enable_sequential_cpu_offload`` would park the weights on the meta device, where the MLLM encoder reads
  its input device from.)
- ``multi-gpu``: components spread over the cards by ``from_pretrained(device_map="balanced")``; the ones made in
  memory (a stock base's connector) get accelerate's device hooks on the card diffusers assigned them.

The VAE decodes in tiles for large outputs in every mode (``plan.vae_tiling``, set per request by the engine).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .devices import device_kind
from .modes import MEMORY_MODES, WEIGHT_FORMATS


def check_supported(mode: str, device: str, weights: str | None) -> None:
    """``ValueError`` with one line for a mode or weight format this device cannot run ("auto" picks only
    modes the device can)."""
    kind = device_kind(device)
    if mode not in MEMORY_MODES:
        raise ValueError(f"unknown memory mode {mode!r}; choose one of {', '.join(MEMORY_MODES)}")
    if kind == "mps" and mode not in ("auto", "full"):
        raise ValueError(f"--memory {mode} saves nothing on Apple silicon, whose GPU shares the machine's memory; "
                         "use --memory full")
    if mode == "multi-gpu" and torch.cuda.device_count() < 2:
        raise ValueError(f"--memory multi-gpu needs two or more CUDA GPUs (found {torch.cuda.device_count()})")
    if weights in ("int8", "nf4") and kind != "cuda":
        raise ValueError(f"--weights {weights} needs a CUDA GPU")
    if weights == "fp8" and kind == "mps":
        raise ValueError("--weights fp8 is not supported on Apple MPS")
    if weights and weights not in WEIGHT_FORMATS and not Path(weights).expanduser().is_file():
        raise ValueError(f"--weights takes {', '.join(WEIGHT_FORMATS)} or a .gguf / .safetensors transformer file "
                         f"(got {weights})")


def store_in_fp8(transformer) -> None:
    """Keep ``transformer``'s weights in float8 and cast each layer to its dtype as it runs (diffusers' layerwise
    casting; norms and embeddings keep the dtype). After an add-on's LoRA is loaded, so its layers are cast too."""
    transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=transformer.dtype)


def load_transformer(folder: Path, class_name: str, weights: str, dtype: torch.dtype):
    """The transformer loaded on its own, to hand to ``from_pretrained``: quantized while loading (``int8`` /
    ``nf4``, by bitsandbytes, or torchao for int8, through diffusers), or from a single file with
    ``from_single_file`` (a GGUF file stays quantized and is dequantized layer by layer)."""
    import diffusers

    cls = getattr(diffusers, class_name)
    if weights in ("int8", "nf4"):
        return cls.from_pretrained(folder, subfolder="transformer", torch_dtype=dtype, use_safetensors=True,
                                   local_files_only=True, quantization_config=_quantization_config(weights, dtype))
    path = os.fspath(Path(weights).expanduser())
    config = None
    if path.endswith(".gguf"):
        from diffusers import GGUFQuantizationConfig

        config = GGUFQuantizationConfig(compute_dtype=dtype)
    return cls.from_single_file(path, config=os.fspath(folder), subfolder="transformer", torch_dtype=dtype,
                                local_files_only=True, quantization_config=config)


def _quantization_config(weights: str, dtype: torch.dtype):
    from diffusers.utils import is_bitsandbytes_available, is_torchao_available

    if is_bitsandbytes_available():
        from diffusers import BitsAndBytesConfig

        if weights == "int8":
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
    if weights == "int8" and is_torchao_available():
        from diffusers import TorchAoConfig
        from torchao.quantization import Int8WeightOnlyConfig

        return TorchAoConfig(Int8WeightOnlyConfig())
    needs = "bitsandbytes or torchao" if weights == "int8" else "bitsandbytes"
    raise ValueError(f"--weights {weights} needs {needs}: pip install 'squeeze-studio[gpu]'")


def apply_memory_mode(pipe, mode: str, device: str, low_cpu_mem_usage: bool = False) -> None:
    """Place ``pipe`` (loaded on the CPU, or by a balanced device map for ``multi-gpu``) for ``mode``.
    ``low_cpu_mem_usage`` (``MemoryPlan.low_cpu_mem_usage``, where RAM is short): the streamed modes pin each
    group as it moves instead of keeping a page-locked copy of every weight."""
    if mode == "full":
        pipe.to(device)
    elif mode == "model-offload":
        pipe.enable_model_cpu_offload(device=device)
    elif mode in ("group-offload", "sequential"):
        from diffusers.hooks import apply_group_offloading

        onload = torch.device(device)
        use_stream = onload.type == "cuda"
        streamed = dict(onload_device=onload, offload_device=torch.device("cpu"), use_stream=use_stream,
                        low_cpu_mem_usage=low_cpu_mem_usage and use_stream)
        if mode == "sequential":
            whole = [name for name, module in pipe.components.items() if reads_children_directly(module)]
            pipe.enable_group_offload(offload_type="leaf_level", exclude_modules=whole, **streamed)
            for name in whole:  # no block lists at their top level: one group, onloaded while the module runs
                apply_group_offloading(getattr(pipe, name), offload_type="block_level", num_blocks_per_group=1,
                                       **streamed)
            return
        pipe.transformer.enable_group_offload(offload_type="block_level", num_blocks_per_group=1, **streamed)
        apply_group_offloading(pipe.text_encoder, offload_type="leaf_level", **streamed)
        for name in ("vae", "connector", "preview_projection"):
            if getattr(pipe, name, None) is not None:
                getattr(pipe, name).to(onload)
    else:  # multi-gpu
        from accelerate import dispatch_model

        for name, module in pipe.components.items():
            if isinstance(module, torch.nn.Module) and not hasattr(module, "_hf_hook"):
                card = (pipe.hf_device_map or {}).get(name, 0)
                dispatch_model(module, device_map={"": card}, force_hooks=True)


def reads_children_directly(module) -> bool:
    """Whether ``module`` holds an ``nn.MultiheadAttention``, whose forward reads ``out_proj``'s weight and bias
    without calling ``out_proj``: leaf-level offload hooks never onload them (the DLA connector's LAP blocks)."""
    return isinstance(module, torch.nn.Module) and any(
        isinstance(m, torch.nn.MultiheadAttention) for m in module.modules())


def cuda_devices(mode: str, device: str) -> list[torch.device]:
    """The CUDA devices ``mode`` computes on (to measure their peaks); empty off CUDA."""
    if device_kind(device) != "cuda":
        return []
    if mode == "multi-gpu":
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    return [torch.device(device)]
