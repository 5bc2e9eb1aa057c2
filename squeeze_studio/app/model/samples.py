"""The sample subjects that ship in ``resources/samples/``: what the window opens with on a first start, and what
File > Samples brings back.

Each sample is a SynthSubjects subject the demo model never saw in training, with 2-3 reference images and three
instructions the demo model was measured to follow well (``resources/samples/select_samples.py`` chose them and
``samples.json`` keeps the scores). Plain Python: read before the model loads.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

SAMPLES_ENV = "SQUEEZE_STUDIO_SAMPLES"
_REPO_SAMPLES = Path(__file__).resolve().parents[3] / "resources" / "samples"


@dataclass
class Sample:
    name: str
    references: list[str]            # absolute paths
    instructions: list[str]
    measured: list[dict] = field(default_factory=list)  # per instruction: adherence, aligned subject PSNR

    @property
    def available(self) -> bool:
        return bool(self.references) and all(Path(p).is_file() for p in self.references)


def samples_dir() -> Path:
    """``$SQUEEZE_STUDIO_SAMPLES`` if set, else ``resources/samples`` beside the package (a checkout, a bundle)."""
    override = os.environ.get(SAMPLES_ENV)
    return Path(override) if override else _REPO_SAMPLES


def load_samples(folder: Path | None = None) -> list[Sample]:
    """The samples listed in ``samples.json`` whose images are all present; [] when there are none."""
    folder = folder or samples_dir()
    try:
        manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for item in manifest.get("samples") or []:
        try:
            sample = Sample(str(item["name"]), [str(folder / p) for p in item["references"]],
                            [str(i) for i in item["instructions"]], list(item.get("measured") or []))
        except (KeyError, TypeError):
            continue
        if sample.available and sample.instructions:
            found.append(sample)
    return found


def apply_sample(studio, sample: Sample, instruction: int = 0) -> None:
    """Make ``sample`` the current subject (reusing an empty subject or one that already holds it) and put one of
    its suggested instructions in the editor. ``studio`` is a ``model.studio.Studio``."""
    subjects = studio.subjects
    existing = next((i for i, s in enumerate(subjects.subjects) if s.images == sample.references), None)
    if existing is not None:
        subjects.select(existing)
    elif not subjects.current.images:
        subjects.rename(subjects.current_index, sample.name)
        subjects.add_images(sample.references)
    else:
        subjects.add_subject(sample.name, sample.references)
    index = min(max(instruction, 0), len(sample.instructions) - 1)
    studio.controls.set("instruction", sample.instructions[index])
