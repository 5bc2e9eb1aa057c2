"""Resumable progress for a training stage: accelerate's state plus a small JSON of where we are."""
from __future__ import annotations

import json
import os
from pathlib import Path


class StageProgress:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.folder / "state"
        self._file = self.folder / "progress.json"
        self.data = json.loads(self._file.read_text()) if self._file.is_file() else {"step": 0, "seconds": 0.0}

    @property
    def done(self) -> bool:
        return bool(self.data.get("done"))

    def save(self, accelerator, **fields) -> None:
        """Write the optimiser/model/RNG state, then the JSON (atomically), so a crash between the two
        resumes from the previous complete checkpoint."""
        accelerator.save_state(str(self.state_dir))
        self.update(**fields)

    def update(self, **fields) -> None:
        self.data.update(fields)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self._file)

    def restore(self, accelerator) -> int:
        if self.state_dir.is_dir() and self.data.get("step", 0) > 0:
            accelerator.load_state(str(self.state_dir))
        return int(self.data.get("step", 0))
