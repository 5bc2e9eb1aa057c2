"""How long the copy-paste score (``squeeze_studio.copy_paste``) takes after each image, beside what it follows.

    python benchmarks/bench_copy_paste.py --repeats 15

Times the score (median of ``--repeats``) for a 64 x 64 result with one, two and three references, and a 1024 x 1024
result with three 1024 x 1024 and three 4000 x 3000 references (random images: the work does not depend on the
content); then, in the same run, one 20-step demo generation at 64 x 64 with two references, so the score's cost
reads as a share of the generation it follows. Prints one JSON object, with the load average at the end
(the machine may be shared).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
from PIL import Image

from squeeze_studio.copy_paste import copy_paste


def random_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def median_ms(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--no-engine", action="store_true", help="skip the demo generation")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    cases = {
        "64px, 1 ref": (random_image(rng, 64, 64), [random_image(rng, 64, 64)]),
        "64px, 2 refs": (random_image(rng, 64, 64), [random_image(rng, 64, 64) for _ in range(2)]),
        "64px, 3 refs": (random_image(rng, 64, 64), [random_image(rng, 64, 64) for _ in range(3)]),
        "1024px, 3 refs of 1024px": (random_image(rng, 1024, 1024), [random_image(rng, 1024, 1024) for _ in range(3)]),
        "1024px, 3 refs of 4000x3000": (random_image(rng, 1024, 1024),
                                        [random_image(rng, 4000, 3000) for _ in range(3)]),
    }
    out = {"score_ms": {name: median_ms(lambda r=r, refs=refs: copy_paste(r, refs), args.repeats)
                        for name, (r, refs) in cases.items()}}
    if not args.no_engine:
        import tempfile

        from squeeze_studio.engine import Engine
        from squeeze_studio.events import ImageResult
        from squeeze_studio.request import GenerationRequest

        with tempfile.TemporaryDirectory() as folder:
            paths = []
            for i, image in enumerate(cases["64px, 2 refs"][1]):
                paths.append(f"{folder}/ref{i}.png")
                image.save(paths[-1])
            engine = Engine(None, device="cpu", previews=False)
            request = GenerationRequest(instruction="the subject at the top, on blue", references=paths)

            def generate():
                return [e for e in engine.generate(request) if isinstance(e, ImageResult)]

            out["demo_generation_ms"] = median_ms(generate, max(3, args.repeats // 3))
        # the generation includes the engine's own score of its result against the two references
        out["score_share_of_generation"] = round(out["score_ms"]["64px, 2 refs"] / out["demo_generation_ms"], 3)
    out["load_average"] = [round(x, 1) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
