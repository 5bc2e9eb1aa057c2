"""Full-size component configs (no weights) of the backbones the registry knows, for memory plans made before
anything is downloaded and for full-size random-weight benchmarks.

``qwen-image-edit-plus/``: the shapes of ``Qwen/Qwen-Image-Edit-2509`` and ``-2511`` (same pipeline class and
sizes): a 20.43B-parameter ``QwenImageTransformer2DModel``, a 8.29B Qwen2.5-VL-7B, a 0.13B Qwen-Image VAE
(parameter counts of these configs built on the meta device).
"""
from pathlib import Path

QWEN_IMAGE_EDIT_PLUS = Path(__file__).resolve().parent / "qwen-image-edit-plus"
