"""Short training runs on tiny real architectures: the loss goes down, checkpoints resume, LoRA fuses."""
import json

import pytest
import torch

from squeeze_studio.synth.dataset import load_jsonl, make_dataset
from squeeze_studio.testing.tiny import build_autoencoder_kl, build_tiny_pipeline
from squeeze_studio.train.encode import encode_records
from squeeze_studio.train.trainer import StageConfig, train_stage
from squeeze_studio.train.vae import VaeConfig, images_and_masks, reconstruction_psnr, train_vae


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    make_dataset(folder, 8, seed=0, split="train", max_refs=1)
    return load_jsonl(folder)


def losses(folder):
    return [r["loss"] for r in json.loads((folder / "progress.json").read_text())["log"]]


def fresh_pipeline():
    pipe = build_tiny_pipeline(vae=build_autoencoder_kl(blocks=3))
    pipe.vae.register_to_config(scaling_factor=1.0, shift_factor=0.0)
    return pipe


@pytest.mark.slow  # about 12 s: 40 steps of the demo VAE
def test_vae_reconstruction_improves(records, tmp_path):
    images, masks = images_and_masks(records, 64)
    vae = build_autoencoder_kl(blocks=3)
    before = reconstruction_psnr(vae, images[:8], masks[:8])
    train_vae(vae, images, masks, VaeConfig(steps=40, batch_size=8, learning_rate=3e-3, warmup_steps=1, log_every=10),
              tmp_path)
    assert losses(tmp_path)[-1] < losses(tmp_path)[0]
    assert reconstruction_psnr(vae, images[:8], masks[:8])["psnr"] > before["psnr"]


@pytest.mark.parametrize("stage, use_references", [("align", False), ("identity", True)])
def test_a_few_steps_of_each_stage_lower_the_loss(records, tmp_path, stage, use_references):
    pipe = fresh_pipeline()
    examples = encode_records(pipe, records, 64)
    assert examples[0].target.shape == (64, 16) and examples[0].references.shape == (64, 16)
    config = StageConfig(stage, steps=40, batch_size=4, learning_rate=3e-3, use_references=use_references,
                         warmup_steps=1, log_every=10, negative_dropout=0.0, reference_dropout=0.0)
    train_stage(pipe, examples, config, tmp_path, 64)
    assert losses(tmp_path)[-1] < losses(tmp_path)[0]
    assert not pipe.transformer.training and not any(p.requires_grad for p in pipe.connector.parameters())


def test_an_interrupted_stage_resumes_from_its_checkpoint(records, tmp_path):
    pipe = fresh_pipeline()
    examples = encode_records(pipe, records, 64)
    config = StageConfig("align", steps=12, batch_size=2, checkpoint_every=4, log_every=2, warmup_steps=1)

    def crash_at_step_6(record):
        if record["step"] == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_stage(pipe, examples, config, tmp_path, 64, on_log=crash_at_step_6)
    assert json.loads((tmp_path / "progress.json").read_text())["step"] == 4
    resumed_steps = []
    train_stage(fresh_pipeline(), examples, config, tmp_path, 64, on_log=lambda r: resumed_steps.append(r["step"]))
    assert resumed_steps == [6, 8, 10, 12]  # continued after the step-4 checkpoint, not from 0


def test_a_finished_stage_reruns_to_its_trained_weights(records, tmp_path):
    pipe = fresh_pipeline()
    examples = encode_records(pipe, records, 64)
    config = StageConfig("align", steps=3, batch_size=2, warmup_steps=1, log_every=1)
    train_stage(pipe, examples, config, tmp_path, 64)
    rerun, steps = fresh_pipeline(), []
    train_stage(rerun, examples, config, tmp_path, 64, on_log=lambda r: steps.append(r["step"]))
    assert steps == []  # nothing trained again
    for name, weight in pipe.transformer.state_dict().items():
        assert torch.equal(rerun.transformer.state_dict()[name], weight), name


