"""Where models come from: folders, the Hugging Face cache, add-ons, stage defaults and the model manager.

Plain Python at import (no torch): the window and the CLI resolve and check a model before torch loads.
See docs/models.md.
"""
