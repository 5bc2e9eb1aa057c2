"""Everything frozen is computed once before training: VAE latents of targets and references, the
subject mask on the token grid, and the MLLM's all-layer states for the instruction, the negative
prompt (both read jointly with the references), the instruction read alone (no images: the "text" reading of
the VAE-focused steps, docs/DESIGN.md 2.5) and the null conditioning.

``encode_records`` keeps the encodings in memory (the demo model and the ablations, a few thousand
small examples); ``encodings_store`` writes them to disk and streams them (real backbones). Both go through
``encode_chunk`` and hand training an ``ExampleSource``.

References are encoded the way inference encodes them (``QwenImageAdapter.encode_references``): at their
own aspect ratio, about ``reference_area`` pixels. Targets are resized to ``size`` x ``size``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass
class EncodedExample:
    target: torch.Tensor  # (N, C*4) packed, normalised target latents
    references: torch.Tensor  # (N_ref, C*4) every reference's packed latents, concatenated
    grids: list  # per reference (1, rows, cols)
    subject: torch.Tensor  # (N,) share of each target token covered by the subject (0 without a mask)
    positive: torch.Tensor  # (L + 1, T, d) MLLM states (float32 in memory, bfloat16 on disk), instruction + refs
    positive_image: torch.Tensor  # (T,) bool image-token positions
    negative: torch.Tensor
    negative_image: torch.Tensor
    text: torch.Tensor | None = None  # the instruction read without the references (no image tokens)
    text_image: torch.Tensor | None = None


def bucket_key(grids) -> tuple:
    """Examples whose references have these grids can share a batch (equal reference sequence lengths)."""
    return tuple(tuple(int(v) for v in grid) for grid in grids)


class InMemoryExamples:
    """An ``ExampleSource`` over a list of ``EncodedExample``.

    An example source is what ``train_stage`` draws batches from: ``len``, ``bucket_keys()`` (one per example),
    ``load(indices)`` (the examples, materialised only for the batch) and ``null_states`` (the null
    conditioning's MLLM states, or ``None`` to compute them from the pipeline's MLLM)."""

    null_states = None

    def __init__(self, examples: list[EncodedExample]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def bucket_keys(self) -> list[tuple]:
        return [bucket_key(e.grids) for e in self.examples]

    def load(self, indices: list[int]) -> list[EncodedExample]:
        return [self.examples[i] for i in indices]


def as_source(examples):
    """A list of examples becomes an ``InMemoryExamples``; an example source passes through."""
    return InMemoryExamples(examples) if isinstance(examples, list | tuple) else examples


def _load(path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def packed_latents(adapter, images: list[Image.Image], size: int) -> list[torch.Tensor]:
    """Normalised packed latents (N, C*4) per image, each resized to ``size`` x ``size``, one image per VAE pass
    (a 1024 x 1024 encode holds a few GB of activations, beside the MLLM on the card)."""
    return [adapter.pack(adapter.normalised_latents([image], size, size))[0].float().cpu() for image in images]


def reference_latents(adapter, images: list[Image.Image], area: int) -> list[tuple[torch.Tensor, tuple]]:
    """Per image, (packed latents (N, C*4), grid (1, rows, cols)) at its own aspect ratio and about ``area``
    pixels, one image per VAE pass, as inference encodes references."""
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus import calculate_dimensions

    out = []
    for image in images:
        width, height = calculate_dimensions(area, image.width / image.height)
        latents = adapter.normalised_latents([image], height, width)
        out.append((adapter.pack(latents)[0].float().cpu(), (1, latents.shape[-2] // 2, latents.shape[-1] // 2)))
    return out


def subject_weights(mask_path, size: int, token: int) -> torch.Tensor:
    """Subject coverage of each packed token (``token`` x ``token`` pixels), row-major."""
    if mask_path is None:
        return torch.zeros((size // token) ** 2)
    with Image.open(mask_path) as image:
        mask = torch.from_numpy(np.asarray(image.convert("L").resize((size, size))) > 127).float()
    return F.avg_pool2d(mask[None, None], token).flatten()


def cast_states(states: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """MLLM states to the storage dtype, on the CPU; refuses values float16 cannot hold (Qwen's large
    activations reach past its 65504), where bfloat16 keeps float32's range."""
    if dtype == torch.float16 and states.abs().max() > torch.finfo(torch.float16).max:
        raise ValueError("MLLM states exceed float16's range: store them as bfloat16")
    return states.to(dtype).cpu()


@torch.no_grad()
def encode_chunk(pipe, records: list[dict], size: int, reference_area: int | None = None,
                 states_dtype: torch.dtype = torch.float16) -> list[EncodedExample]:
    """Encode a few records in one MLLM pass and one VAE pass per image, on whatever device the MLLM and the VAE
    are; the results are on the CPU."""
    adapter, encoder = pipe.backbone, pipe.encoder
    token = adapter.vae_scale_factor * 2
    area = reference_area or size * size
    refs = [[_load(p) for p in r["input_images"]] for r in records]
    shown = [[adapter.condition_image(img, pipe.config.condition_image_area) for img in imgs] for imgs in refs]
    instructions = [r["instruction"] for r in records]
    prompts = instructions + [" "] * len(records) + instructions
    states = encoder.encode(prompts, shown + shown + [[] for _ in records])
    targets = packed_latents(adapter, [_load(r["output_image"]) for r in records], size)
    flat = reference_latents(adapter, [img for imgs in refs for img in imgs], area)
    out, start = [], 0
    for i, record in enumerate(records):
        mine, start = flat[start : start + len(refs[i])], start + len(refs[i])
        references = (torch.cat([tokens for tokens, _ in mine]) if mine
                      else torch.zeros(0, targets[i].shape[-1]))
        positive, negative, text = states[i], states[len(records) + i], states[2 * len(records) + i]
        out.append(EncodedExample(
            target=targets[i], references=references, grids=[grid for _, grid in mine],
            subject=subject_weights(record.get("output_mask"), size, token),
            positive=cast_states(positive.hidden_states[0], states_dtype), positive_image=positive.image_mask[0].cpu(),
            negative=cast_states(negative.hidden_states[0], states_dtype), negative_image=negative.image_mask[0].cpu(),
            text=cast_states(text.hidden_states[0], states_dtype), text_image=text.image_mask[0].cpu(),
        ))
    return out


def null_states(pipe) -> torch.Tensor:
    """The null conditioning's (L + 1, T, d) MLLM states (the empty instruction, no images), on the CPU."""
    return pipe.encoder.encode([" "], [[]])[0].hidden_states[0].cpu()


def encode_records(pipe, records: list[dict], size: int, batch: int = 16, progress=None,
                   reference_area: int | None = None, states_dtype: torch.dtype = torch.float32
                   ) -> list[EncodedExample]:
    """Every record's encoding, in memory; float32 states by default, as inference computes them (the demo's
    small MLLM: about 0.3 MB per example)."""
    out = []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        out.extend(encode_chunk(pipe, chunk, size, reference_area, states_dtype))
        if progress is not None:
            progress(len(chunk))
    return out