def test_lora_trains_adapters_and_fuses_them(records, tmp_path):
    pipe = fresh_pipeline()
    examples = encode_records(pipe, records, 64)
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    config = StageConfig("identity", steps=6, batch_size=2, lora_rank=4, use_references=True, warmup_steps=1,
                         log_every=3, learning_rate=1e-2)
    train_stage(pipe, examples, config, tmp_path, 64)
    after = pipe.transformer.state_dict()
    assert set(after) == set(before)  # fused: no LoRA weights left behind
    query = "transformer_blocks.0.attn.to_q.weight"
    assert not torch.equal(after[query], before[query])
    assert torch.equal(after["proj_out.weight"], before["proj_out.weight"])  # outside LoRA's targets


@pytest.mark.parametrize("pairs_first_steps, mllm_steps", [(0, 0), pytest.param(2, 3, marks=pytest.mark.slow)])
def test_demo_recipe_smoke_run_writes_a_loadable_model(tmp_path, pairs_first_steps, mllm_steps):
    from dataclasses import replace

    from squeeze_studio import SqueezePipeline
    from squeeze_studio.train.demo import DemoRecipe, build_demo

    recipe = replace(DemoRecipe.smoke(), pairs_first_steps=pairs_first_steps, mllm_steps=mllm_steps)
    work = tmp_path / "work"
    report = build_demo(tmp_path / "model", work, recipe)
    assert report["recipe"]["identity_steps"] == DemoRecipe.smoke().identity_steps
    stage2 = "stage2-mllm3" if mllm_steps else "stage2"  # a pre-trained MLLM gets its own stages 1 and 2
    assert (work / stage2).is_dir() and (work / f"{stage2}-pairs").is_dir() == bool(pairs_first_steps)
    assert json.loads((work / f"{stage2}-restart" / "progress.json").read_text())["done"]  # stage 2's second cycle
    assert not report["curriculum"] and not (work / f"{stage2}-copy").exists()  # v4's recipe has no curriculum
    quality = work / "mllm" / "quality.json"
    assert quality.is_file() == bool(mllm_steps)
    if mllm_steps:
        assert set(json.loads(quality.read_text())["trained"]) == {"background", "pattern", "position", "scale",
                                                                   "orientation", "count", "body", "colour", "mark",
                                                                   "caption"}
    pipe = SqueezePipeline.from_pretrained(tmp_path / "model", local_files_only=True)
    assert pipe.preview_projection is not None and pipe.config.default_size == 64
    assert type(pipe.vae).__name__ == "AutoencoderKL"


def test_the_curriculum_starts_from_a_made_model_and_trains_copy_then_transform(tmp_path):
    from dataclasses import replace

    from squeeze_studio import SqueezePipeline
    from squeeze_studio.train.demo import DemoRecipe, build_demo

    recipe = DemoRecipe.smoke()
    with pytest.raises(ValueError, match="curriculum"):  # nothing to train from a made model
        build_demo(tmp_path / "none", tmp_path / "work", recipe, start_from=tmp_path / "anything")
    base = tmp_path / "v4"
    pipe = fresh_pipeline()
    pipe.save_pretrained(base)
    curriculum = replace(recipe, copy_steps=2, transform_steps=1, copy_count=4)
    work = tmp_path / "work"
    report = build_demo(tmp_path / "v5", work, curriculum, start_from=base)
    assert {p.name for p in work.iterdir() if p.is_dir()} == {"data", "stage2-copy", "stage2-transform"}
    assert report["curriculum"] == {"copy": {"step": 2, "seconds": report["curriculum"]["copy"]["seconds"]},
                                    "transform": {"step": 1, "seconds": report["curriculum"]["transform"]["seconds"]}}
    copies = [json.loads(line) for line in (work / "data" / "train-copy" / "data.jsonl").read_text().splitlines()]
    assert len(copies) == 4 and {r["meta"]["variant"] for r in copies} == {"copy"}
    trained = SqueezePipeline.from_pretrained(tmp_path / "v5", local_files_only=True).transformer.state_dict()
    start = pipe.transformer.state_dict()
    assert any(not torch.equal(trained[k], start[k]) for k in start)  # the curriculum trained the start model
    control = build_demo(tmp_path / "control", work, replace(curriculum, use_references=False), start_from=base)
    assert (work / "stage2-mllm-only-copy").is_dir() and control["start_from"] == str(base)


def test_a_mix_gives_the_extra_examples_their_share():
    from squeeze_studio.train.demo import mixed

    for share in (0.15, 0.5):
        mix = mixed(list(range(600)), ["copy"] * 7, share)
        assert abs(mix.count("copy") / len(mix) - share) < 0.01 and mix[:600] == list(range(600))
    with pytest.raises(ValueError, match="share"):
        mixed([1], [2], 1.0)


