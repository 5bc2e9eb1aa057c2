"""A soft weight on the reference VAE tokens: an additive bias, log(weight), on their attention logits.

Qwen-Image's blocks attend jointly over [text, image, reference] keys. Weight 1 is the stock attention
(the processor below reproduces diffusers' ``QwenDoubleStreamAttnProcessor2_0`` exactly, a test checks);
weight -> 0 hides the references from every query, close to what an MLLM-only step does by leaving them
out (not exactly: the text tokens' rotary positions still start after the references'). In between, the
references are there but count less: the smooth alternative to the stage switch at tau1, at the same cost
as the joint step it replaces.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers.models.transformers.transformer_qwenimage import apply_rotary_emb_qwen

MIN_WEIGHT = 1e-4  # log(1e-4) = -9.2: the references get ~1e-4 of the attention mass they would get


class ReferenceBiasAttnProcessor:
    """Joint text-image attention with ``bias`` added to the logits of the last ``reference_tokens`` image
    keys. Holds no weights: it reads the block's projections and norms."""

    def __init__(self, reference_tokens: int, weight: float):
        self.reference_tokens = reference_tokens
        self.bias = math.log(max(weight, MIN_WEIGHT))

    def _heads(self, attn, x, project, norm):
        heads = project(x).unflatten(-1, (-1, attn.inner_dim // attn.heads))  # (B, S, H, D)
        return norm(heads) if norm is not None else heads

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, encoder_hidden_states_mask=None,
                 attention_mask=None, image_rotary_emb=None):
        if encoder_hidden_states is None or attention_mask is not None:
            raise ValueError("reference bias attention needs the text stream and no external attention mask")
        img_q = self._heads(attn, hidden_states, attn.to_q, attn.norm_q)
        img_k = self._heads(attn, hidden_states, attn.to_k, attn.norm_k)
        img_v = self._heads(attn, hidden_states, attn.to_v, None)
        txt_q = self._heads(attn, encoder_hidden_states, attn.add_q_proj, attn.norm_added_q)
        txt_k = self._heads(attn, encoder_hidden_states, attn.add_k_proj, attn.norm_added_k)
        txt_v = self._heads(attn, encoder_hidden_states, attn.add_v_proj, None)
        if image_rotary_emb is not None:
            img_freqs, txt_freqs = image_rotary_emb
            img_q, img_k = (apply_rotary_emb_qwen(x, img_freqs, use_real=False) for x in (img_q, img_k))
            txt_q, txt_k = (apply_rotary_emb_qwen(x, txt_freqs, use_real=False) for x in (txt_q, txt_k))
        query, key, value = (torch.cat(pair, dim=1).transpose(1, 2) for pair in
                             ((txt_q, img_q), (txt_k, img_k), (txt_v, img_v)))  # (B, H, S, D)

        n_txt, n_img = encoder_hidden_states.shape[1], hidden_states.shape[1]
        bias = torch.zeros(query.shape[0], n_txt + n_img, dtype=query.dtype, device=query.device)
        if encoder_hidden_states_mask is not None:
            bias[:, :n_txt].masked_fill_(~encoder_hidden_states_mask.bool(), float("-inf"))
        if self.reference_tokens:
            bias[:, n_txt + n_img - self.reference_tokens:] += self.bias
        joint = self._attend(query, key, value, bias[:, None, None, :])
        joint = joint.transpose(1, 2).flatten(2, 3).to(query.dtype)

        img_out = attn.to_out[0](joint[:, n_txt:].contiguous())
        if len(attn.to_out) > 1:
            img_out = attn.to_out[1](img_out)
        return img_out, attn.to_add_out(joint[:, :n_txt].contiguous())


    def _attend(self, query, key, value, bias):
        """(B, H, S, D) attention with the additive logit ``bias`` (B, 1, 1, S); a subclass may look inside
        (``train.diagnose.AttentionMass``)."""
        return F.scaled_dot_product_attention(query, key, value, attn_mask=bias)


@contextmanager
def reference_weight(transformer, reference_tokens: int, weight: float):
    """Inside: ``transformer``'s attention weights its last ``reference_tokens`` image tokens by ``weight``.
    The original processors come back on exit, whatever happens."""
    if weight >= 1.0 or not reference_tokens:
        yield
        return
    original = transformer.attn_processors
    transformer.set_attn_processor(ReferenceBiasAttnProcessor(reference_tokens, weight))
    try:
        yield
    finally:
        transformer.set_attn_processor(original)
