"""Multi-stage denoising: which conditioning streams each step sees."""
from .schedule import BOUNDARY_TOLERANCE, Stage, StagePlan, VaeFocusedReading, stage_at

__all__ = ["BOUNDARY_TOLERANCE", "Stage", "StagePlan", "VaeFocusedReading", "stage_at"]
