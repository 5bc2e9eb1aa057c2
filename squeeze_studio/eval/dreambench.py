"""DreamBench metrics with encoders the user has locally: DINO, CLIP-I and CLIP-T.

- DINO: cosine similarity of the output's and each reference's image embedding from a transformers
  ViT / Dinov2 ``AutoModel`` folder (embedding = the CLS token of the last hidden state, which is what
  DINO was trained to make meaningful; ViT's extra pooler is not part of DINO checkpoints), averaged
  over the references.
- CLIP-I: the same with a ``CLIPModel``'s projected image embeddings.
- CLIP-T: cosine of the output's CLIP image embedding and the instruction's CLIP text embedding
  (the text truncated to the model's context length).

Works on any JSONL dataset: only the references and the instruction are used.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import first_line

METRICS = ("dino", "clip_i", "clip_t")



def _folder(path: str | os.PathLike, what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"{what} model folder not found: {folder}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"not a transformers model folder (no config.json): {folder}")
    return folder


def _load(path: str | os.PathLike, what: str, model_class, processor_class, device: str) -> tuple:
    """Model and processor from a local folder. Weights the checkpoint lacks would be random and the
    metric meaningless, so they are an error (one line), like any loader failure."""
    folder = _folder(path, what)
    try:
        model, info = model_class.from_pretrained(folder, local_files_only=True, output_loading_info=True)
        processor = processor_class.from_pretrained(folder, local_files_only=True)
    except Exception as error:  # any loader failure is a bad folder to the user
        raise ValueError(f"cannot load {what} model from {folder}: {first_line(error)}") from None
    # ViT's pooler is not part of DINO checkpoints (transformers warns about it) and is not used here.
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith("pooler.")]
    if missing:
        raise ValueError(f"cannot load {what} model from {folder}: {len(missing)} weights missing "
                         f"(is it a {what} checkpoint? model_type {model.config.model_type!r})")
    return model.eval().to(device), processor


def _features(output) -> torch.Tensor:
    """``get_*_features`` returns a tensor in transformers 4 and an output with the projection in
    ``pooler_output`` in transformers 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


@dataclass
class ReferenceEmbeddings:
    """Unit embeddings of one example's references: (R, d) per encoder, None when it is not loaded."""

    dino: torch.Tensor | None
    clip: torch.Tensor | None


class DreamBenchScorer:
    """Loads the encoders once; ``references`` embeds an example's references (once per example),
    ``score`` scores any number of outputs against them."""

    def __init__(self, dino: str | os.PathLike | None = None, clip: str | os.PathLike | None = None,
                 device: str = "cpu"):
        from transformers import AutoImageProcessor, AutoModel, AutoProcessor, CLIPModel  # slow: not at import

        if dino is None and clip is None:
            raise ValueError("DreamBench metrics need --dino and/or --clip")
        self.device = device
        self.dino = self.dino_processor = self.clip = self.clip_processor = None
        if dino is not None:
            self.dino, self.dino_processor = _load(dino, "DINO", AutoModel, AutoImageProcessor, device)
        if clip is not None:
            self.clip, self.clip_processor = _load(clip, "CLIP", CLIPModel, AutoProcessor, device)

    @property
    def metrics(self) -> tuple[str, ...]:
        return (("dino",) if self.dino is not None else ()) + (("clip_i", "clip_t") if self.clip is not None else ())

    # -- embeddings (unit length) -----------------------------------------------------------------------
    @torch.no_grad()
    def _dino_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.dino_processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        return _unit(self.dino(pixel_values=pixels).last_hidden_state[:, 0])

    @torch.no_grad()
    def _clip_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        pixels = self.clip_processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        return _unit(_features(self.clip.get_image_features(pixel_values=pixels)))

    @torch.no_grad()
    def _clip_text(self, text: str) -> torch.Tensor:
        length = self.clip.config.text_config.max_position_embeddings
        tokens = self.clip_processor(text=[text], return_tensors="pt", padding=True, truncation=True,
                                     max_length=length)
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return _unit(_features(self.clip.get_text_features(**tokens)))

    def references(self, images: Sequence[Image.Image]) -> ReferenceEmbeddings:
        return ReferenceEmbeddings(self._dino_images(images) if self.dino is not None else None,
                                   self._clip_images(images) if self.clip is not None else None)

    def score(self, outputs: Sequence[Image.Image], refs: ReferenceEmbeddings, instruction: str) -> list[dict]:
        """{"dino", "clip_i", "clip_t"} (those whose encoder is loaded) for each output, in [-1, 1]."""
        scores: list[dict] = [{} for _ in outputs]
        if self.dino is not None:
            for s, v in zip(scores, (self._dino_images(outputs) @ refs.dino.T).mean(dim=1).tolist(), strict=True):
                s["dino"] = v
        if self.clip is not None:
            images = self._clip_images(outputs)
            text = self._clip_text(instruction)
            for s, i, t in zip(scores, (images @ refs.clip.T).mean(dim=1).tolist(), (images @ text.T)[:, 0].tolist(),
                               strict=True):
                s["clip_i"], s["clip_t"] = i, t
        return scores


def aggregate(scores: Sequence[dict]) -> dict:
    """Means over outputs: {"n", "dino", "clip_i", "clip_t"} (the metrics present)."""
    out: dict = {"n": len(scores)}
    for key in METRICS:
        values = [s[key] for s in scores if key in s]
        if values:
            out[key] = float(np.mean(values))
    return out
