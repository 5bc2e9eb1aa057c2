"""Stage 0b: scene questions come from the renderer's ground truth, only the answer is trained, a short run
lowers the loss and resumes, and the answer metric counts what greedy decoding would say."""
import json
from types import SimpleNamespace

import pytest
import torch

from squeeze_studio.synth.dataset import load_jsonl, make_dataset
from squeeze_studio.testing.tiny import build_mllm, build_processor, build_tokenizer
from squeeze_studio.train.demo import SHORT_TEMPLATE
from squeeze_studio.train.mllm import (
    END,
    QUESTIONS,
    SceneBatches,
    SceneQuestion,
    SceneTrainingConfig,
    answer_accuracy,
    majority_accuracy,
    scene_questions,
    train_scene_reader,
)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    make_dataset(folder, 4, seed=0, split="train", max_refs=2)
    return load_jsonl(folder)


@pytest.fixture(scope="module")
def processor():
    return build_processor(build_tokenizer())


def test_every_image_gets_every_question_answered_from_its_own_scene(records):
    questions = scene_questions(records)
    images = sum(1 + len(r["input_images"]) for r in records)
    assert len(questions) == images * len(QUESTIONS)
    first = records[0]
    on_target = {q.kind: q.answer for q in questions if q.image == first["output_image"]}
    assert on_target["background"] == first["meta"]["target"]["background"]
    assert on_target["body"] == first["meta"]["subject"]["body"]
    reference_scene = first["meta"]["references"][0]
    on_reference = {q.kind: q.answer for q in questions if q.image == first["input_images"][0]}
    assert on_reference["position"] == reference_scene["position"]
    with pytest.raises(ValueError, match="SynthSubjects records"):
        scene_questions([{"output_image": "x.png", "input_images": [], "meta": {}}])


def test_only_the_answer_is_trained(records, processor):
    question = scene_questions(records)[0]
    batch = SceneBatches(processor, SHORT_TEMPLATE)([question])
    labelled = batch["labels"][0] != -100
    assert processor.tokenizer.decode(batch["input_ids"][0][labelled]) == question.answer + END
    assert question.question in processor.tokenizer.decode(batch["input_ids"][0][~labelled])


def test_a_short_run_lowers_the_loss_and_resumes_from_its_final_weights(records, processor, tmp_path):
    questions = scene_questions(records)[:16]
    model = build_mllm(processor.tokenizer, hidden=32, layers=2)
    config = SceneTrainingConfig(steps=30, batch_size=8, learning_rate=3e-3, warmup_steps=1, log_every=10)
    train_scene_reader(model, processor, questions, config, tmp_path, SHORT_TEMPLATE)
    log = [r["loss"] for r in json.loads((tmp_path / "progress.json").read_text())["log"]]
    assert log[-1] < log[0]
    assert not model.training and not any(p.requires_grad for p in model.parameters())

    again = build_mllm(processor.tokenizer, hidden=32, layers=2)  # random again, until the finished run loads
    train_scene_reader(again, processor, questions, config, tmp_path, SHORT_TEMPLATE)
    for trained, loaded in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(trained, loaded)


class PerfectReader(torch.nn.Module):
    """Puts all its probability on the labelled next token; ``wrong`` misses one answer token."""

    def __init__(self, labels, wrong=False):
        super().__init__()
        self.labels, self.wrong, self.device = labels, wrong, torch.device("cpu")

    def forward(self, input_ids, **_):
        logits = torch.zeros(*input_ids.shape, 4096)
        following = torch.cat([self.labels[:, 1:], torch.zeros_like(self.labels[:, :1])], 1).clamp(min=0)
        logits.scatter_(-1, following[..., None], 1.0)
        if self.wrong:
            last = (self.labels[0] != -100).nonzero()[-1].item()
            logits[0, last - 1] = 0.0
            logits[0, last - 1, 0] = 1.0
        return SimpleNamespace(logits=logits)


@pytest.mark.parametrize("wrong, expected", [(False, 1.0), (True, 0.0)])
def test_an_answer_counts_only_when_every_token_is_the_top_choice(records, processor, wrong, expected):
    question = scene_questions(records)[0]
    labels = SceneBatches(processor, SHORT_TEMPLATE)([question])["labels"]
    assert answer_accuracy(PerfectReader(labels, wrong), processor, [question], SHORT_TEMPLATE) == {
        question.kind: expected}


def test_the_majority_baseline_answers_the_most_frequent_training_answer():
    train = [SceneQuestion("a.png", "background", "?", colour) for colour in ("red", "red", "blue")]
    test = [SceneQuestion("b.png", "background", "?", colour) for colour in ("red", "blue", "green", "red")]
    assert majority_accuracy(train, test) == {"background": 0.5}
