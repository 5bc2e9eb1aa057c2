"""Evaluation (docs/DESIGN.md 4): a model on a JSONL dataset at one or more stage settings.

``data`` loads and checks the examples, ``runner`` generates outputs (fixed seeds, cached MLLM
encodings), ``synth_metrics`` scores them against SynthSubjects' exact targets, ``dreambench`` with
DINO / CLIP encoders, ``baselines`` gives the no-model outputs they are compared with, ``evaluate``
runs the loop, ``report`` writes JSON and a markdown table, ``figures`` draws the stage trade-off and
``cli`` is ``squeeze eval``. Only ``runner``, ``evaluate`` and ``dreambench`` import torch.
"""
