"""The built-in demo model's recipe, end to end and resumable: SynthSubjects data -> VAE (0a) -> frozen tiny
Qwen2.5-VL with a domain tokenizer, random or scene-pre-trained (0b) -> stage 1 (MLLM only) -> stage 2 (+ VAE
tokens) -> stage 3 (v5: a copy -> transform curriculum).

    squeeze train demo --out resources/demo-model --work work/demo

Every stage checkpoints under ``--work``; running the same command again resumes where it stopped.
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

SHORT_TEMPLATE = "<|im_start|>user\n{}<|im_end|>\n"  # no system prompt: the demo MLLM never saw one


@dataclass
class DemoRecipe:
    size: int = 64
    train_count: int = 6000
    val_count: int = 256
    identity_share: float = 0.3  # targets that only move/re-background the reference: a reason to use it
    max_refs: int = 2
    vae_steps: int = 2000
    align_steps: int = 4000  # the instruction is read in stage 1: it needs the longer share
    identity_steps: int = 5500
    restart_steps: int = 3000  # then a second cosine cycle of stage 2 (warm restart): measured better adherence
    pairs_first_steps: int = 0  # of identity_steps: a curriculum that starts on identity pairs only
    # v5: a copy -> transform curriculum after stage 2 (stage 3). Copy examples keep the first reference's place,
    # pose and size and change only the background, so reading the reference tokens is the way to the subject;
    # they make up copy_shares[0] of the copy phase's examples, then copy_shares[1] of the transform phase's.
    copy_steps: int = 0
    transform_steps: int = 0
    copy_count: int = 2000
    copy_shares: tuple[float, float] = (0.5, 0.15)
    batch_size: int = 32
    mllm_hidden: int = 64
    mllm_layers: int = 4
    mllm_steps: int = 0  # stage 0b scene captioning/VQA pre-training; 0: a random frozen MLLM (see docs/ablations.md)
    width_heads: int = 4  # transformer width = heads x 32
    transformer_layers: int = 4
    subject_weight: float = 4.0
    # Stage 2 trains what inference runs (v4; v3 had logit-normal t, no staging): t spread as the inference
    # schedule's steps, each t conditioned as the default stage plan (0.95 / 0.85) conditions it, and both
    # readings of the VAE-focused steps drawn half each, so that the reading can be chosen by measurement.
    timestep_sampling: str = "inference"
    stage_aware: bool = True
    vae_reading: str = "both"
    use_references: bool = True  # False: the "MLLM only" control, same recipe without reference tokens
    seed: int = 0

    @classmethod
    def v5(cls) -> DemoRecipe:
        """What the v5 diagnosis found missing (resources/demo-model/README.md, "v5 diagnosis"): training that
        asks for the references. v4's stages, then the copy -> transform curriculum."""
        return cls(copy_steps=1000, transform_steps=2000)

    @classmethod
    def smoke(cls) -> DemoRecipe:
        """A few steps of everything, for tests."""
        return cls(train_count=24, val_count=8, vae_steps=4, align_steps=3, identity_steps=3, restart_steps=2,
                   batch_size=4, mllm_hidden=32, mllm_layers=2, width_heads=2, transformer_layers=1)

    def __post_init__(self) -> None:
        if self.mllm_steps < 0:
            raise ValueError(f"mllm_steps must be 0 (random MLLM) or more (got {self.mllm_steps})")


def _log(record: dict) -> None:
    print(json.dumps(record), flush=True)


def dataset(work: Path, split: str, count: int, recipe: DemoRecipe) -> list[dict]:
    """``work/data/{split}``, rendered once."""
    from ..synth.dataset import load_jsonl, make_dataset

    folder = work / "data" / split
    if not (folder / "data.jsonl").is_file():
        make_dataset(folder, count, seed=recipe.seed, split=split, size=recipe.size, max_refs=recipe.max_refs,
                     identity_prob=recipe.identity_share if split == "train" else 0.0)
    return load_jsonl(folder)


