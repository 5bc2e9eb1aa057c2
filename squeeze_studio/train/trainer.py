"""Stages 1 and 2: train the connector and the diffusion transformer with flow matching.

Stage 1 (``align``) conditions on the MLLM stream only; stage 2 (``identity``) appends the references'
VAE tokens. The MLLM and the VAE stay frozen (their outputs come precomputed from ``encode``, in memory or
streamed from an ``encodings_store``). The same code runs on one CPU here and on GPUs under ``accelerate launch``:
every batch goes to the accelerator's device; bf16 mixed precision, gradient checkpointing, gradient
accumulation and LoRA are settings (see docs/training.md). Trainable parameters are kept in float32 while they
train, whatever the dtype the model was loaded in, and go back to it afterwards.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..backbones import Conditioning, ReferenceTokens
from ..stages import Stage, VaeFocusedReading, stage_at
from .checkpoint import StageProgress
from .encode import EncodedExample, as_source, null_states
from .loop import LoopSettings, run_steps
from .settings import LORA_TARGETS


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
    vae_reading: str = "null"  # with stage_taus, below tau2: "null", "text" (instruction read alone) or "both"
    # "logit_normal" (mid noise levels, 20 % uniform) or "inference": spread as the inference schedule's steps
    # are, with its shift at this size, so each stage's t-range gets its share of inference steps
    timestep_sampling: str = "logit_normal"
    lora_rank: int = 0  # > 0: train LoRA adapters on a pretrained transformer instead of all weights
    keep_lora: bool = False  # leave the LoRA as an adapter (for an add-on) instead of fusing it into the weights
    lora_targets: tuple[str, ...] = LORA_TARGETS  # module names (peft target_modules) that get a LoRA
    gradient_accumulation: int = 1  # micro-batches of batch_size per optimiser step
    gradient_checkpointing: bool = False  # recompute the transformer blocks' activations in the backward pass
    mixed_precision: str | None = None  # "no" or "bf16"; None: what accelerate is configured with ("no" by default)
    checkpoint_every: int = 250
    warmup_steps: int = 200
    seed: int = 0
    log_every: int = 50


def _pad_states(states: list[torch.Tensor], image_masks: list[torch.Tensor], device=None):
    """Right-pad (L + 1, T_i, d) states to (B, L + 1, T, d) on ``device``, in the states' dtype (the connector
    casts them), with text/image masks (B, T)."""
    length = max(s.shape[1] for s in states)
    batch = torch.zeros(len(states), states[0].shape[0], length, states[0].shape[2], dtype=states[0].dtype,
                        device=device)
    text = torch.zeros(len(states), length, dtype=torch.bool, device=device)
    image = torch.zeros_like(text)
    for i, (s, m) in enumerate(zip(states, image_masks, strict=True)):
        batch[i, :, : s.shape[1]] = s.to(device)
        image[i, : s.shape[1]] = m.to(device)
        text[i, : s.shape[1]] = ~m.to(device)
    return batch, text, image


class FlowMatchingStep:
    """One training step's loss: x_t = (1 - t) x0 + t eps, the transformer predicts eps - x0. Randomness is
    drawn on the CPU (the step's generator, so runs resume exactly), then the batch moves to ``device``
    (default: where the transformer is)."""

    def __init__(self, pipe, connector, transformer, null_states: torch.Tensor, size: int, device=None):
        self.pipe, self.connector, self.size = pipe, connector, size
        pipe.backbone.transformer = transformer  # the prepared (possibly DDP-wrapped) module
        self.null = null_states
        self.device = torch.device(device) if device is not None else next(transformer.parameters()).device

    def conditioning(self, examples: list[EncodedExample], stream: str) -> Conditioning:
        if stream == "text" and any(e.text is None for e in examples):
            raise ValueError("the 'text' reading needs encodings with the instruction read alone: encode again")
        if stream == "null":
            states = [self.null] * len(examples)
            images = [torch.zeros(self.null.shape[1], dtype=torch.bool)] * len(examples)
        else:
            states = [getattr(e, stream) for e in examples]
            images = [getattr(e, f"{stream}_image") for e in examples]
        hidden, text, image = _pad_states(states, images, self.device)
        context, mask = self.connector(hidden, text, image)
        return Conditioning(context, mask)

    def noise_levels(self, count: int, sampling: str, generator) -> torch.Tensor:
        """``count`` training noise levels t in (0, 1) (see ``StageConfig.timestep_sampling``)."""
        if sampling == "inference":
            u = torch.rand(count, generator=generator)
            return self.pipe.backbone.shift_noise_levels(self.pipe.scheduler, u, self.size, self.size).float()
        if sampling != "logit_normal":
            raise ValueError(f"timestep sampling must be 'logit_normal' or 'inference' (got {sampling!r})")
        t = torch.sigmoid(torch.randn(count, generator=generator))  # logit-normal: mid noise levels
        uniform = torch.rand(count, generator=generator) < 0.2
        return torch.where(uniform, torch.rand(count, generator=generator), t)

    def loss(self, examples, stream: str, with_references: bool, subject_weight: float, generator,
             stage_taus: tuple[float, float] | None = None, sampling: str = "logit_normal",
             vae_reading: str = "null"):
        device = self.device
        x0 = torch.stack([e.target for e in examples]).float()
        t = self.noise_levels(len(examples), sampling, generator)
        noise = torch.randn(x0.shape, generator=generator)
        x0, t, noise = x0.to(device), t.to(device), noise.to(device)
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * noise
        refs = None
        if with_references:
            refs = ReferenceTokens(torch.stack([e.references for e in examples]).to(device), examples[0].grids)
        if stage_taus is None:
            velocity = self.pipe.backbone.predict(xt, t, self.conditioning(examples, stream), refs, self.size,
                                                  self.size)
        else:
            readings = self._vae_readings(len(examples), vae_reading, generator)
            velocity = self._staged_velocity(examples, xt, t, stream, refs, stage_taus, readings)
        error = (velocity.float() - (noise - x0)).pow(2).mean(-1)  # (B, N)
        weight = 1 + subject_weight * torch.stack([e.subject for e in examples]).to(device)
        return (error * weight).sum() / weight.sum()

    @staticmethod
    def _vae_readings(count: int, reading: str, generator) -> list[str]:
        """Per example, the stream its VAE-focused steps read: "null" or "text"; "both" draws half of each."""
        if reading != "both" and reading not in {r.value for r in VaeFocusedReading}:
            raise ValueError(f"the VAE-focused reading must be 'null', 'text' or 'both' (got {reading!r})")
        draws = torch.rand(count, generator=generator)  # drawn whatever the reading: runs resume alike
        if reading != "both":
            return [reading] * count
        return ["text" if d < 0.5 else "null" for d in draws.tolist()]

    def _staged_velocity(self, examples, xt, t, stream: str, refs, stage_taus, readings) -> torch.Tensor:
        """Each example sees what inference gives its t (``stages.stage_at``): no reference tokens from tau1
        up, the VAE-focused reading's stream below tau2."""
        # Per example: the stream it reads and whether the reference tokens are in its sequence.
        streams = []
        for v, reading in zip(t.tolist(), readings, strict=True):
            stage = stage_at(v, *stage_taus)
            streams.append((reading if stage is Stage.VAE_FOCUSED else stream, stage.uses_references))
        velocity = torch.empty_like(xt)
        for group_stream, with_refs in dict.fromkeys(streams):
            index = torch.tensor([i for i, key in enumerate(streams) if key == (group_stream, with_refs)])
            group_refs = refs if with_refs else None
            group = [examples[i] for i in index.tolist()]
            sub_refs = None if group_refs is None else ReferenceTokens(group_refs.tokens[index], group_refs.grids)
            velocity[index] = self.pipe.backbone.predict(xt[index], t[index], self.conditioning(group, group_stream),
                                                         sub_refs, self.size, self.size).to(velocity.dtype)
        return velocity


def _buckets(source) -> list[list[int]]:
    """Indices grouped by their references' grids (count and shapes: references keep their aspect ratio), so a
    batch's reference sequences have one length."""
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(source.bucket_keys()):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _add_lora(transformer, rank: int, targets=LORA_TARGETS) -> None:
    from peft import LoraConfig

    transformer.requires_grad_(False)
    if getattr(transformer, "peft_config", None):  # an add-on's LoRA is loaded: go on training it
        for name, parameter in transformer.named_parameters():
            parameter.requires_grad_("lora_" in name)
        return
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=list(targets)))


