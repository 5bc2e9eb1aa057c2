"""The demo model's v5 diagnosis (issue 24): why its transformer does not use the reference VAE tokens.

    python benchmarks/demo_diagnosis.py static --model resources/demo-model --data WORK/data --out OUT.json
    python benchmarks/demo_diagnosis.py probe --model resources/demo-model --data WORK/data --variant v4-arch \
        --steps 300 --out OUT.json

``attention``: the model's attention mass per layer on the copy probe. ``static``: tokens per subject, the VAE's
ceiling at 64 and 128 pixels, and the shipped transformer on the copy probe as it is (loss with and without
references, attention mass per layer). ``probe``: a transformer (``--variant``, see ``VARIANTS``) trained
``--steps`` steps on copy-probe examples from the training records, half the batches without references; every
``--every`` steps the loss with and without references and the attention mass on held-out copy examples (the
validation records). ``gain``: each of ``--models`` on the held-out records as they are, the subject moved,
posed and re-backgrounded (``diagnose.reference_gain``), and on the copy probe. ``relocate``: the copy phase
continued on examples that all reward reading the references, then ``gain``. ``clean-refs``: a made model with
its reference tokens modulated as clean (``zero_cond_t``), trained further, then ``gain``. Attention figures made before
commit "AttentionMass names every argument" lacked the rotary embedding (diffusers dropped it).
Functions: ``squeeze_studio/train/diagnose.py``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

# name -> transformer settings over the demo's (4 layers, 4 heads of 32, rotary dims frame/height/width 16/8/8);
# "v4" fine-tunes the shipped transformer instead of a fresh one.
VARIANTS = {
    "v4": None,
    "v4-arch": {},
    "rope": {"axes_dims_rope": (4, 14, 14)},
    "zero-cond": {"zero_cond_t": True},
    "rope-zero-cond": {"axes_dims_rope": (4, 14, 14), "zero_cond_t": True},
    "rope64": {"num_attention_heads": 2, "attention_head_dim": 64, "axes_dims_rope": (8, 28, 28)},  # same width
}


def load(model: str, state: Path | None = None):
    """The pipeline at ``model``; with ``state`` (a training checkpoint folder of the same architecture), its
    transformer and connector weights from there."""
    from safetensors.torch import load_file

    from squeeze_studio.pipeline import SqueezePipeline

    pipe = SqueezePipeline.from_pretrained(model, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if state is not None:
        pipe.transformer.load_state_dict(load_file(state / "model.safetensors"))
        pipe.connector.load_state_dict(load_file(state / "model_1.safetensors"))
    return pipe


def fresh_transformer(pipe, overrides: dict, seed: int = 0):
    from diffusers import QwenImageTransformer2DModel

    config = {k: v for k, v in pipe.transformer.config.items() if not k.startswith("_")}
    torch.manual_seed(seed)
    return QwenImageTransformer2DModel(**{**config, **overrides})


def use_transformer(pipe, transformer) -> None:
    """``transformer`` in place of the pipeline's, for its backbone too."""
    pipe.register_modules(transformer=transformer)
    pipe.backbone.transformer = transformer


def records(data: Path, split: str, count: int | None = None) -> list[dict]:
    from squeeze_studio.synth.dataset import load_jsonl

    return load_jsonl(data / split)[:count]


def held_out_gains(pipe, held: list[dict], size: int) -> dict:
    """The reference gain on the held-out records as they are (read as both VAE-focused and joint steps read
    them), and on their copy probe: ``gain``'s measurement of one model."""
    from squeeze_studio.train.diagnose import copy_examples, reference_gain
    from squeeze_studio.train.encode import encode_records

    real = encode_records(pipe, held, size)
    return {"moved": {s: reference_gain(pipe, real, size, s) for s in ("text", "positive")},
            "copy": reference_gain(pipe, copy_examples(pipe, held, size), size, "null")}


def measure(pipe, held_out, size: int, ts=(0.5, 0.8)) -> dict:
    from squeeze_studio.train.diagnose import attention_mass, reference_gain

    out = reference_gain(pipe, held_out, size, "null", ts)
    out["attention"] = attention_mass(pipe, held_out[:32], 0.5, size)
    return out


def static(args) -> dict:
    from squeeze_studio.train.diagnose import copy_examples, tokens_per_subject, vae_ceiling

    pipe, size = load(args.model), args.size
    val = records(args.data, "val", args.count)
    token = pipe.backbone.vae_scale_factor * 2
    return {"tokens_per_subject": {f"{s}px": tokens_per_subject(val, s, token) for s in (size, 2 * size)},
            "vae_ceiling": {f"{s}px": vae_ceiling(pipe.vae, val, s) for s in (size, 2 * size)},
            "shipped_copy_probe": measure(pipe, copy_examples(pipe, val, size), size)}


def attention(args) -> dict:
    """The model's attention mass per layer on the held-out copy examples, at t = 0.5 and 0.8."""
    from squeeze_studio.train.diagnose import attention_mass, copy_examples

    pipe = load(args.model)
    held_out = copy_examples(pipe, records(args.data, "val", args.count), args.size)
    return {f"t={t}": attention_mass(pipe, held_out, t, args.size) for t in (0.5, 0.8)}


def gain(args) -> dict:
    """Each ``--models`` model (with ``--state``'s weights) on the held-out records as they are (the subject
    moved, posed and re-backgrounded as the instruction asks): the reference gain under the VAE-focused reading,
    and the copy probe."""
    held = records(args.data, "val", args.count)
    out = {}
    for model in args.models:
        out[model] = held_out_gains(load(model, args.state), held, args.size)
        print(model, json.dumps({s: {t: round(v["ratio_subject"], 3) for t, v in r.items()}
                                 for s, r in out[model]["moved"].items()}), flush=True)
    return out


