"""The Squeeze Studio desktop window (PySide6).

Layers, krita-ai-diffusion style:

- ``model/``: observable state (subjects, controls, generation progress, history) and the actions on
  it. Widgets bind to these objects' change signals; no widget reaches into another.
- ``ui/``: widgets only.
- ``persistence/``: the user data folder, session autosave, the SQLite history index, subject libraries.
- ``worker.py``: the one long-lived worker in a ``QThread`` that owns the engine. It is the only code
  that touches the engine, and it imports torch lazily, inside that thread.
- ``thread_task.py``: short jobs beside it (listing, verifying, downloading, removing models for the Models
  dialog), each in a ``QThread`` of its own, so they never wait behind a generation.

Nothing in this package imports torch, diffusers or transformers at module level: the window must be
on screen before the engine loads.
"""
