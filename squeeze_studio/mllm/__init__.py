"""Joint MLLM encoding: instruction and reference images read together, every layer kept."""
from .encoder import QWEN_EDIT_TEMPLATE, JointMLLMEncoder, MLLMEncoding

__all__ = ["JointMLLMEncoder", "MLLMEncoding", "QWEN_EDIT_TEMPLATE"]
