"""Does the transformer use its reference VAE tokens? The demo model's v5 diagnosis (issue 24), as functions.

- ``copy_examples`` + ``probe_loss``: the copy probe. Each example's target *is* its reference (same pose, same
  place), read under the null conditioning, so the reference tokens are the only way to the target. After a
  few hundred training steps the loss with references should fall far below the loss without them; if it does
  not, the references do not reach the transformer in a usable form.
- ``AttentionMass``: per layer, the share of the target tokens' attention that goes to reference tokens, and to
  the reference token at the target token's own place (what copying needs).
- ``tokens_per_subject``: how many packed latent tokens a subject covers in targets and references.
- ``vae_ceiling``: the VAE's own reconstruction of subject pixels, the most any generation can carry.
- ``reference_gain``: the copy probe's ratio on real examples, where the subject moves as the instruction asks.

``benchmarks/demo_diagnosis.py`` runs them on the demo model (resources/demo-model/README.md,
"v5 diagnosis").
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..backbones import ReferenceTokens
from ..backbones.reference_bias import ReferenceBiasAttnProcessor
from ..synth.scene import Attributes, render_scene
from ..synth.subjects import make_subject
from .encode import EncodedExample, as_source, null_states, packed_latents


def coverage(mask: np.ndarray, token: int) -> torch.Tensor:
    """Share of each ``token`` x ``token`` pixel cell covered by the (H, W) bool ``mask``, row-major."""
    return F.avg_pool2d(torch.from_numpy(mask).float()[None, None], token).flatten()


def reference_scene(record: dict, size: int, which: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A SynthSubjects record's reference ``which``, rendered again with its subject mask: (image, mask)."""
    meta = record["meta"]
    return render_scene(make_subject(meta["subject_seed"]), Attributes.from_dict(meta["references"][which]), size)