def fuse_lora(transformer) -> None:
    """Merge a trained LoRA into the transformer's weights and drop the adapter."""
    transformer.fuse_lora()
    transformer.unload_lora()


@contextmanager
def _accelerator(mixed_precision: str | None):
    """An Accelerator with this mixed precision. accelerate keeps one process-wide state that refuses a
    different precision once set; training stages in one process (tests, the demo after a bf16 stage) may ask
    for different ones, so the state is reset when it differs, and after a run that changed it."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    shared = AcceleratorState._shared_state
    changed = mixed_precision is not None and shared.get("_mixed_precision", "no") != mixed_precision
    if changed and shared:
        AcceleratorState._reset_state()
    # Unused parameters are normal (no image tokens in a null-conditioned batch: the image LAP idles).
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    try:
        yield Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision,
                          kwargs_handlers=handlers)
    finally:
        if changed:  # later stages start from accelerate's own default again
            AcceleratorState._reset_state()


def _trained_dtypes(module) -> dict[str, torch.dtype]:
    """Cast ``module``'s trainable parameters to float32 (their optimiser updates need it; frozen weights stay
    in their dtype, e.g. bf16); returns the dtypes to restore."""
    dtypes = {}
    for name, parameter in module.named_parameters():
        if parameter.requires_grad:
            dtypes[name] = parameter.dtype
            if parameter.dtype != torch.float32:
                parameter.data = parameter.data.float()
    return dtypes


def _restore_dtypes(module, dtypes: dict[str, torch.dtype]) -> None:
    for name, parameter in module.named_parameters():
        if name in dtypes and parameter.dtype != dtypes[name]:
            parameter.data = parameter.data.to(dtypes[name])


def full_copy(module, state: dict, kind: type | None = None):
    """A plain copy of ``module`` (a diffusers model of class ``kind``, default its own, with its peft adapters)
    holding ``state``, a full state dict: how FSDP's sharded modules come back whole for saving."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        copy = (kind or type(module)).from_config(module.config)
        for name, adapter in (getattr(module, "peft_config", None) or {}).items():
            copy.add_adapter(adapter, adapter_name=name)
    copy.load_state_dict(state, assign=True)
    return copy