def relocate(args) -> dict:
    """A lever after the copy phase: ``--steps`` of stage 2's training (v5's settings) on examples that all reward
    reading the references: the identity pairs (the subject moved, same pose and size) and the copy examples, in
    ``--work``; then ``gain`` on the result. ``--model``: v4; ``--state``: the copy phase's checkpoint."""
    from squeeze_studio.train.demo import DemoRecipe, stage_config
    from squeeze_studio.train.trainer import train_stage

    pipe = load(args.model, args.state)
    train = records(args.data, "train")
    encoded = torch.load(args.work / "encoded_train.pt", weights_only=False)
    pairs = [e for e, r in zip(encoded, train, strict=True) if r["meta"]["variant"] == "identity"]
    copies = torch.load(args.work / "encoded_train-copy.pt", weights_only=False)
    config = stage_config(DemoRecipe.v5(), "identity-relocate", args.steps)
    train_stage(pipe, pairs + copies, config, args.work / "stage3-relocate", args.size, on_log=print)
    return {"pairs": len(pairs), "copies": len(copies), "steps": args.steps,
            **held_out_gains(pipe, records(args.data, "val", args.count), args.size)}


def clean_refs(args) -> dict:
    """A lever on a made model: its transformer with the reference tokens modulated as clean (diffusers'
    ``zero_cond_t``, Qwen-Image-Edit-2511's), trained ``--steps`` more on v5's transform mix in ``--work``, saved to
    ``--save`` (a pipeline folder ``squeeze eval`` can read), then ``gain`` on it."""
    from squeeze_studio.train.demo import DemoRecipe, mixed, stage_config
    from squeeze_studio.train.trainer import train_stage

    pipe = load(args.model)
    clean = fresh_transformer(pipe, {"zero_cond_t": True})
    clean.load_state_dict(pipe.transformer.state_dict())  # the same weights: only the references' modulation changes
    use_transformer(pipe, clean)
    recipe = DemoRecipe.v5()
    examples = torch.load(args.work / "encoded_train.pt", weights_only=False)
    copies = torch.load(args.work / "encoded_train-copy.pt", weights_only=False)
    config = stage_config(recipe, "identity-clean-refs", args.steps)
    train_stage(pipe, mixed(examples, copies, recipe.copy_shares[1]), config, args.work / "stage3-clean-refs",
                args.size, on_log=print)
    if args.save:
        pipe.save_pretrained(args.save)
    return {"steps": args.steps, **held_out_gains(pipe, records(args.data, "val", args.count), args.size)}


def probe(args) -> dict:
    from squeeze_studio.train.diagnose import copy_examples
    from squeeze_studio.train.encode import null_states
    from squeeze_studio.train.loop import learning_rate_at
    from squeeze_studio.train.trainer import FlowMatchingStep

    pipe, size = load(args.model), args.size
    if VARIANTS[args.variant] is not None:
        use_transformer(pipe, fresh_transformer(pipe, VARIANTS[args.variant]))
    train = copy_examples(pipe, records(args.data, "train", args.train_count), size)
    held_out = copy_examples(pipe, records(args.data, "val", args.count), size)
    transformer = pipe.transformer
    step = FlowMatchingStep(pipe, pipe.connector, transformer, null_states(pipe), size)
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    log, began, losses = [], time.perf_counter(), []
    for i in range(args.steps + 1):
        if i % args.every == 0 or i == args.steps:
            transformer.eval()
            log.append({"step": i, "seconds": round(time.perf_counter() - began, 1),
                        "train_loss": sum(losses[-args.every:]) / max(len(losses[-args.every:]), 1),
                        **measure(pipe, held_out, size)})
            print(json.dumps({k: log[-1][k] for k in ("step", "seconds", "train_loss", "t=0.5")}), flush=True)
        if i == args.steps:
            break
        transformer.train().requires_grad_(True)
        generator = torch.Generator().manual_seed(i)
        picks = torch.randint(len(train), (args.batch,), generator=generator).tolist()
        with_refs = bool(torch.rand(1, generator=generator) >= 0.5)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(args.lr, i, args.steps, 50)
        loss = step.loss([train[p] for p in picks], "null", with_refs, 4.0, generator, sampling="inference")
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss))
    return {"variant": args.variant, "settings": VARIANTS[args.variant], "steps": args.steps, "log": log}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("static", "probe", "attention", "gain", "relocate", "clean-refs"))
    parser.add_argument("--save", type=Path, help="clean-refs: where to write the trained pipeline")
    parser.add_argument("--work", type=Path, help="relocate: the v5 work folder (encodings; its checkpoints go here)")
    parser.add_argument("--state", type=Path, help="gain, relocate: a training checkpoint's weights in --model(s)")
    parser.add_argument("--models", nargs="+", default=["resources/demo-model"], help="gain: the models to measure")
    parser.add_argument("--model", default="resources/demo-model")
    parser.add_argument("--data", type=Path, required=True, help="a folder with train/ and val/ SynthSubjects data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--count", type=int, default=128, help="held-out (validation) records")
    parser.add_argument("--train-count", type=int, default=1024)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="v4-arch")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"static": static, "probe": probe, "attention": attention, "gain": gain,
              "relocate": relocate, "clean-refs": clean_refs}[args.what](args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result)[:3000])


if __name__ == "__main__":
    main()
