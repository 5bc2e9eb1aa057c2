"""How many of a run's transformer passes each step cache computes in full on the demo model, per first-block
threshold (the figure that chose ``step_cache.FIRST_BLOCK_THRESHOLD``). Counts, not timings.

    python benchmarks/cache_passes.py --data work/eval/test --examples 4     # SynthSubjects test examples
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from diffusers.hooks import FirstBlockCacheConfig  # noqa: E402

from squeeze_studio.eval.data import load_examples  # noqa: E402
from squeeze_studio.pipeline import SqueezePipeline  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--thresholds", default="0.05,0.1,0.2,0.3")
    args = parser.parse_args()
    pipe = SqueezePipeline.from_pretrained(os.path.join(os.path.dirname(__file__), "..", "resources", "demo-model"))
    pipe.set_progress_bar_config(disable=True)
    examples = load_examples(args.data, args.examples)
    settings = [("first-block", float(t)) for t in args.thresholds.split(",")] + [("taylorseer", None)]
    print(f"| cache | passes computed in full ({len(examples)} examples, {args.steps} steps, 0.95/0.85 text) |")
    print("|---|---|")
    for mode, threshold in settings:
        pipe.set_step_cache("none")
        pipe.set_step_cache(mode, FirstBlockCacheConfig(threshold=threshold) if threshold else None)
        full = total = 0
        for example in examples:
            out = pipe(image=example.load_references(), prompt=example.instruction, num_inference_steps=args.steps,
                       vae_focused_reading="text", output_type="latent",
                       generator=torch.Generator().manual_seed(example.index))
            full, total = full + out.full_passes, total + out.forward_passes
        print(f"| {mode}{'' if threshold is None else f' {threshold:g}'} | {full} of {total} |")


if __name__ == "__main__":
    main()
