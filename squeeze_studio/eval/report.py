"""Writing the report: strict JSON (NaN and infinities become null) and a compact markdown table.

Report layout (``evaluate.evaluate``): ``settings`` [{name, label, tau1, tau2, stages}], ``results``
{setting name: {synth, dreambench, seconds_per_image, seconds_per_image_median}}, ``baselines``
{copy_reference | target: {synth, dreambench}}, ``counts``, ``generation``, ``timing``, ``examples``
(one small record per example with every method's scores). ``synth`` blocks come from
``synth_metrics.aggregate``, ``dreambench`` blocks from ``dreambench.aggregate``; either is null when
the dataset or the encoders do not allow it.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from .intervals import format_interval


def json_safe(value):
    """``value`` with numpy scalars as Python numbers, tuples as lists and non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(report: dict, path: str | os.PathLike) -> Path:
    """Write ``report`` atomically (a partial file never replaces a good one); returns the path."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ValueError(f"folder for --json not found: {path.parent}")
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _with_interval(synth: dict, metric: str, value, digits: int) -> str:
    """``value [low, high]``: the mean with its bootstrap 95 % interval over examples (``intervals``)."""
    text = _fmt(value, digits)
    return text if text == "-" else text + format_interval((synth.get("ci95") or {}).get(metric), digits)


def _row(name: str, block: dict, seconds) -> dict[str, str]:
    row = {"setting": name}
    synth, db = block.get("synth"), block.get("dreambench")
    if synth:
        row.update({
            "subject PSNR [95 % CI]": _with_interval(synth, "subject_psnr", synth["subject_psnr"], 2),
            "aligned PSNR": _fmt(synth["aligned_subject_psnr"], 2),
            "PSNR": _fmt(synth["psnr"], 2),
            "id top-1": _with_interval(synth, "identity_top1", synth["identity_retrieval"]["top1"], 3),
            "adherence": _with_interval(synth, "adherence_instructed", synth["adherence_instructed"], 3),
            "orient. (changed)": _with_interval(synth, "orientation_changed", synth["orientation_changed"]["accuracy"],
                                                2),
            "copy-paste": _with_interval(synth, "copy_paste", synth["copy_paste"]["rate"], 3),
        })
    if db:
        row.update({k: _fmt(db.get(k), 4) for k in ("dino", "clip_i", "clip_t") if k in db})
    row["s/img"] = _fmt(seconds, 2)
    return row


def markdown_table(report: dict) -> str:
    """One row per setting and per baseline; the columns the data allowed."""
    labels = {s["name"]: s["label"] for s in report["settings"]}
    rows = [_row(labels[name], block, block.get("seconds_per_image")) for name, block in report["results"].items()]
    rows += [_row(f"baseline: {name}", block, None) for name, block in report["baselines"].items()]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row.get(c, "-") for c in columns) + " |" for row in rows]
    counts = report["counts"]
    chance = None
    first = next(iter(report["results"].values()))
    if first.get("synth"):
        chance = first["synth"]["identity_retrieval"]["chance"]
    note = f"{counts['examples']} examples, {counts['synth_examples']} with SynthSubjects truth"
    if chance is not None:
        note += f"; identity retrieval chance {chance:.2f}"
    return "\n".join(lines) + f"\n\n{note}; MLLM runs: {counts['mllm_runs']}"
