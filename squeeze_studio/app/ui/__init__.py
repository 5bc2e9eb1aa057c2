"""Widgets only. Each binds to the model objects' signals; none reaches into another widget."""
