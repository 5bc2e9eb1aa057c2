"""Stage 0b: teach the tiny MLLM to see SynthSubjects scenes, then freeze it.

The paper's MLLM arrives pre-trained on captions and visual questions; the random one built by
``testing.tiny`` does not. Here it learns to describe each SynthSubjects image and to answer questions about
it (next-token loss on the answer only), through the same processor and prompt template the pipeline encodes
with, so its frozen layers hold scene features before the connector reads them. ``answer_accuracy`` says
whether it learned to see: an answer counts when greedy decoding would produce it exactly.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from ..mllm.encoder import IMAGE_SLOT
from .checkpoint import StageProgress
from .loop import LoopSettings, run_steps

ASSISTANT = "<|im_start|>assistant\n"
END = "<|im_end|>"


def caption(scene: dict, subject: dict) -> str:
    count = {1: "a", 2: "two", 3: "three"}.get(int(scene["count"]), str(scene["count"]))
    parts = " and ".join(subject["parts"]) or "no parts"
    return (f"{count} {subject['body_colour']} {subject['body']} with {parts}, {subject['pattern']} pattern, "
            f"{subject['mark_colour']} {subject['mark']} mark, {scene['orientation']}, {scene['scale']}, "
            f"{scene['position']}, on a {scene['bg_pattern']} {scene['background']} background")


# kind -> (question, answer from (scene, subject))
QUESTIONS: dict[str, tuple[str, Callable[[dict, dict], str]]] = {
    "background": ("What colour is the background?", lambda scene, _: scene["background"]),
    "pattern": ("What pattern is the background?", lambda scene, _: scene["bg_pattern"]),
    "position": ("Where is the subject?", lambda scene, _: scene["position"]),
    "scale": ("How big is the subject?", lambda scene, _: scene["scale"]),
    "orientation": ("How is the subject turned?", lambda scene, _: scene["orientation"]),
    "count": ("How many subjects are there?", lambda scene, _: str(scene["count"])),
    "body": ("What shape is the subject?", lambda _, subject: subject["body"]),
    "colour": ("What colour is the subject?", lambda _, subject: subject["body_colour"]),
    "mark": ("What mark does the subject carry?", lambda _, subject: f"{subject['mark_colour']} {subject['mark']}"),
    "caption": ("Describe the image.", caption),
}


@dataclass(frozen=True)
class SceneQuestion:
    image: str  # path
    kind: str  # a QUESTIONS key
    question: str
    answer: str


def scene_questions(records: list[dict]) -> list[SceneQuestion]:
    """Every QUESTIONS kind about every image (target and references) of SynthSubjects records."""
    out = []
    for record in records:
        meta = record.get("meta", {})
        if "target" not in meta or "subject" not in meta:
            raise ValueError("scene questions need SynthSubjects records (meta.target and meta.subject)")
        scenes = [(record["output_image"], meta["target"])]
        scenes += list(zip(record["input_images"], meta.get("references", []), strict=False))
        for path, scene in scenes:
            out += [SceneQuestion(path, kind, question, answer(scene, meta["subject"]))
                    for kind, (question, answer) in QUESTIONS.items()]
    return out


@dataclass
class SceneTrainingConfig:
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    checkpoint_every: int = 250
    log_every: int = 50
    seed: int = 0


class SceneBatches:
    """Processor inputs with labels on the answer tokens only (the prompt is the pipeline's template)."""

    def __init__(self, processor, prompt_template: str):
        self.processor, self.template = processor, prompt_template

    def text(self, item: SceneQuestion) -> str:
        prompt = self.template.format(IMAGE_SLOT.format(1) + item.question)
        return prompt + ("" if prompt.endswith(ASSISTANT) else ASSISTANT) + item.answer + END

    def __call__(self, items: list[SceneQuestion]) -> dict:
        images = []
        for item in items:
            with Image.open(item.image) as image:
                images.append(image.convert("RGB"))
        inputs = self.processor(text=[self.text(i) for i in items], images=images, padding=True, return_tensors="pt")
        tokenizer = self.processor.tokenizer
        labels = torch.full_like(inputs["input_ids"], -100)
        for row, item in enumerate(items):
            answer = tokenizer(item.answer + END).input_ids
            real = inputs["attention_mask"][row].nonzero().flatten()[-len(answer):]
            if inputs["input_ids"][row, real].tolist() != answer:
                raise ValueError(f"the answer {item.answer!r} does not tokenise on its own inside the prompt")
            labels[row, real] = inputs["input_ids"][row, real]
        inputs["labels"] = labels
        return inputs


def train_scene_reader(model, processor, questions: list[SceneQuestion], config: SceneTrainingConfig, folder,
                       prompt_template: str, on_log: Callable[[dict], None] | None = None) -> dict:
    """Train every weight of the MLLM (vision tower included) on ``questions``, checkpointing to ``folder``
    and resuming from it; a finished run loads its final weights. The model comes back frozen, in eval mode."""
    from accelerate import Accelerator

    progress = StageProgress(folder)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01, betas=(0.9, 0.99))
    prepared, optimizer = accelerator.prepare(model, optimizer)
    batches = SceneBatches(processor, prompt_template)

    def step_loss(generator: torch.Generator) -> torch.Tensor:
        picks = torch.randint(len(questions), (config.batch_size,), generator=generator).tolist()
        return prepared(**batches([questions[i] for i in picks]).to(accelerator.device)).loss

    prepared.train()
    settings = LoopSettings("mllm", config.steps, config.learning_rate, config.warmup_steps, config.log_every,
                            config.checkpoint_every, config.seed)
    summary = run_steps(settings, accelerator, optimizer, progress, step_loss, on_log)
    accelerator.unwrap_model(prepared).eval().requires_grad_(False)
    return summary


