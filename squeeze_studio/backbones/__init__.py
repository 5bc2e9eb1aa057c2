"""Backbone adapters: what differs between diffusion families, behind one interface."""
from .base import BackboneAdapter, Conditioning, ReferenceTokens
from .qwen_image import QwenImageAdapter

ADAPTERS = {"qwen_image_edit_plus": QwenImageAdapter}


def make_adapter(name: str, **components) -> BackboneAdapter:
    try:
        return ADAPTERS[name](**components)
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "BackboneAdapter", "Conditioning", "ReferenceTokens", "make_adapter"]