def test_timestep_aware_loss_runs_each_noise_level_as_the_stage_plan_does(records):
    from squeeze_studio.train.trainer import FlowMatchingStep

    pipe = fresh_pipeline()
    examples = encode_records(pipe, records, 64)[:4]
    null = pipe.encoder.encode([" "], [[]])[0].hidden_states[0]
    step = FlowMatchingStep(pipe, pipe.connector, pipe.transformer, null, 64)

    def loss(with_references, stage_taus=None, stream="positive"):
        with torch.no_grad():
            return step.loss(examples, stream, with_references, 1.0, torch.Generator().manual_seed(0), stage_taus)

    assert torch.allclose(loss(True, (1.0, 0.0)), loss(True), atol=1e-6)  # every t < 1: joint throughout
    assert torch.allclose(loss(True, (0.0, 0.0)), loss(False), atol=1e-6)  # every t >= 0: MLLM only
    assert torch.allclose(loss(True, (1.0, 1.0)), loss(True, stream="null"), atol=1e-6)  # VAE-focused
    assert not torch.allclose(loss(True), loss(False))  # the reference tokens matter, so the checks can fail


def test_the_text_reading_trains_vae_focused_steps_on_the_instruction_read_alone(records):
    from squeeze_studio.train.trainer import FlowMatchingStep

    pipe = fresh_pipeline()
    examples = encode_records(pipe, records, 64)[:4]
    assert examples[0].text is not None and not examples[0].text_image.any()  # no image tokens
    null = pipe.encoder.encode([" "], [[]])[0].hidden_states[0]
    step = FlowMatchingStep(pipe, pipe.connector, pipe.transformer, null, 64)

    def loss(stream="positive", stage_taus=None, reading="null"):
        with torch.no_grad():
            return step.loss(examples, stream, True, 1.0, torch.Generator().manual_seed(0), stage_taus,
                             vae_reading=reading)

    assert torch.allclose(loss(stage_taus=(1.0, 1.0), reading="text"), loss("text"), atol=1e-6)
    assert not torch.allclose(loss("text"), loss("null"))
    readings = FlowMatchingStep._vae_readings(400, "both", torch.Generator().manual_seed(0))
    assert 150 < readings.count("text") < 250 and set(readings) == {"text", "null"}
    with pytest.raises(ValueError, match="reading"):
        FlowMatchingStep._vae_readings(4, "half", torch.Generator())


def test_inference_timestep_sampling_gives_each_stage_its_share_of_inference_steps(records):
    """Uniform t bent by the scheduler's shift at the training size: the share of samples in each stage's range
    is the share of inference steps there (20 steps), for the demo's unshifted scheduler and Qwen-Image's
    resolution-dependent one."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from squeeze_studio.stages import Stage, StagePlan, stage_at
    from squeeze_studio.train.trainer import FlowMatchingStep

    pipe = fresh_pipeline()
    step = FlowMatchingStep(pipe, pipe.connector, pipe.transformer, torch.zeros(1, 1, 1), 64)
    for scheduler in (FlowMatchEulerDiscreteScheduler(),
                      FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                      base_image_seq_len=4, max_image_seq_len=64)):
        pipe.scheduler = scheduler
        t = step.noise_levels(20_000, "inference", torch.Generator().manual_seed(0))
        pipe.backbone.set_timesteps(scheduler, 20, 64, 64, "cpu")
        plan = StagePlan.from_taus(scheduler.sigmas[:20].tolist(), 0.95, 0.85)
        sampled = [stage_at(v, 0.95, 0.85) for v in t.tolist()]
        for stage in Stage:
            assert abs(sampled.count(stage) / len(sampled) - plan.count(stage) / 20) < 0.06, (scheduler.config, stage)
    logit_normal = step.noise_levels(20_000, "logit_normal", torch.Generator().manual_seed(0))
    assert (logit_normal >= 0.95).float().mean() < 0.03  # why: the old sampling starved the MLLM-only range
    with pytest.raises(ValueError, match="sampling"):
        step.noise_levels(4, "cosine", torch.Generator())
