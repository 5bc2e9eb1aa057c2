"""Where models come from: folders, the Hugging Face cache, add-ons, stage defaults and the model manager.

Plain Python (no torch): the window and the CLI resolve and check a model before torch loads. Resolving is
layered, imports going one way: ``source`` (where the folder is) and ``defaults`` (stage defaults) -> ``addon``
(the add-on's config) -> ``resolve`` (``resolve_model`` -> ``ResolvedModel``). See docs/models.md.
"""