@torch.no_grad()
def answer_accuracy(model, processor, questions: list[SceneQuestion], prompt_template: str,
                    batch_size: int = 64) -> dict[str, float]:
    """Share of questions per kind whose every answer token is the model's top choice given the tokens before
    it, i.e. that greedy decoding would answer exactly."""
    batches, right, total = SceneBatches(processor, prompt_template), Counter(), Counter()
    for start in range(0, len(questions), batch_size):
        items = questions[start: start + batch_size]
        inputs = batches(items).to(model.device)
        labels = inputs.pop("labels")
        predicted = model(**inputs).logits[:, :-1].argmax(-1)
        target = labels[:, 1:]
        correct = ((predicted == target) | (target == -100)).all(-1)
        for item, ok in zip(items, correct.tolist(), strict=True):
            right[item.kind] += ok
            total[item.kind] += 1
    return {kind: right[kind] / total[kind] for kind in total}


def majority_accuracy(train: list[SceneQuestion], test: list[SceneQuestion]) -> dict[str, float]:
    """The blind baseline: always give the training set's most frequent answer of each kind."""
    counts: dict[str, Counter] = {}
    for item in train:
        counts.setdefault(item.kind, Counter())[item.answer] += 1
    common = {kind: answers.most_common(1)[0][0] for kind, answers in counts.items()}
    right, total = Counter(), Counter()
    for item in test:
        right[item.kind] += item.answer == common.get(item.kind)
        total[item.kind] += 1
    return {kind: right[kind] / total[kind] for kind in total}


def pretrain_scene_reader(model, processor, train: list[dict], val: list[dict], config: SceneTrainingConfig, folder,
                          prompt_template: str, on_log: Callable[[dict], None] | None = None) -> dict:
    """Stage 0b on SynthSubjects records, measured: answer accuracy on ``val`` before training (random
    initialisation), after it, and of the blind majority answer, kept in ``folder/quality.json``."""
    import json
    from pathlib import Path

    quality_file = Path(folder) / "quality.json"
    quality = json.loads(quality_file.read_text()) if quality_file.is_file() else {}
    questions, held_out = scene_questions(train), scene_questions(val)
    if "random" not in quality:
        quality = {"questions": len(held_out), "majority": majority_accuracy(questions, held_out),
                   "random": answer_accuracy(model, processor, held_out, prompt_template)}
    summary = train_scene_reader(model, processor, questions, config, folder, prompt_template, on_log)
    if "trained" not in quality:
        quality.update(trained=answer_accuracy(model, processor, held_out, prompt_template), steps=config.steps,
                       seconds=summary.get("seconds"))
        quality_file.write_text(json.dumps(quality, indent=2))
        if on_log:
            on_log({"stage": "mllm", "accuracy": quality["trained"]})
    return quality
