"""Stages 1 and 2: train the connector and the diffusion transformer with flow matching.

Stage 1 (``align``) conditions on the MLLM stream only; stage 2 (``identity``) appends the references'
VAE tokens. The MLLM and the VAE stay frozen (their outputs come precomputed from ``encode``). The
same code runs on one CPU here and on several GPUs under ``accelerate launch``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..backbones import Conditioning, ReferenceTokens
from .checkpoint import StageProgress
from .encode import EncodedExample
from .loop import LoopSettings, run_steps


@dataclass
class StageConfig:
    name: str  # "align" (stage 1) or "identity" (stage 2)
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    use_references: bool = False
    reference_dropout: float = 0.1  # stage 2: share of batches without reference tokens (MLLM-only steps)
    negative_dropout: float = 0.1  # share of batches on the negative prompt (for guidance)
    null_dropout: float = 0.0  # share of batches on the null conditioning (VAE-focused steps)
    subject_weight: float = 0.0  # extra loss weight on tokens covered by the subject
    stage_taus: tuple[float, float] | None = None  # timestep-aware: train each t as inference's stage plan runs it
    lora_rank: int = 0  # > 0: train LoRA adapters on a pretrained transformer instead of all weights
    keep_lora: bool = False  # leave the LoRA as an adapter (for an add-on) instead of fusing it into the weights
    checkpoint_every: int = 250
    warmup_steps: int = 200
    seed: int = 0
    log_every: int = 50


def _pad_states(states: list[torch.Tensor], image_masks: list[torch.Tensor]):
    """Right-pad (L + 1, T_i, d) states to (B, L + 1, T, d) with text/image masks (B, T)."""
    length = max(s.shape[1] for s in states)
    batch = torch.zeros(len(states), states[0].shape[0], length, states[0].shape[2])
    text = torch.zeros(len(states), length, dtype=torch.bool)
    image = torch.zeros_like(text)
    for i, (s, m) in enumerate(zip(states, image_masks, strict=True)):
        batch[i, :, : s.shape[1]] = s.float()
        image[i, : s.shape[1]] = m
        text[i, : s.shape[1]] = ~m
    return batch, text, image


class FlowMatchingStep:
    """One training step's loss: x_t = (1 - t) x0 + t eps, the transformer predicts eps - x0."""

    def __init__(self, pipe, connector, transformer, null_states: torch.Tensor, size: int):
        self.pipe, self.connector, self.size = pipe, connector, size
        pipe.backbone.transformer = transformer  # the prepared (possibly DDP-wrapped) module
        self.null = null_states

    def conditioning(self, examples: list[EncodedExample], stream: str) -> Conditioning:
        if stream == "null":
            states = [self.null.float()] * len(examples)
            images = [torch.zeros(self.null.shape[1], dtype=torch.bool)] * len(examples)
        else:
            states = [getattr(e, stream) for e in examples]
            images = [getattr(e, f"{stream}_image") for e in examples]
        hidden, text, image = _pad_states(states, images)
        context, mask = self.connector(hidden, text, image)
        return Conditioning(context, mask)

    def loss(self, examples, stream: str, with_references: bool, subject_weight: float, generator,
             stage_taus: tuple[float, float] | None = None):
        x0 = torch.stack([e.target for e in examples])
        t = torch.sigmoid(torch.randn(len(examples), generator=generator))  # logit-normal: mid noise levels
        uniform = torch.rand(len(examples), generator=generator) < 0.2
        t = torch.where(uniform, torch.rand(len(examples), generator=generator), t)
        noise = torch.randn(x0.shape, generator=generator)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
        refs = None
        if with_references:
            refs = ReferenceTokens(torch.stack([e.references for e in examples]), examples[0].grids)
        if stage_taus is None:
            velocity = self.pipe.backbone.predict(xt, t, self.conditioning(examples, stream), refs, self.size,
                                                  self.size)
        else:
            velocity = self._staged_velocity(examples, xt, t, stream, refs, stage_taus)
        error = (velocity.float() - (noise - x0)).pow(2).mean(-1)  # (B, N)
        weight = 1 + subject_weight * torch.stack([e.subject for e in examples])
        return (error * weight).sum() / weight.sum()

    def _staged_velocity(self, examples, xt, t, stream: str, refs, stage_taus) -> torch.Tensor:
        """Each example sees what inference gives its t (``stages.StagePlan``): no reference tokens above
        tau1, the null instruction below tau2."""
        tau1, tau2 = stage_taus
        velocity = torch.empty_like(xt)
        for rows, group_stream, group_refs in ((t > tau1, stream, None), ((t <= tau1) & (t >= tau2), stream, refs),
                                               (t < tau2, "null", refs)):
            index = rows.nonzero().flatten()
            if len(index) == 0:
                continue
            group = [examples[i] for i in index.tolist()]
            sub_refs = None if group_refs is None else ReferenceTokens(group_refs.tokens[index], group_refs.grids)
            velocity[index] = self.pipe.backbone.predict(xt[index], t[index], self.conditioning(group, group_stream),
                                                         sub_refs, self.size, self.size).to(velocity.dtype)
        return velocity


