"""Squeeze Studio: subject-driven image generation (arXiv 2605.26111) as a library and a desktop app.

The heavy engine classes are exported lazily so that ``import squeeze_studio`` (which the window does
at start-up) never imports torch.
"""
from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "SqueezePipeline": "squeeze_studio.pipeline",
    "SqueezePipelineOutput": "squeeze_studio.pipeline",
    "LayerConnector": "squeeze_studio.dla",
    "LatentPreviewProjection": "squeeze_studio.backbones.preview",
    "JointMLLMEncoder": "squeeze_studio.mllm",
    "StagePlan": "squeeze_studio.stages",
}

__all__ = [*_LAZY, "GenerationRequest"]

from .request import GenerationRequest  # noqa: E402  (plain Python, cheap)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'squeeze_studio' has no attribute {name!r}")