def copy_dataset(work: Path, recipe: DemoRecipe) -> list[dict]:
    """``work/data/train-copy``: the curriculum's copy examples, of other training subjects (the next seed)."""
    from ..synth.dataset import load_jsonl, make_dataset

    folder = work / "data" / "train-copy"
    if not (folder / "data.jsonl").is_file():
        make_dataset(folder, recipe.copy_count, seed=recipe.seed + 1, split="train", size=recipe.size,
                     max_refs=recipe.max_refs, copy_variant=True)
    return load_jsonl(folder)


def mixed(examples: list, extra: list, share: float) -> list:
    """``examples`` with ``extra`` repeated so that ``extra`` is about ``share`` of the result (0 < share < 1)."""
    if not extra or not 0 < share < 1:
        raise ValueError(f"a mix needs extra examples and 0 < share < 1 (got {len(extra)}, {share})")
    wanted = round(len(examples) * share / (1 - share))
    return examples + [extra[i % len(extra)] for i in range(wanted)]


def train_vae_once(work: Path, train: list[dict], val: list[dict], recipe: DemoRecipe):
    """Stage 0a under ``work/vae`` (resumable), or the VAE it already made."""
    from diffusers import AutoencoderKL

    from .vae import VaeConfig, build_vae, calibrate, images_and_masks, reconstruction_psnr, train_vae

    final = work / "vae" / "model"
    if (final / "config.json").is_file():
        return AutoencoderKL.from_pretrained(final)
    torch.manual_seed(recipe.seed)
    vae = build_vae()
    images, masks = images_and_masks(train, recipe.size)
    train_vae(vae, images, masks, VaeConfig(steps=recipe.vae_steps, batch_size=recipe.batch_size), work / "vae",
              on_log=_log)
    calibrate(vae, images[:2048])
    quality = reconstruction_psnr(vae, *images_and_masks(val, recipe.size, references=False))
    _log({"stage": "vae", "val": quality})
    (work / "vae" / "quality.json").write_text(json.dumps(quality))
    vae.save_pretrained(final)
    return vae


def domain_mllm(train: list[dict], recipe: DemoRecipe, work: Path | None = None):
    """Stage 0b: (frozen MLLM, processor). A tokenizer learned from the training instructions and a seeded
    random tiny Qwen2.5-VL; with ``recipe.mllm_steps`` it is then pre-trained on scene captions and questions
    under ``work/mllm`` (resumable), its answer accuracy written to ``work/mllm/quality.json``."""
    from ..mllm.encoder import IMAGE_SLOT
    from ..testing.tiny import build_mllm, build_processor, build_tokenizer

    corpus = [r["instruction"] for r in train] + [IMAGE_SLOT.format(i) for i in (1, 2, 3)] + ["user", "assistant"]
    tokenizer = build_tokenizer(corpus, vocab_size=1024)
    mllm = build_mllm(tokenizer, hidden=recipe.mllm_hidden, layers=recipe.mllm_layers, seed=recipe.seed)
    processor = build_processor(tokenizer)
    if recipe.mllm_steps:
        if work is None:
            raise ValueError("MLLM pre-training needs a work folder for its checkpoints")
        from .mllm import SceneTrainingConfig, pretrain_scene_reader

        val = dataset(work, "val", recipe.val_count, recipe)
        config = SceneTrainingConfig(steps=recipe.mllm_steps, batch_size=recipe.batch_size, seed=recipe.seed)
        pretrain_scene_reader(mllm, processor, train, val, config, work / "mllm", SHORT_TEMPLATE, on_log=_log)
    mllm.requires_grad_(False)
    return mllm, processor


