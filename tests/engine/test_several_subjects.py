"""Several subjects in one image: which pictures belong to whom, through the request, the CLI and the engine."""
import json

import pytest
from PIL import Image

from squeeze_studio.cli import main
from squeeze_studio.mllm.encoder import JointMLLMEncoder
from squeeze_studio.pictures import name_pictures, subject_legend
from squeeze_studio.request import GenerationRequest

DOG_AND_TOY = [{"name": "dog", "count": 2}, {"name": "toy", "count": 1}]


def test_each_subjects_first_mention_is_tied_to_its_pictures():
    assert (name_pictures("The Dog chases the toy; the dog sleeps", DOG_AND_TOY)
            == "The Dog (Pictures 1 and 2) chases the toy (Picture 3); the dog sleeps")
    assert name_pictures("a hotdog and a toyota", DOG_AND_TOY) == "a hotdog and a toyota"  # whole words only
    assert name_pictures("Picture 3 next to the dog", DOG_AND_TOY) == "Picture 3 next to the dog"  # named already
    assert name_pictures("the dog on a beach", DOG_AND_TOY[:1]) == "the dog on a beach"  # one subject
    assert subject_legend(DOG_AND_TOY) == "dog: Pictures 1 and 2 · toy: Picture 3"


def test_a_request_whose_subjects_do_not_cover_its_references_is_refused():
    request = GenerationRequest("the dog and the toy", references=["a.png", "b.png"], subjects=DOG_AND_TOY)
    with pytest.raises(ValueError, match="subjects hold 3 references but the request has 2"):
        request.validate()
    with pytest.raises(ValueError, match="recipe field subjects"):
        GenerationRequest.from_untrusted({"instruction": "x", "subjects": [{"name": "dog", "count": 0}]})
    restored = GenerationRequest.from_untrusted({"instruction": "x", "subjects": DOG_AND_TOY})
    assert restored.subjects == DOG_AND_TOY


def test_the_cli_takes_a_ref_group_per_subject_and_the_engine_names_their_pictures(tmp_path, tiny_model_dir,
                                                                                     reference_files, monkeypatch):
    prompts = []
    encode = JointMLLMEncoder.encode
    monkeypatch.setattr(JointMLLMEncoder, "encode", lambda self, texts, images: prompts.extend(texts)
                        or encode(self, texts, images))
    a, b, c = (reference_files * 3)[:3]
    argv = ["generate", "--model", str(tiny_model_dir), "--prompt", "the dog plays with the toy", "--steps", "2",
            "--out", str(tmp_path / "out.png"), "--subject", "dog", "--ref", a, "--ref", b, "--subject", "toy",
            "--ref", c]
    assert main(argv) == 0
    assert prompts[0] == "the dog (Pictures 1 and 2) plays with the toy (Picture 3)"  # what the MLLM read
    with Image.open(tmp_path / "out.png") as image:
        recipe = json.loads(image.info["squeeze_studio"])["request"]
        parameters = image.info["parameters"]
    assert recipe["references"] == [a, b, c] and recipe["subjects"] == DOG_AND_TOY
    assert recipe["instruction"] == "the dog plays with the toy"  # the user's words; the pictures are added per run
    assert "Subjects: dog: Pictures 1 and 2 · toy: Picture 3" in parameters
    assert main(argv[:-4] + ["--subject", "toy"]) == 2  # a subject with no picture
