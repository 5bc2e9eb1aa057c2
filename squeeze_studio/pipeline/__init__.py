"""The diffusers-style SqueezePipeline."""
from .loras import LoraSpec
from .pipeline_squeeze import SqueezePipeline, SqueezePipelineOutput, StepUpdate

__all__ = ["LoraSpec", "SqueezePipeline", "SqueezePipelineOutput", "StepUpdate"]
