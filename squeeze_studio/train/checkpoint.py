"""Resumable progress for a training stage: accelerate's state plus a small JSON of where we are.

Checkpoints hold what training changes: the trainable parameters (and buffers) of each prepared model, the
optimiser and the RNG states, not the frozen weights, which the next run loads from the base again (a LoRA
run on the 20B transformer saves megabytes, not 40 GB). A checkpoint that lacks one of this run's trainable
parameters is refused rather than half-loaded."""
from __future__ import annotations

import json
import os
from pathlib import Path


def _trained_names(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad} | {n for n, _ in model.named_buffers()}


def _keep_trained(models, weights, output_dir) -> None:
    """accelerate save-state pre-hook: drop frozen weights from each model's state dict (in place)."""
    for i, (model, state) in enumerate(zip(models, weights, strict=False)):
        keep = _trained_names(model)
        weights[i] = {k: v for k, v in state.items() if k in keep}


def _check_matches(models, input_dir) -> None:
    """accelerate load-state pre-hook: the checkpoint holds every trainable parameter of this run and nothing
    this run's models lack (a checkpoint of another LoRA configuration is refused, not half-loaded)."""
    from safetensors import safe_open

    for i, model in enumerate(models):
        path = Path(input_dir) / ("model.safetensors" if i == 0 else f"model_{i}.safetensors")
        if not path.is_file():  # FSDP and DeepSpeed checkpoint their own way
            continue
        with safe_open(str(path), framework="pt") as f:
            saved = set(f.keys())
        missing = sorted({n for n, p in model.named_parameters() if p.requires_grad} - saved)
        unknown = sorted(saved - {n for n, _ in model.named_parameters()} - {n for n, _ in model.named_buffers()})
        if missing or unknown:
            what = f"lacks {missing[0]}" if missing else f"holds {unknown[0]}, which this run does not have"
            raise ValueError(f"the checkpoint in {input_dir} was made by another configuration (it {what}); "
                             "remove it to start over")


class StageProgress:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.folder / "state"
        self._file = self.folder / "progress.json"
        self.data = json.loads(self._file.read_text()) if self._file.is_file() else {"step": 0, "seconds": 0.0}
        self.main = True  # only the main process writes the JSON (set by ``restore``)

    @property
    def done(self) -> bool:
        return bool(self.data.get("done"))

    def save(self, accelerator, **fields) -> None:
        """Write the optimiser/model/RNG state, then the JSON (atomically), so a crash between the two
        resumes from the previous complete checkpoint."""
        accelerator.save_state(str(self.state_dir))
        self.update(**fields)
        accelerator.wait_for_everyone()

    def update(self, **fields) -> None:
        self.data.update(fields)
        if not self.main:
            return
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        os.replace(tmp, self._file)

    def restore(self, accelerator) -> int:
        """Attach the trainable-only checkpoint hooks to ``accelerator`` and load the last checkpoint, if any;
        returns the step to resume from."""
        self.main = accelerator.is_main_process
        if not getattr(accelerator, "_squeeze_checkpoint_hooks", False):
            accelerator.register_save_state_pre_hook(_keep_trained)
            accelerator.register_load_state_pre_hook(_check_matches)
            accelerator._squeeze_checkpoint_hooks = True
        if self.state_dir.is_dir() and self.data.get("step", 0) > 0:
            accelerator.load_state(str(self.state_dir), strict=False)  # frozen weights are not in it
        return int(self.data.get("step", 0))
