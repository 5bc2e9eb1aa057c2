"""``squeeze ablate``: train every variant at one budget, score it, write ``OUT/ablations.md``."""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path


def add_ablate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ablate", help="the paper's ablations on SynthSubjects -> OUT/ablations.md (resumable)")
    p.add_argument("--out", default="docs", help="folder for ablations.md and its figures (default docs)")
    p.add_argument("--work", default="work/ablate", help="data, checkpoints, models and scores; rerun to resume")
    p.add_argument("--steps", type=int, default=None, help="training steps per variant (default 2400)")
    p.add_argument("--eval-count", type=int, default=None, help="unseen test examples (default 128)")
    p.add_argument("--only", default=None, metavar="NAME[,NAME]",
                   help="train and score only these variants (every seed of each); processes given different "
                        "names can share one --work side by side, then --report-only writes the whole document")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for this process (default torch's)")
    p.add_argument("--smoke", action="store_true", help="a miniature budget end to end (a quick check)")
    p.add_argument("--report-only", action="store_true",
                   help="write the document from what earlier runs finished; train and score nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_ablate)
    return p


def run_ablate(args) -> int:
    from dataclasses import replace

    from .variants import VARIANTS, Budget

    variants = VARIANTS
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in {v.name for v in VARIANTS}]
        if unknown or not names:
            raise ValueError(f"unknown variant {', '.join(unknown) or '(none given)'} for --only; "
                             f"the variants: {', '.join(v.name for v in VARIANTS)}")
        variants = tuple(v for v in VARIANTS if v.name in names)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {args.threads})")
    budget = Budget(steps=4, eval_count=3, grid_rows=2, mllm_steps=3) if args.smoke else Budget()
    if args.steps is not None or args.eval_count is not None:
        budget = replace(budget, steps=args.steps or budget.steps, eval_count=args.eval_count or budget.eval_count)
    if not Path(args.out).parent.resolve().is_dir():
        raise ValueError(f"folder for --out not found: {Path(args.out).parent}")

    import platform

    import torch

    from ..train.demo import DemoRecipe
    from .document import write_document
    from .run import Ablation

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    recipe = DemoRecipe.smoke() if args.smoke else DemoRecipe()
    ablation = Ablation(args.work, recipe, budget, variants=variants, progress=not args.quiet)
    if not args.report_only:
        ablation.run()
    results, extras = Ablation(args.work, recipe, budget).run(train=False)  # all finished so far, whoever ran them
    device = f"CUDA ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "CPU"
    machine = f"{platform.machine()}, {device}"
    command = " ".join(["squeeze", "ablate", "--out", shlex.quote(args.out), "--work", shlex.quote(args.work),
                        *(["--smoke"] if args.smoke else []),
                        *([f"--steps {args.steps}"] if args.steps is not None else []),
                        *([f"--eval-count {args.eval_count}"] if args.eval_count is not None else [])])
    path = write_document(results, extras, args.out, budget, command, machine, ablation.mllm_quality())
    print(f"wrote {path}")
    return 0
