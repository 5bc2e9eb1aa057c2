"""Run a frozen vision-language model once over "Picture 1: <image> ... instruction" and keep all layers.

Unlike methods that encode text and references with separate encoders, the MLLM sees the references
and the instruction in one chat prompt, so every text token can attend to the images (docs/DESIGN.md 2.1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from ..request import MAX_INSTRUCTION_TOKENS

# Qwen-Image-Edit's system prompt (the same text diffusers' QwenImageEditPlusPipeline uses), so that an
# identity-initialised connector reproduces the base model exactly.
QWEN_EDIT_TEMPLATE = (
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, objects, "
    "background), then explain how the user's text instruction should alter or modify the image. Generate a new "
    "image that meets the user's requirements while maintaining consistency with the original input where "
    "appropriate.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)
IMAGE_SLOT = "Picture {}: <|vision_start|><|image_pad|><|vision_end|>"
# Longer instructions are refused before the MLLM runs (request.MAX_INSTRUCTION_TOKENS says why).
_MAX_CHARS_TO_COUNT = MAX_INSTRUCTION_TOKENS * 1024  # longer than this is refused without tokenising it


@dataclass
class MLLMEncoding:
    """One prompt's MLLM states with the template prefix dropped.

    hidden_states:  (B, L + 1, T, d) embedding output and every decoder layer's output.
    attention_mask: (B, T) 1 where a token is real.
    text_mask, image_mask: (B, T) bool, the real text-token and image-token positions.
    """

    hidden_states: torch.Tensor
    attention_mask: torch.Tensor
    text_mask: torch.Tensor
    image_mask: torch.Tensor

    @property
    def last_layer(self) -> torch.Tensor:
        return self.hidden_states[:, -1]

    def repeat(self, n: int) -> MLLMEncoding:
        """The same encoding for ``n`` images per prompt (batch repeated)."""
        return MLLMEncoding(*(t.repeat_interleave(n, dim=0) for t in self._tensors()))

    def _tensors(self):
        return self.hidden_states, self.attention_mask, self.text_mask, self.image_mask


class JointMLLMEncoder:
    """Builds the joint chat prompt, runs the MLLM once for a batch of prompts, returns all layers.

    ``runs`` counts forward passes, so callers (and tests) can check that caches work.
    """

    def __init__(self, model, processor, prompt_template: str = QWEN_EDIT_TEMPLATE):
        if "{}" not in prompt_template:
            raise ValueError("the prompt template needs a '{}' slot for the user turn")
        self.model = model
        self.processor = processor
        self.prompt_template = prompt_template
        self.image_token_id = model.config.image_token_id
        self.drop_index = self._template_prefix_length()
        self.runs = 0
        tokenizer = processor.tokenizer
        added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self.reserved_tokens = sorted({t for t in getattr(tokenizer, "all_special_tokens", []) if t}
                                      | {t.content for t in added.values() if getattr(t, "special", False)})

    @classmethod
    def from_pretrained(cls, folder, prompt_template: str = QWEN_EDIT_TEMPLATE, **model_kwargs):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(folder, **model_kwargs).eval()
        processor = AutoProcessor.from_pretrained(folder, **{k: v for k, v in model_kwargs.items()
                                                             if k in ("local_files_only", "revision")})
        return cls(model, processor, prompt_template)

    def _template_prefix_length(self) -> int:
        """How many leading tokens belong to the system prefix, measured with this tokenizer.

        The prefix must tokenise the same alone and inside a full prompt, or dropping it would cut
        into the user's text; that is checked rather than assumed.
        """
        tokenizer = self.processor.tokenizer
        prefix = self.prompt_template.split("{}")[0]
        prefix_ids = tokenizer(prefix).input_ids
        full_ids = tokenizer(self.prompt_template.format("x")).input_ids
        if full_ids[: len(prefix_ids)] != prefix_ids:
            raise ValueError("the prompt template's prefix does not tokenise on its own; cannot drop it safely")
        return len(prefix_ids)

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is to the MLLM, without the prompt template."""
        return len(self.processor.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def check_instruction(self, text: str, what: str = "instruction") -> None:
        """``ValueError`` with one line when ``text`` cannot go into the prompt: longer than
        ``MAX_INSTRUCTION_TOKENS``, or holding one of the model's reserved tokens (``<|image_pad|>`` would break
        the image slots, ``<|im_end|>`` the chat template). Quick even for megabytes of text."""
        found = next((token for token in self.reserved_tokens if token in text), None)
        if found:
            raise ValueError(f"the {what} contains {found}, which the model reserves for its prompt; remove it")
        if len(text) > _MAX_CHARS_TO_COUNT:
            raise ValueError(f"the {what} is too long: {len(text):,} characters; the limit is "
                             f"{MAX_INSTRUCTION_TOKENS:,} tokens")
        count = self.count_tokens(text)
        if count > MAX_INSTRUCTION_TOKENS:
            raise ValueError(f"the {what} is too long: {count:,} tokens ({len(text):,} characters); the limit is "
                             f"{MAX_INSTRUCTION_TOKENS:,} tokens")

    def build_prompt(self, instruction: str, num_images: int) -> str:
        slots = "".join(IMAGE_SLOT.format(i + 1) for i in range(num_images))
        return self.prompt_template.format(slots + instruction)

    @torch.no_grad()
    def encode(self, instructions: list[str], images: list[list[Image.Image]]) -> list[MLLMEncoding]:
        """Encode ``instructions[i]`` jointly with ``images[i]`` (possibly empty) in one forward pass.

        Returns one ``MLLMEncoding`` per prompt, each trimmed to its own length (batch size 1).
        """
        if len(instructions) != len(images):
            raise ValueError("one list of images per instruction is needed")
        texts = [self.build_prompt(text, len(imgs)) for text, imgs in zip(instructions, images, strict=True)]
        flat_images = [img for imgs in images for img in imgs] or None
        inputs = self.processor(text=texts, images=flat_images, padding=True, return_tensors="pt")
        inputs = inputs.to(self.model.device)
        outputs = self.model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            pixel_values=inputs.get("pixel_values"),
            image_grid_thw=inputs.get("image_grid_thw"),
            output_hidden_states=True,
        )
        self.runs += 1
        stacked = torch.stack(outputs.hidden_states, dim=1)  # (B, L + 1, T_padded, d)
        return [
            self._trim(stacked[i], inputs["input_ids"][i], inputs["attention_mask"][i].bool())
            for i in range(len(texts))
        ]

    def _trim(self, states: torch.Tensor, input_ids: torch.Tensor, valid: torch.Tensor) -> MLLMEncoding:
        """Keep this prompt's real tokens (either padding side) minus the template prefix."""
        keep = valid.nonzero().squeeze(1)[self.drop_index:]
        states = states[:, keep].unsqueeze(0)
        is_image = (input_ids[keep] == self.image_token_id).unsqueeze(0)
        ones = torch.ones_like(is_image, dtype=torch.long)
        return MLLMEncoding(states, ones, ~is_image, is_image)
