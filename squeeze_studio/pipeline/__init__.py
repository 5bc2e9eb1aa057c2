"""The diffusers-style SqueezePipeline."""
from .pipeline_squeeze import SqueezePipeline, SqueezePipelineOutput, StepUpdate

__all__ = ["SqueezePipeline", "SqueezePipelineOutput", "StepUpdate"]