def assemble(vae, train: list[dict], recipe: DemoRecipe, connector_mode: str = "dla", work: Path | None = None,
             init_seed: int | None = None):
    """The untrained pipeline: the stage-0b MLLM (see ``domain_mllm``, seeded by the recipe), fresh connector and
    transformer initialised from ``init_seed`` (default: the recipe's seed)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

    from ..dla import LayerConnector
    from ..pipeline import SqueezePipeline

    mllm, processor = domain_mllm(train, recipe, work)
    torch.manual_seed(recipe.seed if init_seed is None else init_seed)
    latent = vae.config.latent_channels
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=latent * 4, out_channels=latent, num_layers=recipe.transformer_layers,
        attention_head_dim=32, num_attention_heads=recipe.width_heads, joint_attention_dim=recipe.mllm_hidden,
        axes_dims_rope=(16, 8, 8))
    # Trained from scratch: start from the normalised layers' average, not the raw last layer (see dla/connector)
    connector = LayerConnector(mode=connector_mode, num_layers=recipe.mllm_layers + 1, hidden_size=recipe.mllm_hidden,
                               num_heads=4 if recipe.mllm_hidden % 4 == 0 else 2, identity_init=False,
                               normalize_layers=True)
    pipe = SqueezePipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=mllm,
                           processor=processor, transformer=transformer, connector=connector,
                           condition_image_area=56 * 56, reference_image_area=recipe.size ** 2,
                           default_size=recipe.size, prompt_template=SHORT_TEMPLATE)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stage_config(recipe: DemoRecipe, name: str, steps: int, **overrides):
    """The recipe's settings for one training stage; the identity stages (stage 2) add the reference tokens
    and the null-conditioning dropout the VAE-focused steps need."""
    from ..hub.defaults import PAPER_DEFAULTS
    from .trainer import StageConfig

    settings = dict(batch_size=recipe.batch_size, seed=recipe.seed, subject_weight=recipe.subject_weight)
    if name.startswith("identity"):
        settings.update(use_references=recipe.use_references, null_dropout=0.1,
                        timestep_sampling=recipe.timestep_sampling, vae_reading=recipe.vae_reading)
        if recipe.stage_aware and recipe.use_references:  # the control has no references: no stages to train
            settings.update(stage_taus=(PAPER_DEFAULTS.tau1, PAPER_DEFAULTS.tau2))
    return StageConfig(name, steps, **{**settings, **overrides})


def encoded(pipe, records, path: Path, size: int):
    """The records' training encodings, cached at ``path``."""
    from .encode import encode_records

    if path.is_file():
        return torch.load(path, weights_only=False)
    examples = encode_records(pipe, records, size)
    torch.save(examples, path)
    return examples


def _stages_1_and_2(pipe, examples, train, recipe: DemoRecipe, work: Path, after_align: Path, stage2: str,
                    mllm: str):
    """Stage 1 (saved as ``after_align``), then stage 2 and its second cycle: (stage-2, restart) summaries."""
    from .trainer import train_stage

    if not after_align.is_dir():
        train_stage(pipe, examples, stage_config(recipe, "align", recipe.align_steps), work / f"stage1{mllm}",
                    recipe.size, on_log=_log)
        pipe.save_pretrained(after_align)
    if recipe.pairs_first_steps:  # copying is the only way to get these targets right: learn it first
        pairs = [e for e, r in zip(examples, train, strict=True) if r["meta"].get("variant") == "identity"]
        if not pairs or not 0 < recipe.pairs_first_steps < recipe.identity_steps:
            raise ValueError(f"pairs-first needs identity pairs and 0 < steps < {recipe.identity_steps}")
        train_stage(pipe, pairs, stage_config(recipe, "identity-pairs", recipe.pairs_first_steps),
                    work / f"{stage2}-pairs", recipe.size, on_log=_log)
    summary = train_stage(pipe, examples,
                          stage_config(recipe, "identity", recipe.identity_steps - recipe.pairs_first_steps),
                          work / stage2, recipe.size, on_log=_log)
    restart = {}
    if recipe.restart_steps:  # the learning rate warms up again and decays over a second, shorter cycle
        restart = train_stage(pipe, examples, stage_config(recipe, "identity-restart", recipe.restart_steps),
                              work / f"{stage2}-restart", recipe.size, on_log=_log)
    return summary, restart