class _Trained(torch.nn.Module):
    """Transformer and connector as one module whose forward runs a loss: under FSDP, accelerate shards one
    prepared model, whose own forward must run for its parameters to be gathered."""

    def __init__(self, transformer, connector):
        super().__init__()
        self.transformer, self.connector = transformer, connector

    def forward(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        return compute()


def _sharded(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.FSDP


def _plain(accelerator, prepared):
    """The trained module as a plain one again: no DDP wrapper, no autocast forward, not marked prepared (a
    later stage prepares it again)."""
    module = accelerator.unwrap_model(prepared, keep_fp32_wrapper=False)
    module.__dict__.pop("_is_accelerate_prepared", None)
    return module


def _gathered(accelerator, trained, kinds: dict):
    """FSDP: the full transformer and connector, gathered from every process into plain copies on the main
    process (``None`` elsewhere)."""
    state = accelerator.get_state_dict(trained)  # collective: every process takes part
    if not accelerator.is_main_process:
        return None
    inner = accelerator.unwrap_model(trained)
    return [full_copy(getattr(inner, name), {k.removeprefix(f"{name}."): v for k, v in state.items()
                                             if k.startswith(f"{name}.")}, kinds[name])
            for name in ("transformer", "connector")]


def train_stage(pipe, examples, config: StageConfig, folder, size: int,
                on_log: Callable[[dict], None] | None = None) -> dict:
    """Train ``pipe.connector`` and ``pipe.transformer`` (or LoRA on it) for ``config.steps`` steps,
    checkpointing to ``folder`` and resuming from it; a finished stage loads its final weights and trains
    nothing. ``examples``: a list of ``EncodedExample`` or an example source (``encode.InMemoryExamples``,
    ``encodings_store.EncodingStore``), read one batch at a time. Returns the stage's summary."""
    source = as_source(examples)
    progress = StageProgress(folder)
    with _accelerator(config.mixed_precision) as accelerator:
        transformer, connector = pipe.transformer, pipe.connector
        if config.lora_rank:
            _add_lora(transformer, config.lora_rank, config.lora_targets)
        else:
            transformer.requires_grad_(True)
        connector.requires_grad_(True)
        dtypes = {"transformer": _trained_dtypes(transformer), "connector": _trained_dtypes(connector)}
        if config.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        params = [p for m in (transformer, connector) for p in m.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.01, betas=(0.9, 0.99))
        sharded = _sharded(accelerator)
        if sharded:
            kinds = {"transformer": type(transformer), "connector": type(connector)}
            trained, optimizer = accelerator.prepare(_Trained(transformer, connector), optimizer)
            inner = accelerator.unwrap_model(trained)
            transformer, connector, models = inner.transformer, inner.connector, (trained,)
        else:  # two prepared models, as the demo's checkpoints have always held them
            transformer, connector, optimizer = accelerator.prepare(transformer, connector, optimizer)
            # The connector runs in float32, outside autocast: its pooling writes each LAP's output into a buffer
            # of the input's dtype, which autocast's bf16 outputs do not match (dla/connector.py).
            accelerator.unwrap_model(connector, keep_fp32_wrapper=False)
            models = (transformer, connector)
        null = source.null_states if source.null_states is not None else null_states(pipe)
        step_fn = FlowMatchingStep(pipe, connector, transformer, null, size, device=accelerator.device)
        buckets = _buckets(source)
        weights = torch.tensor([len(b) for b in buckets], dtype=torch.float)

        def step_loss(generator: torch.Generator) -> torch.Tensor:
            bucket = buckets[int(torch.multinomial(weights, 1, generator=generator))]
            picks = torch.randint(len(bucket), (config.batch_size,), generator=generator)
            batch = source.load([bucket[i] for i in picks])
            draw = float(torch.rand(1, generator=generator))
            stream = ("negative" if draw < config.negative_dropout else
                      "null" if draw < config.negative_dropout + config.null_dropout else "positive")
            with_refs = (config.use_references
                         and float(torch.rand(1, generator=generator)) >= config.reference_dropout)

            def compute() -> torch.Tensor:
                return step_fn.loss(batch, stream, with_refs, config.subject_weight, generator, config.stage_taus,
                                    config.timestep_sampling, config.vae_reading)

            return models[0](compute) if sharded else compute()

        for model in models:
            model.train()
        settings = LoopSettings(config.name, config.steps, config.learning_rate, config.warmup_steps,
                                config.log_every, config.checkpoint_every, config.seed,
                                accumulation=config.gradient_accumulation)
        run_steps(settings, accelerator, optimizer, progress, step_loss, on_log, models=models)
        if sharded:
            whole = _gathered(accelerator, models[0], kinds)
            if whole is None:  # another process: the main one writes the result
                return progress.data
            transformer, connector = whole
        else:
            transformer, connector = _plain(accelerator, transformer), _plain(accelerator, connector)
    if config.gradient_checkpointing and transformer.gradient_checkpointing:
        transformer.disable_gradient_checkpointing()
    _restore_dtypes(transformer, dtypes["transformer"])
    _restore_dtypes(connector, dtypes["connector"])
    if config.lora_rank and not config.keep_lora:  # bake the adapters in: a plain model folder comes out
        fuse_lora(transformer)
    if transformer is not pipe.transformer or connector is not pipe.connector:  # FSDP's full copies
        pipe.register_modules(transformer=transformer, connector=connector)
    pipe.backbone.transformer = transformer
    transformer.eval(), connector.eval()
    transformer.requires_grad_(False), connector.requires_grad_(False)
    return progress.data
