"""SqueezePipeline: the paper's method, read top to bottom (arXiv 2605.26111).

encode jointly (MLLM, cached) -> aggregate layers (connector) -> plan the stages -> denoise -> decode.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline
from diffusers.loaders import QwenImageLoraLoaderMixin
from diffusers.utils import BaseOutput

from ..backbones import Conditioning, ReferenceTokens, make_adapter
from ..backbones.preview import LatentPreviewProjection
from ..dla import LayerConnector
from ..hub.defaults import PAPER_DEFAULTS, StageDefaults
from ..mllm import QWEN_EDIT_TEMPLATE, JointMLLMEncoder, MLLMEncoding
from ..stages import Stage, StagePlan, VaeFocusedReading
from .step_cache import StepCache, compile_blocks

ENCODING_CACHE_SIZE = 4
NULL_INSTRUCTION = " "
DEFAULT_VAE_READING = VaeFocusedReading.TEXT  # measured on the demo model v4: docs/DESIGN.md 5.2


class NonFiniteError(ValueError):
    """NaN or Inf in the latents after a step or in the decoded image (``stream(check_finite=True)``): the image
    would come out black or noise, so none is returned. ``step`` is 1-based; ``step > total`` means the decode."""

    def __init__(self, where: str, step: int, total: int):
        when = "after decoding" if step > total else f"at step {step} of {total}"
        super().__init__(f"NaN or Inf in the {where} ({when})")
        self.where, self.step, self.total = where, step, total


@dataclass
class SqueezePipelineOutput(BaseOutput):
    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    stage_plan: StagePlan
    forward_passes: int = 0  # transformer calls the run took (all images of the batch in each)
    full_passes: int = 0  # of which the step cache skipped nothing (equal without a cache)


@dataclass
class StepUpdate:
    """Yielded by ``SqueezePipeline.stream`` after every denoising step."""

    step: int  # 1-based
    total: int
    stage: Stage
    latents: torch.Tensor  # packed latents after this step
    x0: torch.Tensor  # packed estimate of the clean latents made at this step
    _pipeline: SqueezePipeline
    _size: tuple[int, int]

    def preview(self, index: int = 0) -> PIL.Image.Image:
        """The x0 estimate through the fitted linear preview map (latent resolution, near-free)."""
        rgb = self._pipeline.backbone.preview(self.x0[index : index + 1], *self._size)[0]
        array = ((rgb.float().permute(1, 2, 0).cpu().numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        return PIL.Image.fromarray(array)


class SqueezePipeline(DiffusionPipeline, QwenImageLoraLoaderMixin):
    r"""Subject-driven generation with a frozen MLLM, a layer connector (DLA), VAE identity tokens and
    multi-stage denoising.

    Components: ``scheduler`` (flow matching), ``vae``, ``text_encoder`` (the frozen MLLM) with its
    ``processor``, ``transformer``, ``connector`` (:class:`~squeeze_studio.dla.LayerConnector`) and
    ``preview_projection`` (optional latent->RGB map). ``backbone`` names the adapter family.

    ``from_pretrained`` also takes a stock ``QwenImageEditPlusPipeline`` folder or cached repo id (an
    identity connector is built in memory: nothing is copied) and an ``addon`` folder (connector + LoRA),
    see ``squeeze_studio.hub`` and docs/models.md. ``stage_defaults`` holds the τ1/τ2/guidance the model
    recommends; ``stream`` and ``__call__`` use them when none are given.

    Memory: diffusers' offloading works as on any pipeline (``enable_model_cpu_offload`` follows
    ``model_cpu_offload_seq``; tensors are made on ``_execution_device``); ``squeeze_studio.memory.apply``
    applies the memory modes the engine offers.
    """

    model_cpu_offload_seq = "text_encoder->connector->transformer->vae"
    _optional_components = ["preview_projection"]
    _callback_tensor_inputs = ["latents"]

    def __init__(
        self,
        scheduler,
        vae,
        text_encoder,
        processor,
        transformer,
        connector: LayerConnector,
        preview_projection: LatentPreviewProjection | None = None,
        backbone: str = "qwen_image_edit_plus",
        condition_image_area: int = 384 * 384,
        reference_image_area: int = 1024 * 1024,
        default_size: int = 1024,
        prompt_template: str = QWEN_EDIT_TEMPLATE,
    ):
        super().__init__()
        self.register_modules(scheduler=scheduler, vae=vae, text_encoder=text_encoder, processor=processor,
                              transformer=transformer, connector=connector, preview_projection=preview_projection)
        self.register_to_config(backbone=backbone, condition_image_area=condition_image_area,
                                reference_image_area=reference_image_area, default_size=default_size,
                                prompt_template=prompt_template)
        self.encoder = JointMLLMEncoder(text_encoder, processor, prompt_template)
        self.backbone = make_adapter(backbone, transformer=transformer, vae=vae, preview_projection=preview_projection)
        self._encodings: OrderedDict = OrderedDict()
        self._text_encodings: OrderedDict = OrderedDict()
        self._null_encoding: MLLMEncoding | None = None
        self._interrupt = False
        self._step_cache = StepCache(transformer)
        self.stage_defaults: StageDefaults = PAPER_DEFAULTS
        self.source = None  # the hub.ResolvedModel it was loaded from, when from_pretrained resolved one

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, addon=None, **kwargs):
        """Load a Squeeze folder, a stock ``QwenImageEditPlusPipeline`` folder, a repo id from the local
        Hugging Face cache (never the network), or an add-on folder, optionally with ``addon``; or a
        ``hub.ResolvedModel`` already resolved (then no ``addon``: it carries its own).

        Weights load from safetensors only. Other keyword arguments go to ``DiffusionPipeline.from_pretrained``
        (``dtype``, or config values such as ``reference_image_area``)."""
        from ..hub.resolve import ResolvedModel, resolve_model
        from .loading import component_overrides

        model = pretrained_model_name_or_path
        if not isinstance(model, ResolvedModel):
            model = resolve_model(model, addon)
        elif addon is not None:
            raise ValueError("a resolved model carries its add-on: give it to resolve_model, not from_pretrained")
        kwargs.setdefault("use_safetensors", True)
        kwargs.setdefault("local_files_only", True)
        for name, value in component_overrides(model, kwargs.get("dtype")).items():
            kwargs.setdefault(name, value)
        pipe = super().from_pretrained(model.folder, **kwargs)
        if model.addon is not None:
            from .addon import load_addon_lora

            load_addon_lora(pipe, model)
        if pipe.preview_projection is None:
            from .preview_maps import load_or_fit_preview

            pipe.backbone.preview_fitter = lambda adapter: load_or_fit_preview(adapter, model)
        pipe.source = model
        pipe.stage_defaults = model.stage_defaults
        return pipe

    def set_loras(self, loras) -> list[str]:
        """Apply community LoRAs to the transformer, replacing the previous list: ``loras`` holds
        ``pipeline.loras.LoraSpec(path, weight, name)`` (or dicts with those keys). Files are ``.safetensors`` in
        diffusers/peft, ComfyUI/kohya or lightx2v naming; each gets its weight, beside an add-on's own LoRA. A file
        already loaded is not read again; one that does not fit this transformer is refused in one line
        (``ValueError``) and nothing changes. ``set_loras([])`` returns to the model alone. A LoRA's scheduler
        settings (``hub.lora_files.lora_defaults``) apply while it is active. The LoRAs are fused into the weights
        where those are plain float tensors in place (``loras.fuse_refusal`` says why not); change them through
        ``set_loras``, which unfuses first. Returns the adapter names in use."""
        from .loras import set_loras

        return set_loras(self, loras)

    @property
    def step_cache(self) -> StepCache:
        """The step cache of the transformer in use (a new one if the transformer was swapped)."""
        if self._step_cache.transformer is not self.transformer:
            self._step_cache = StepCache(self.transformer)
        return self._step_cache

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # -- 1. joint MLLM encoding, cached ---------------------------------------------------------------
    def encode(self, images: list[PIL.Image.Image], prompt: str, negative_prompt: str):
        """MLLM encodings (instruction, negative, null) and VAE reference tokens, cached by content.

        Instruction and negative go through the MLLM in one forward pass (with the null conditioning,
        the empty instruction without images, the first time only: it never changes). A repeat call
        with the same references and instruction (another seed, other taus) reuses everything."""
        key = (prompt, negative_prompt, tuple(_digest(img) for img in images))
        if key in self._encodings:
            self._encodings.move_to_end(key)
            return self._encodings[key]
        shown = [self.backbone.condition_image(img, self.config.condition_image_area) for img in images]
        # The instruction read alone (the "text" reading of the VAE-focused steps) rides in the same pass.
        prompts, prompt_images = [prompt, negative_prompt, prompt], [shown, shown, []]
        if self._null_encoding is None:
            prompts.append(NULL_INSTRUCTION)
            prompt_images.append([])
        positive, negative, text, *null = self.encoder.encode(prompts, prompt_images)
        self._remember_text(prompt, text)
        self._null_encoding = null[0] if null else self._null_encoding
        references = (self.backbone.encode_references(images, self.config.reference_image_area)
                      if images else None)
        self._encodings[key] = ((positive, negative, self._null_encoding), references)
        while len(self._encodings) > ENCODING_CACHE_SIZE:
            self._encodings.popitem(last=False)
        return self._encodings[key]

    def encode_text(self, prompt: str) -> MLLMEncoding:
        """The instruction read by the MLLM without the references (the "text" reading of the VAE-focused
        steps); ``encode`` makes it in its own pass, so this finds it cached."""
        if prompt not in self._text_encodings:
            self._remember_text(prompt, self.encoder.encode([prompt], [[]])[0])
        self._text_encodings.move_to_end(prompt)
        return self._text_encodings[prompt]

    def _remember_text(self, prompt: str, encoding: MLLMEncoding) -> None:
        self._text_encodings[prompt] = encoding
        while len(self._text_encodings) > ENCODING_CACHE_SIZE:
            self._text_encodings.popitem(last=False)

    def clear_encoding_cache(self) -> None:
        self._encodings.clear()
        self._text_encodings.clear()
        self._null_encoding = None

    # -- 2. layer aggregation -------------------------------------------------------------------------
    def aggregate(self, encoding: MLLMEncoding) -> Conditioning:
        context, mask = self.connector(encoding.hidden_states, encoding.text_mask, encoding.image_mask)
        return Conditioning(context.to(self.transformer.dtype), None if mask.all() else mask)

    # -- speed ----------------------------------------------------------------------------------------
    def set_step_cache(self, mode: str = "none", config=None) -> None:
        """Reuse transformer work between steps: ``"none"``, ``"first-block"`` or ``"taylorseer"`` (diffusers'
        hooks; ``config`` a diffusers cache config to use instead of the mode's own). Every stream has its own cache,
        and every cache is reset at the stage boundaries (``pipeline.step_cache``)."""
        self.step_cache.use(mode, config)

    def compile_blocks(self) -> None:
        """``torch.compile`` the transformer's repeated blocks (regional compilation; the first image compiles)."""
        compile_blocks(self.transformer)

    # -- 4. one denoising step's velocity -------------------------------------------------------------
    def velocity(self, latents, t, stage: Stage, conditions: dict[str, Conditioning],
                 references: ReferenceTokens | None, guidance_scale: float, height: int, width: int,
                 reference_weight: float = 1.0, step: int = 0):
        """The stage decides the streams: MLLM-only steps drop the reference tokens, VAE-focused steps
        swap the joint stream for ``conditions["vae_focused"]`` (the null conditioning or the instruction read
        alone) and skip guidance (see ``stages``)."""
        refs = references if stage.uses_references else None
        timestep = t.expand(latents.shape[0]).to(latents.dtype) / 1000

        def predict(stream: str):
            with self.step_cache.context(stream, step):
                return self.backbone.predict(latents, timestep, conditions[stream], refs, height, width,
                                             reference_weight)

        if not stage.uses_instruction:
            return predict("vae_focused")
        velocity = predict("positive")
        if guidance_scale <= 1.0:
            return velocity
        negative = predict("negative")
        guided = negative + guidance_scale * (velocity - negative)
        # Qwen-Image's norm-preserving true CFG: keep the conditional prediction's per-token norm.
        return guided * (velocity.norm(dim=-1, keepdim=True) / guided.norm(dim=-1, keepdim=True))

    def check_inputs(self, images, prompt, height, width, num_inference_steps, tau1, tau2, guidance_scale,
                     negative_prompt: str | None = None):
        if not isinstance(prompt, str):
            raise ValueError("the instruction must be one string")
        self.encoder.check_instruction(prompt)  # too long or holding a reserved token: before the MLLM runs
        if negative_prompt is not None:
            if not isinstance(negative_prompt, str):
                raise ValueError("the negative prompt must be one string")
            self.encoder.check_instruction(negative_prompt, "negative prompt")
        if any(not isinstance(img, PIL.Image.Image) for img in images):
            raise ValueError("references must be PIL images")
        if num_inference_steps < 1:
            raise ValueError(f"steps must be at least 1 (got {num_inference_steps})")
        multiple = self.backbone.size_multiple
        for name, value in (("height", height), ("width", width)):
            if value <= 0 or value % multiple:
                raise ValueError(f"{name} must be a positive multiple of {multiple} for this model (got {value})")
        if guidance_scale < 0:
            raise ValueError(f"guidance must not be negative (got {guidance_scale})")
        StagePlan.from_taus([], tau1, tau2)  # validates the thresholds

    @torch.no_grad()
    def stream(
        self,
        image: PIL.Image.Image | list[PIL.Image.Image] | None = None,
        prompt: str = "",
        negative_prompt: str = " ",
        tau1: float | None = None,
        tau2: float | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int = 28,
        reference_ramp: bool = False,
        vae_focused_reading: str | VaeFocusedReading = DEFAULT_VAE_READING,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        check_finite: bool = False,
        cache: str | None = None,
    ) -> Iterator[StepUpdate | SqueezePipelineOutput]:
        """Generation as a plain loop: yields a ``StepUpdate`` after each step, the output last.

        Stop iterating to cancel: nothing is left half-done. ``tau1``, ``tau2`` and ``guidance_scale`` left
        at ``None`` take the model's ``stage_defaults``. ``check_finite``: raise ``NonFiniteError`` as soon as
        the latents (after any step) or the decoded image hold NaN or Inf, instead of returning a black image
        (one device sync per step). ``vae_focused_reading``: what conditions the steps below tau2, ``"null"``
        (the empty instruction) or ``"text"`` (the instruction read without the references); see ``stages``. ``cache``:
        a step cache mode for this and later runs (``set_step_cache``; ``None`` keeps the one set)."""
        defaults = self.stage_defaults
        tau1 = defaults.tau1 if tau1 is None else tau1
        tau2 = defaults.tau2 if tau2 is None else tau2
        guidance_scale = defaults.guidance_scale if guidance_scale is None else guidance_scale
        reading = VaeFocusedReading(vae_focused_reading)
        images = [] if image is None else [image] if isinstance(image, PIL.Image.Image) else list(image)
        height = self.config.default_size if height is None else height
        width = self.config.default_size if width is None else width
        self.check_inputs(images, prompt, height, width, num_inference_steps, tau1, tau2, guidance_scale,
                          negative_prompt)
        if cache is not None:
            self.set_step_cache(cache)
        device = self._execution_device
        batch = num_images_per_prompt
        self._interrupt = False

        # 1. Encode the instruction and the references jointly (cached), and VAE-encode the references.
        (positive, negative, null), references = self.encode(images, prompt, negative_prompt)
        # 2. Plan the stages on the noise levels the steps will start from.
        timesteps = self.backbone.set_timesteps(self.scheduler, num_inference_steps, height, width, device)
        plan = StagePlan.from_taus(self.scheduler.sigmas[: len(timesteps)].tolist(), tau1, tau2, reference_ramp)
        # 3. Aggregate every MLLM layer into the transformer's context, for the streams the plan uses.
        needed = {"positive": positive}
        if guidance_scale > 1.0:
            needed["negative"] = negative
        if plan.count(Stage.VAE_FOCUSED):
            needed["vae_focused"] = null if reading is VaeFocusedReading.NULL else self.encode_text(prompt)
        conditions = {name: self.aggregate(enc).repeat(batch) for name, enc in needed.items()}
        references = references.repeat(batch) if references is not None else None
        # 4. Denoise.
        dtype = self.transformer.dtype
        if latents is None:
            latents = self.backbone.prepare_latents(batch, height, width, generator, dtype, device)
        self.scheduler.set_begin_index(0)
        self.step_cache.start()  # nothing reused from an earlier run; counts from zero
        for i, t in enumerate(timesteps):
            if self.interrupt:
                break
            self.step_cache.begin_stage(plan[i])  # reset at tau1 and tau2: new sequence, new conditioning
            velocity = self.velocity(latents, t, plan[i], conditions, references, guidance_scale, height, width,
                                     plan.reference_weight(i), step=i)
            x0 = latents - self.scheduler.sigmas[i].to(latents) * velocity
            latents = self.scheduler.step(velocity, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                tensors = {"latents": latents}
                outputs = callback_on_step_end(self, i, t, {k: tensors[k] for k in callback_on_step_end_tensor_inputs})
                latents = outputs.pop("latents", latents)
            if check_finite and not torch.isfinite(latents).all():
                raise NonFiniteError("latents", i + 1, len(timesteps))
            yield StepUpdate(i + 1, len(timesteps), plan[i], latents, x0, self, (height, width))
        # 5. Decode.
        if output_type == "latent":
            result = latents
        else:
            decoded = self.backbone.decode(latents, height, width)
            if check_finite and not torch.isfinite(decoded).all():
                raise NonFiniteError("decoded image", len(timesteps) + 1, len(timesteps))
            result = self.backbone.image_processor.postprocess(decoded, output_type=output_type)
        self.maybe_free_model_hooks()
        passes, full = self.step_cache.passes, self.step_cache.full_passes
        self.step_cache.finish()
        yield SqueezePipelineOutput(images=result, stage_plan=plan, forward_passes=passes, full_passes=full)

    def __call__(self, *args, preview_callback: Callable[[StepUpdate], None] | None = None,
                 return_dict: bool = True, **kwargs):
        """Run ``stream`` to the end. ``preview_callback(update)`` is called after every step;
        ``callback_on_step_end`` follows the diffusers convention. Returns ``SqueezePipelineOutput``."""
        for item in self.progress_bar(self.stream(*args, **kwargs)):
            if isinstance(item, StepUpdate) and preview_callback is not None:
                preview_callback(item)
        return item if return_dict else (item.images,)


def _digest(image: PIL.Image.Image) -> str:
    return hashlib.sha1(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()