def _buckets(examples: list[EncodedExample]) -> list[list[int]]:
    """Indices grouped by reference count, so a batch's reference sequences have one length."""
    groups: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        groups.setdefault(len(e.grids), []).append(i)
    return list(groups.values())


def _add_lora(transformer, rank: int) -> None:
    from peft import LoraConfig

    transformer.requires_grad_(False)
    if getattr(transformer, "peft_config", None):  # an add-on's LoRA is loaded: go on training it
        for name, parameter in transformer.named_parameters():
            parameter.requires_grad_("lora_" in name)
        return
    targets = ["to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"]
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets))


def fuse_lora(transformer) -> None:
    """Merge a trained LoRA into the transformer's weights and drop the adapter."""
    transformer.fuse_lora()
    transformer.unload_lora()


def train_stage(pipe, examples: list[EncodedExample], config: StageConfig, folder, size: int,
                on_log: Callable[[dict], None] | None = None) -> dict:
    """Train ``pipe.connector`` and ``pipe.transformer`` (or LoRA on it) for ``config.steps`` steps,
    checkpointing to ``folder`` and resuming from it; a finished stage loads its final weights and trains
    nothing. Returns the stage's summary."""
    from accelerate import Accelerator

    progress = StageProgress(folder)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    transformer, connector = pipe.transformer, pipe.connector
    if config.lora_rank:
        _add_lora(transformer, config.lora_rank)
    else:
        transformer.requires_grad_(True)
    connector.requires_grad_(True)
    params = [p for m in (transformer, connector) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01, betas=(0.9, 0.99))
    transformer, connector, optimizer = accelerator.prepare(transformer, connector, optimizer)
    null = pipe.encoder.encode([" "], [[]])[0].hidden_states[0]
    step_fn = FlowMatchingStep(pipe, connector, transformer, null, size)
    buckets = _buckets(examples)
    weights = torch.tensor([len(b) for b in buckets], dtype=torch.float)

    def step_loss(generator: torch.Generator) -> torch.Tensor:
        bucket = buckets[int(torch.multinomial(weights, 1, generator=generator))]
        picks = torch.randint(len(bucket), (config.batch_size,), generator=generator)
        batch = [examples[bucket[i]] for i in picks]
        draw = float(torch.rand(1, generator=generator))
        stream = ("negative" if draw < config.negative_dropout else
                  "null" if draw < config.negative_dropout + config.null_dropout else "positive")
        with_refs = config.use_references and float(torch.rand(1, generator=generator)) >= config.reference_dropout
        return step_fn.loss(batch, stream, with_refs, config.subject_weight, generator, config.stage_taus)

    transformer.train(), connector.train()
    settings = LoopSettings(config.name, config.steps, config.learning_rate, config.warmup_steps, config.log_every,
                            config.checkpoint_every, config.seed)
    run_steps(settings, accelerator, optimizer, progress, step_loss, on_log)
    transformer, connector = accelerator.unwrap_model(transformer), accelerator.unwrap_model(connector)
    if config.lora_rank and not config.keep_lora:  # bake the adapters in: a plain model folder comes out
        fuse_lora(transformer)
    pipe.backbone.transformer = transformer
    transformer.eval(), connector.eval()
    transformer.requires_grad_(False), connector.requires_grad_(False)
    return progress.data
