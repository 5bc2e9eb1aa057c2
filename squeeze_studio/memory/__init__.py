"""GPU memory: the memory modes, a memory plan before loading, and the devices present.

Importable without torch (the window reads plans from its GUI thread); ``memory.apply`` applies a mode to a
loaded pipeline and imports torch.
"""
from .devices import available_devices, default_device
from .modes import MEMORY_MODES, PLANNED_MODES, WEIGHT_FORMATS
from .plan import MemoryPlan, plan_memory

__all__ = ["MEMORY_MODES", "PLANNED_MODES", "WEIGHT_FORMATS", "MemoryPlan", "available_devices", "default_device",
           "plan_memory"]
