"""Multi-stage denoising: which conditioning streams each step sees."""
from .schedule import Stage, StagePlan

__all__ = ["Stage", "StagePlan"]