def copy_examples(pipe, records: list[dict], size: int) -> list[EncodedExample]:
    """Copy-probe examples: target = the first reference, under the null conditioning (no instruction)."""
    adapter = pipe.backbone
    token = adapter.vae_scale_factor * 2
    null = null_states(pipe)
    empty = torch.zeros(null.shape[1], dtype=torch.bool)
    out = []
    for record in records:
        image, mask = reference_scene(record, size)
        latents = packed_latents(adapter, [Image.fromarray(image)], size)[0]
        out.append(EncodedExample(target=latents, references=latents.clone(), grids=[(1, size // token, size // token)],
                                  subject=coverage(mask, token), positive=null, positive_image=empty, negative=null,
                                  negative_image=empty, text=null, text_image=empty))
    return out


@torch.no_grad()
def probe_loss(pipe, examples: list[EncodedExample], t: float, with_references: bool, size: int,
               stream: str = "null", seed: int = 0, batch: int = 64) -> dict:
    """Flow-matching error at noise level ``t`` (fixed noise from ``seed``): over all target tokens and over the
    subject's (coverage-weighted). ``stream``: the conditioning ("null", "text", "positive", ...)."""
    from .trainer import FlowMatchingStep, _buckets

    step = FlowMatchingStep(pipe, pipe.connector, pipe.transformer, null_states(pipe), size)
    generator = torch.Generator().manual_seed(seed)
    total = subject = subject_weight = 0.0
    groups = [[examples[i] for i in bucket[start : start + batch]]  # one reference layout per batch, as training's
              for bucket in _buckets(as_source(examples)) for start in range(0, len(bucket), batch)]
    for group in groups:
        x0 = torch.stack([e.target for e in group]).float()
        noise = torch.randn(x0.shape, generator=generator)
        xt = (1 - t) * x0 + t * noise
        refs = ReferenceTokens(torch.stack([e.references for e in group]), group[0].grids) if with_references else None
        levels = torch.full((len(group),), t)
        velocity = pipe.backbone.predict(xt, levels, step.conditioning(group, stream), refs, size, size).float()
        error = (velocity - (noise - x0)).pow(2).mean(-1)  # (B, N)
        cover = torch.stack([e.subject for e in group])
        total += float(error.mean(-1).sum())
        subject += float((error * cover).sum())
        subject_weight += float(cover.sum())
    return {"all": total / len(examples), "subject": subject / max(subject_weight, 1e-9)}


class AttentionMass(ReferenceBiasAttnProcessor):
    """Stock joint attention (weight 1) that adds up, for one layer, the target tokens' attention on the reference
    tokens (``reference``) and on the first reference's token at the same place (``same_place``; only when that
    reference's grid is the target's), averaged over heads, queries and calls."""

    def __init__(self, target_tokens: int, reference_tokens: int):
        super().__init__(reference_tokens, 1.0)
        self.target_tokens = target_tokens
        self.sums = {"reference": 0.0, "same_place": 0.0}
        self.calls = 0

    # Every argument named: diffusers drops keyword arguments a processor's signature does not name (RoPE too).
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, encoder_hidden_states_mask=None,
                 attention_mask=None, image_rotary_emb=None):
        self._text = encoder_hidden_states.shape[1]
        return super().__call__(attn, hidden_states, encoder_hidden_states, encoder_hidden_states_mask,
                                attention_mask, image_rotary_emb)

    def _attend(self, query, key, value, bias):
        probs = ((query @ key.transpose(-1, -2)) / query.shape[-1] ** 0.5 + bias).softmax(-1)
        start, n = self._text, self.target_tokens
        rows = probs[:, :, start : start + n]  # the target tokens' queries
        self.sums["reference"] += float(rows[..., start + n :].sum(-1).mean())
        if self.reference_tokens >= n:
            same = rows[..., start + n : start + 2 * n].diagonal(dim1=-2, dim2=-1)
            self.sums["same_place"] += float(same.mean())
        self.calls += 1
        return probs @ value

    def result(self) -> dict:
        return {k: v / max(self.calls, 1) for k, v in self.sums.items()}


@torch.no_grad()
def attention_mass(pipe, examples: list[EncodedExample], t: float, size: int, stream: str = "null",
                   seed: int = 0) -> list[dict]:
    """Per transformer layer, ``AttentionMass.result()`` over ``examples`` (one reference grid) at noise level t."""
    from .trainer import FlowMatchingStep

    transformer = pipe.transformer
    n_target, n_refs = examples[0].target.shape[0], examples[0].references.shape[0]
    names = list(transformer.attn_processors)
    recorders = {name: AttentionMass(n_target, n_refs) for name in names}
    original = transformer.attn_processors
    transformer.set_attn_processor(dict(recorders))  # diffusers empties the dict it is given
    try:
        step = FlowMatchingStep(pipe, pipe.connector, transformer, null_states(pipe), size)
        x0 = torch.stack([e.target for e in examples]).float()
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
        refs = ReferenceTokens(torch.stack([e.references for e in examples]), examples[0].grids)
        pipe.backbone.predict((1 - t) * x0 + t * noise, torch.full((len(examples),), t),
                              step.conditioning(examples, stream), refs, size, size)
    finally:
        transformer.set_attn_processor(original)
    return [recorders[name].result() for name in names]


def reference_gain(pipe, examples: list[EncodedExample], size: int, stream: str = "text",
                   ts: tuple[float, ...] = (0.5, 0.8)) -> dict:
    """On real (moved-subject) examples: the subject tokens' error with the reference tokens over without them,
    per noise level, read as the VAE-focused steps read (``stream``). 1: the references are not used."""
    out = {}
    for t in ts:
        with_refs = probe_loss(pipe, examples, t, True, size, stream)
        without = probe_loss(pipe, examples, t, False, size, stream)
        out[f"t={t}"] = {"with": with_refs, "without": without,
                         "ratio_subject": with_refs["subject"] / without["subject"]}
    return out


def tokens_per_subject(records: list[dict], size: int, token: int) -> dict:
    """Mean packed tokens a subject covers (at least half of a token's pixels; any pixel), in the targets and in
    the first references, at ``size`` pixels with ``token``-pixel tokens."""
    def count(masks):
        cells = [coverage(m, token) for m in masks]
        return {"half": float(np.mean([(c >= 0.5).sum() for c in cells])),
                "any": float(np.mean([(c > 0).sum() for c in cells])),
                "pixels": float(np.mean([m.sum() for m in masks]))}

    targets = [render_scene(make_subject(r["meta"]["subject_seed"]), Attributes.from_dict(r["meta"]["target"]),
                            size)[1] for r in records]
    references = [reference_scene(r, size)[1] for r in records]
    return {"target": count(targets), "reference": count(references), "tokens_per_image": (size // token) ** 2}


@torch.no_grad()
def vae_ceiling(vae, records: list[dict], size: int) -> dict:
    """The VAE's own reconstruction (``train.vae.reconstruction_psnr``) of the records' targets rendered at
    ``size`` pixels: whole image and subject pixels."""
    from .vae import reconstruction_psnr

    scenes = [render_scene(make_subject(r["meta"]["subject_seed"]), Attributes.from_dict(r["meta"]["target"]), size)
              for r in records]
    images = torch.from_numpy(np.stack([s[0] for s in scenes]))
    masks = torch.from_numpy(np.stack([s[1] for s in scenes]))
    return reconstruction_psnr(vae, images, masks)



def rope_separation(dims: int, grid: int, theta: float = 10000.0, step: float = 0.02) -> float:
    """How well ``dims`` rotary dimensions of one axis can tell a token's own place from every other place on a
    ``grid``-token axis: the best, over weightings of its three fastest frequencies, of the smallest
    sum_k w_k (1 - cos(offset x frequency_k)) over offsets 1 .. grid - 1 (0: some other place looks like the
    same place; 2: the best possible). Slower frequencies turn too little across the grid to matter. Qwen-Image's
    rotary embedding uses theta 10000 and frequencies theta^(-2k / dims)."""
    frequencies = theta ** (-np.arange(0, dims, 2) / dims)[:3]
    gaps = 1 - np.cos(np.outer(np.arange(1, grid), frequencies))  # (offsets, frequencies)
    steps = np.arange(0, 1 + step / 2, step)
    weights = np.array([(a, b, 1 - a - b) for a in steps for b in steps if a + b <= 1 + 1e-9])[:, : len(frequencies)]
    return float((weights @ gaps.T).min(axis=1).max())


def aligned_share(records: list[dict]) -> float:
    """Share of records whose target shows the subject where a reference shows it (same position, orientation,
    scale and count): the only targets that reward reading a reference token at the target token's place."""
    keys = ("position", "orientation", "scale", "count")
    return float(np.mean([any(all(r["meta"]["target"][k] == ref[k] for k in keys) for ref in r["meta"]["references"])
                          for r in records]))