def _curriculum(pipe, examples, recipe: DemoRecipe, work: Path, stage2: str, mllm: str) -> dict:
    """Stage 3 (v5): the copy phase, then the transform phase, each a stage of its own (own warm-up and cosine
    decay, own checkpoints); {} when the recipe has none."""
    from .trainer import train_stage

    if not recipe.copy_steps + recipe.transform_steps:
        return {}
    copies = encoded(pipe, copy_dataset(work, recipe), work / f"encoded_train-copy{mllm}.pt", recipe.size)
    done = {}
    for phase, steps, share in (("copy", recipe.copy_steps, recipe.copy_shares[0]),
                                ("transform", recipe.transform_steps, recipe.copy_shares[1])):
        if steps:
            config = stage_config(recipe, f"identity-{phase}", steps)
            summary = train_stage(pipe, mixed(examples, copies, share), config, work / f"{stage2}-{phase}",
                                  recipe.size, on_log=_log)
            done[phase] = {k: summary[k] for k in ("step", "seconds") if k in summary}
    return done


def build_demo(out: str | Path, work: str | Path, recipe: DemoRecipe | None = None,
               start_from: str | Path | None = None) -> dict:
    """Every stage of ``recipe`` into ``out`` (a pipeline folder), resumable from ``work``. ``start_from``: a demo
    model folder made by the same recipe's stages 0-2 (the shipped model, for v5): only the curriculum is trained."""
    from ..backbones.qwen_image import fit_preview_projection
    from ..pipeline import SqueezePipeline

    recipe = recipe or DemoRecipe()
    if start_from is not None and not recipe.copy_steps + recipe.transform_steps:
        raise ValueError("--start-from trains the curriculum only, and this recipe has none (use --recipe v5)")
    out, work = Path(out), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    torch.manual_seed(recipe.seed)
    train = dataset(work, "train", recipe.train_count, recipe)
    val = dataset(work, "val", recipe.val_count, recipe)
    mllm = f"-mllm{recipe.mllm_steps}" if recipe.mllm_steps else ""  # what the MLLM reads differs from here on
    after_align = work / f"after_align{mllm}"
    if start_from is not None:
        pipe = SqueezePipeline.from_pretrained(start_from, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
    elif (after_align / "model_index.json").is_file():
        pipe = SqueezePipeline.from_pretrained(after_align, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
    else:
        pipe = assemble(train_vae_once(work, train, val, recipe), train, recipe, work=work)
    examples = encoded(pipe, train, work / f"encoded_train{mllm}.pt", recipe.size)
    stage2 = ("stage2" if recipe.use_references else "stage2-mllm-only") + mllm  # shares data, VAE and stage 1
    summary = restart = {}
    if start_from is None:
        summary, restart = _stages_1_and_2(pipe, examples, train, recipe, work, after_align, stage2, mllm)
    curriculum = _curriculum(pipe, examples, recipe, work, stage2, mllm)
    from PIL import Image

    samples = [Image.open(r["output_image"]).convert("RGB") for r in val[:32]]
    preview = fit_preview_projection(pipe.backbone, samples, grid=recipe.size // pipe.backbone.vae_scale_factor)
    pipe.register_modules(preview_projection=preview)
    pipe.save_pretrained(out)
    report = {"recipe": asdict(recipe), "seconds": round(time.perf_counter() - began, 1),
              "stage2": {k: summary[k] for k in ("step", "seconds") if k in summary},
              "stage2_restart": {k: restart[k] for k in ("step", "seconds") if k in restart},
              "curriculum": curriculum, "start_from": str(start_from) if start_from is not None else None,
              "vae": json.loads((work / "vae" / "quality.json").read_text())
              if (work / "vae" / "quality.json").is_file() else None,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                         f"{'cuda' if torch.cuda.is_available() else 'cpu'}"}
    (out / "training.json").write_text(json.dumps(report, indent=2))
    return report
