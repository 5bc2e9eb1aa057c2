"""The one object that describes a generation.

The window fills it, the worker consumes it, the PNG recipe serialises it and a dropped PNG restores
it. Plain Python only: the app imports this module at start-up, before torch is loaded.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

# Paper defaults (arXiv 2605.26111): tau1 = 0.95, tau2 = 0.85, CFG 2.5.
DEFAULT_TAU1 = 0.95
DEFAULT_TAU2 = 0.85
DEFAULT_GUIDANCE = 2.5

# Bounds any request must keep (the window, the CLI, a restored recipe): beyond them a run is never useful
# and only ties the machine up. The model's own limits (size multiple, prompt tokens) are checked by the engine.
MAX_STEPS = 1000  # flow-matching schedulers are trained on 1000 timesteps
MAX_SIDE = 16384
MAX_BATCH = 64
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes up to 2**64 - 1; seed + batch index must fit
# The longest instruction (and negative prompt) a generation takes, in the MLLM tokenizer's tokens, as in
# diffusers' Qwen-Image pipelines. Checked before the MLLM runs, whose memory grows with the square of the
# length: a 100 kB instruction (about 25,000 tokens) once took more than 24 GB.
MAX_INSTRUCTION_TOKENS = 1024
# What a recipe read from an untrusted file may hold (``from_untrusted``): a real recipe is far below these.
MAX_TEXT_CHARS = 32_768  # the engine's 1,024-token instruction cap is about 4,000 characters of English
MAX_REFERENCES = 100
MAX_PATH_CHARS = 4096
MAX_SUBJECT_NAME_CHARS = 200
MAX_LORAS = 16
MAX_LORA_WEIGHT = 10.0  # |weight|; community LoRAs are used between about -2 and 2
# Step caching (``pipeline.step_cache``): reuse transformer work between steps of a stage, at some quality cost.
CACHE_MODES = ("none", "first-block", "taylorseer")


@dataclass
class GenerationRequest:
    """Everything relevant to one generation.

    ``tau1``/``tau2`` split the denoising trajectory (t = 1 is pure noise): steps with t >= tau1 see
    the MLLM stream only, steps with tau2 <= t < tau1 see MLLM + VAE reference tokens, steps with
    t < tau2 are VAE-focused (``stages.schedule``). tau1 = 1, tau2 = 0 is "MLLM + VAE at every step"; tau1 = tau2 = 0 is
    MLLM-only throughout. ``width``/``height`` of ``None`` mean the model's native size.
    """

    instruction: str
    references: list[str] = field(default_factory=list)
    negative_prompt: str = " "
    tau1: float = DEFAULT_TAU1
    tau2: float = DEFAULT_TAU2
    guidance_scale: float = DEFAULT_GUIDANCE
    num_inference_steps: int = 20
    seed: int = 0
    width: int | None = None
    height: int | None = None
    batch_count: int = 1
    model: str = ""  # "" = the built-in demo; a folder or a repo id from the Hugging Face cache
    addon: str = ""  # an add-on folder for that model, or ""
    # Several subjects in one image: consecutive runs of ``references``, e.g. [{"name": "dog", "count": 2},
    # {"name": "toy", "count": 1}]; [] = all references show one subject. See ``pictures``.
    subjects: list[dict] = field(default_factory=list)
    # Community LoRAs, in order: {"path": a .safetensors file, "weight": float, "name": str, "sha256": str}. The
    # engine fills name (the file's stem when empty) and sha256 (the file's content) for the recipe.
    loras: list[dict] = field(default_factory=list)
    cache: str = "none"  # a step cache mode of CACHE_MODES
    compile: bool = False  # torch.compile the transformer's repeated blocks (CUDA only; the first image compiles)

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for settings no backbone can run."""
        if not self.instruction.strip():
            raise ValueError("the instruction is empty: say what the new image should show")
        if self.num_inference_steps < 1:
            raise ValueError(f"steps must be at least 1 (got {self.num_inference_steps})")
        if self.num_inference_steps > MAX_STEPS:
            raise ValueError(f"steps must be at most {MAX_STEPS} (got {self.num_inference_steps})")
        if not 0.0 <= self.tau2 <= self.tau1 <= 1.0:
            raise ValueError(f"stage thresholds need 0 <= tau2 <= tau1 <= 1 (got tau1={self.tau1}, tau2={self.tau2})")
        if self.guidance_scale < 0:
            raise ValueError(f"guidance must not be negative (got {self.guidance_scale})")
        if not 1 <= self.batch_count <= MAX_BATCH:
            raise ValueError(f"batch count must be between 1 and {MAX_BATCH} (got {self.batch_count})")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (got {value})")
            if value is not None and value > MAX_SIDE:
                raise ValueError(f"{name} must be at most {MAX_SIDE} (got {value})")
        if self.seed < 0:
            raise ValueError(f"seed must not be negative (got {self.seed})")
        if self.subjects and sum(subject["count"] for subject in self.subjects) != len(self.references):
            raise ValueError(f"the subjects hold {sum(s['count'] for s in self.subjects)} references but the request "
                             f"has {len(self.references)}")
        if len(self.loras) > MAX_LORAS:
            raise ValueError(f"at most {MAX_LORAS} LoRAs at once (got {len(self.loras)})")
        for lora in self.loras:
            weight = lora.get("weight", 1.0)
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and abs(weight) <= MAX_LORA_WEIGHT):
                raise ValueError(f"LoRA weight must be between -{MAX_LORA_WEIGHT:g} and {MAX_LORA_WEIGHT:g} "
                                 f"(got {weight!r:.40} for {lora.get('name') or lora.get('path')})")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"unknown cache mode {self.cache!r}; choose one of {', '.join(CACHE_MODES)}")
        if self.seed + self.batch_count - 1 > MAX_SEED:
            raise ValueError(f"seed must be at most {MAX_SEED - self.batch_count + 1} (got {self.seed})")

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """Build from a dict, ignoring keys this version does not know (recipes from newer versions)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_untrusted(cls, data: Any) -> GenerationRequest:
        """``from_dict`` for data read from a file someone else may have made (a dropped PNG's recipe).

        Every field's type is checked and its size capped; nothing is evaluated. Unknown keys are ignored,
        missing ones take their defaults (but the instruction must be there). ``ValueError`` with one line
        naming the first bad field. Paths are only checked for shape here (``recipe.outside_paths`` says which
        point outside the user's folders)."""
        if not isinstance(data, dict):
            raise ValueError("the recipe is not an object")
        if "instruction" not in data:
            raise ValueError("the recipe has no instruction")
        values = {}
        for spec in dataclasses.fields(cls):
            if spec.name in data:
                values[spec.name] = _checked(spec.name, data[spec.name])
        return cls(**values)


def _checked(name: str, value: Any) -> Any:
    """``value`` if it has the type and size field ``name`` may have; ``ValueError`` naming the field otherwise."""
    def fail(why: str):
        raise ValueError(f"recipe field {name} {why}")

    if name in ("instruction", "negative_prompt"):
        if not isinstance(value, str):
            fail(f"is not text (got {type(value).__name__})")
        if len(value) > MAX_TEXT_CHARS:
            fail(f"is too long ({len(value):,} characters; at most {MAX_TEXT_CHARS:,})")
        return value
    if name in ("model", "addon"):
        return _checked_path(name, value, fail)
    if name == "references":
        if not isinstance(value, list):
            fail(f"is not a list (got {type(value).__name__})")
        if len(value) > MAX_REFERENCES:
            fail(f"lists too many references ({len(value):,}; at most {MAX_REFERENCES})")
        return [_checked_path(name, item, fail) for item in value]
    if name == "subjects":
        if not isinstance(value, list) or len(value) > MAX_REFERENCES:
            fail(f"is not a list of at most {MAX_REFERENCES} subjects")
        subjects = []
        for item in value:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                fail("holds a subject without a name")
            count = item.get("count")
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REFERENCES:
                fail(f"holds a subject whose reference count is not 1 to {MAX_REFERENCES} (got {count!r:.40})")
            subjects.append({"name": item["name"][:MAX_SUBJECT_NAME_CHARS], "count": count})
        return subjects
    if name in ("tau1", "tau2", "guidance_scale"):
        try:
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
        except OverflowError:  # an integer too large for a float
            number = math.inf
        if not math.isfinite(number):
            fail(f"is not a finite number (got {value!r:.40})")
        return number
    if name in ("num_inference_steps", "seed", "batch_count", "width", "height"):
        if value is None and name in ("width", "height"):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            fail(f"is not a whole number (got {value!r:.40})")
        bound = {"num_inference_steps": MAX_STEPS, "seed": MAX_SEED, "batch_count": MAX_BATCH}.get(name, MAX_SIDE)
        if not 0 <= value <= bound:
            fail(f"is out of range (got {value}; 0 to {bound})")
        return value
    if name == "loras":
        if not isinstance(value, list):
            fail(f"is not a list (got {type(value).__name__})")
        if len(value) > MAX_LORAS:
            fail(f"lists too many LoRAs ({len(value):,}; at most {MAX_LORAS})")
        return [_checked_lora(item, fail) for item in value]
    if name == "cache":
        if not isinstance(value, str) or value not in CACHE_MODES:
            fail(f"is not a cache mode (got {value!r:.40}; one of {', '.join(CACHE_MODES)})")
        return value
    if name == "compile":
        if not isinstance(value, bool):
            fail(f"is not true or false (got {value!r:.40})")
        return value
    return value  # a field added later without a check here: the dataclass takes it as it is


def _checked_lora(item: Any, fail) -> dict:
    if not isinstance(item, dict) or "path" not in item:
        fail("holds an entry that is not a LoRA (an object with a path)")
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not abs(weight) <= MAX_LORA_WEIGHT:
        fail(f"holds a LoRA weight out of range (got {weight!r:.40})")
    name, digest = item.get("name", ""), item.get("sha256", "")
    if not isinstance(name, str) or len(name) > 256 or "\x00" in name:
        fail("holds a LoRA name that is not short text")
    if not isinstance(digest, str) or len(digest) > 64 or any(c not in "0123456789abcdef" for c in digest):
        fail("holds a LoRA hash that is not a sha256 in hex")
    return {"path": _checked_path("loras", item["path"], fail), "weight": float(weight), "name": name,
            "sha256": digest}


def _checked_path(name: str, value: Any, fail) -> str:
    if not isinstance(value, str):
        fail(f"holds a {type(value).__name__} where a path is expected")
    if len(value) > MAX_PATH_CHARS or "\x00" in value:
        fail("holds a path that is too long or contains a NUL character")
    return value
