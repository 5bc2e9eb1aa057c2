"""Peak working memory of the Qwen-Image VAE, untiled, on the CPU, against the memory plan's VAE terms.

    python benchmarks/vae_memory.py                                   # 256, 512, 768, 1024; decode and encode
    python benchmarks/vae_memory.py --sizes 256 512 --out vae.json    # fewer sizes, and the JSON written

What it measures: the real architecture (``diffusers.AutoencoderKLQwenImage`` from the config that ships with the
project, ``squeeze_studio/hub/reference_configs/qwen-image-edit-plus/vae``) with random weights, in bfloat16,
under ``torch.no_grad()``, with tiling off:

- decode: latents (1, 16, 1, S/8, S/8) -> an S x S image (1, 3, 1, S, S);
- encode: one S x S image (1, 3, 1, S, S) -> its latent distribution.

Every (operation, size) runs in a fresh child process (``--child OP S``): it builds the VAE and the input, runs
the operation once at a small size (``--warmup``, so library initialisation is not counted), then once at S.
Two measures of what the operation needs beyond the weights and the input (the output included):

- rss: ``ru_maxrss`` after the operation minus the RSS just before it. The high-water mark is reset just before
  (``/proc/self/clear_refs``), so whatever the build or the warm-up touched cannot hide it. glibc's malloc is
  given a fixed mmap threshold of 1 MiB in the child (``MALLOC_MMAP_THRESHOLD_``; ``--glibc-default`` not to), so
  that a freed feature map goes back to the system instead of staying resident in the heap;
- tensors: the most bytes of tensor storage alive at once among those created during the operation, tracked by
  a ``TorchDispatchMode`` (each new output storage counted once, released by a weakref finalizer). It does not
  see what a kernel allocates for itself (oneDNN's scratch pads and weight reorders, im2col buffers).

On a CPU without native bf16 convolutions (no AVX-512 / AMX; PyTorch's fallback there runs at ~0.1 GFLOP/s,
a minute per 96-channel conv at 128 x 128) every bf16 ``Conv2d`` / ``Conv3d`` is computed in fp32 a band of
output rows at a time into its bf16 output (``_banded_convolutions``, same results to bf16 rounding;
``--native-conv`` not to): the tensors measure is what native kernels would allocate, RSS adds the bands'
bounded fp32 temporaries (tens of MiB). So run, 2 busy cores: 1024 decode ~6 min, the whole run ~18 min.

Each is also given in "maps": bytes / (S * S * 96 * 2), full-resolution bf16 maps of the first stage's 96
channels, the unit of the plan's ``VAE_DECODE_MAPS`` / ``VAE_ENCODE_MAPS`` (``squeeze_studio/memory/plan.py``).
A size that takes longer than ``--timeout`` is stopped, and the larger sizes of that operation are skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import weakref
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "squeeze_studio" / "hub" / "reference_configs" / "qwen-image-edit-plus" / "vae"
OPS = ("decode", "encode")
SIZES = (256, 512, 768, 1024)
WARMUP = 64
GIB = 2**30
BF16_BYTES = 2
MMAP_THRESHOLD = 1 << 20
BAND_BYTES = 8 << 20  # fp32 input rows per band of a banded convolution (see ``_banded_convolutions``)


def _plan_maps() -> dict[str, int]:
    sys.path.insert(0, str(ROOT))
    from squeeze_studio.memory.plan import VAE_DECODE_MAPS, VAE_ENCODE_MAPS  # plain Python, no torch

    return {"decode": VAE_DECODE_MAPS, "encode": VAE_ENCODE_MAPS}


def map_bytes(size: int) -> int:
    """One full-resolution bf16 map of the first stage's channels (the config's ``base_dim``)."""
    width = json.loads((CONFIG / "config.json").read_text())["base_dim"]
    return size * size * width * BF16_BYTES


# --- the child: one operation, one size ------------------------------------------------------------------------

def _tracker():
    """A dispatch mode that tracks the bytes of live tensor storage created under it, and their maximum."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    def storages(tree):
        for leaf in tree_leaves(tree):
            if isinstance(leaf, torch.Tensor) and leaf.device.type == "cpu":
                yield leaf.untyped_storage()

    class LiveBytes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live: dict[int, int] = {}  # storage data_ptr -> nbytes, of the storages created under the mode
            self.now = self.peak = self.allocations = self.fp32 = self.fp32_at_peak = 0
            self.op_at_peak = ""

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = {storage.data_ptr() for storage in storages((args, kwargs))}
            for leaf in tree_leaves(out):
                if not isinstance(leaf, torch.Tensor) or leaf.device.type != "cpu":
                    continue
                storage = leaf.untyped_storage()
                ptr, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes == 0 or ptr in inputs or ptr in self.live:  # a view, an in-place result, one seen
                    continue
                fp32 = leaf.dtype == torch.float32
                self.live[ptr] = (nbytes, fp32)
                self.now += nbytes
                self.fp32 += nbytes if fp32 else 0
                self.allocations += 1
                if self.now > self.peak:
                    self.peak, self.fp32_at_peak, self.op_at_peak = self.now, self.fp32, str(func)
                weakref.finalize(storage, self._free, ptr)  # storages keep their Python object: fires on free
            return out

        def _free(self, ptr: int) -> None:
            nbytes, fp32 = self.live.pop(ptr, (0, False))
            self.now -= nbytes
            self.fp32 -= nbytes if fp32 else 0

    return LiveBytes()


def _banded_convolutions() -> None:
    """Make bf16 ``Conv2d`` / ``Conv3d`` compute in fp32, a band of output rows at a time, on CPUs without native
    bf16 convolutions (no AVX-512 / AMX: PyTorch's fallback there runs at ~0.1 GFLOP/s). Each call allocates its
    bf16 output under the tracker, as the native kernel would, and computes it under no dispatch mode: its fp32
    temporaries (at most ~4 x ``BAND_BYTES``, freed band by band) count in RSS only. The fp32 weights are made once,
    by the warm-up, before the baseline."""
    import torch
    import torch.nn.functional as F
    from torch.utils._python_dispatch import _disable_current_modes

    fp32: dict[int, tuple] = {}

    def conv_forward(self, x, weight, bias):
        if x.dtype != torch.bfloat16 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return native[type(self)](self, x, weight, bias)
        conv = F.conv3d if weight.dim() == 5 else F.conv2d
        sides = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, d, p in
                 zip(x.shape[2:], weight.shape[2:], self.stride, self.dilation, self.padding, strict=True)]
        k, s, d, p = weight.shape[-2], self.stride[-2], self.dilation[-2], self.padding[-2]
        height, rows = x.shape[-2], sides[-2]
        padding = (*self.padding[:-2], 0, self.padding[-1])  # the rows are padded band by band
        with _disable_current_modes():
            if id(weight) not in fp32:
                fp32[id(weight)] = (weight.float(), None if bias is None else bias.float())
            w, b = fp32[id(weight)]
        out = torch.empty(x.shape[0], weight.shape[0], *sides, dtype=x.dtype)  # what the tracker sees
        row_bytes = x[..., :1, :].numel() * 4 * s
        step = max(1, BAND_BYTES // row_bytes)
        with _disable_current_modes():
            for top in range(0, rows, step):
                bottom = min(rows, top + step)
                start, stop = top * s - p, (bottom - 1) * s - p + d * (k - 1) + 1
                band = x[..., max(start, 0):min(stop, height), :].float()
                if start < 0 or stop > height:
                    band = F.pad(band, (0, 0, max(0, -start), max(0, stop - height)))
                out[..., top:bottom, :].copy_(conv(band, w, b, self.stride, padding, self.dilation, self.groups))
                del band
        return out

    native = {cls: cls._conv_forward for cls in (torch.nn.Conv2d, torch.nn.Conv3d)}
    for cls in native:
        cls._conv_forward = conv_forward


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (what ``ru_maxrss`` reports) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(op: str, size: int, warmup: int, native_conv: bool) -> dict:
    import gc
    import resource

    import psutil
    import torch
    from diffusers import AutoencoderKLQwenImage

    def maxrss() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    def rss() -> int:
        return psutil.Process().memory_info().rss

    start = time.perf_counter()
    banded = not native_conv and not torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if banded:
        _banded_convolutions()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        torch.manual_seed(0)
        vae = AutoencoderKLQwenImage.from_config(AutoencoderKLQwenImage.load_config(CONFIG))
    finally:
        torch.set_default_dtype(previous)
    vae.eval().requires_grad_(False)
    vae.disable_tiling()
    assert {p.dtype for p in vae.parameters()} == {torch.bfloat16}
    weights = sum(p.numel() * p.element_size() for p in vae.parameters())
    z_dim, factor = vae.config.z_dim, vae.spatial_compression_ratio

    def make(side: int) -> torch.Tensor:
        if op == "decode":
            return torch.randn(1, z_dim, 1, side // factor, side // factor, dtype=torch.bfloat16)
        return torch.rand(1, 3, 1, side, side, dtype=torch.bfloat16) * 2 - 1

    def run(x: torch.Tensor):
        return vae.decode(x).sample if op == "decode" else vae.encode(x).latent_dist

    with torch.no_grad():
        if warmup:
            run(make(warmup))
        x = make(size)
        gc.collect()
        reset = _reset_peak_rss()
        base, before = rss(), maxrss()
        tracker = _tracker()
        began = time.perf_counter()
        with tracker:
            out = run(x)
        seconds = time.perf_counter() - began
        peak = maxrss()
        after = rss()
        shape = list((out if op == "decode" else out.mean).shape)
        del out
    rss_bytes = peak - base
    return {
        "op": op, "size": size, "input_shape": list(x.shape), "output_shape": shape,
        "rss_bytes": rss_bytes, "tensor_bytes": tracker.peak,
        "rss_maps": rss_bytes / map_bytes(size), "tensor_maps": tracker.peak / map_bytes(size),
        "op_seconds": seconds, "child_seconds": time.perf_counter() - start,
        "baseline_rss_bytes": base, "rss_after_op_bytes": after, "weights_bytes": weights,
        "peak_reset": reset, "peak_masked": not reset and before > base,  # then rss_bytes is a lower bound
        "tensor_fp32_bytes_at_peak": tracker.fp32_at_peak, "tensor_op_at_peak": tracker.op_at_peak,
        "tensor_allocations": tracker.allocations, "tensor_bytes_left": tracker.now,
        "threads": torch.get_num_threads(), "warmup": warmup, "banded_convolutions": banded,
        "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
    }


# --- the parent: every size in its own child, the table, the JSON -----------------------------------------------

def fit(rows: list[dict], key: str) -> dict | None:
    """Least squares bytes = intercept + slope x pixels; the slope in maps (bytes per pixel / (96 x 2))."""
    points = [(r["size"] ** 2, r[key]) for r in rows]
    if len(points) < 2:
        return None
    n = len(points)
    mx, my = sum(p for p, _ in points) / n, sum(b for _, b in points) / n
    slope = sum((p - mx) * (b - my) for p, b in points) / sum((p - mx) ** 2 for p, _ in points)
    return {"slope_maps": slope / map_bytes(1), "intercept_gib": (my - slope * mx) / GIB}


def table(rows: list[dict], plan_maps: dict[str, int]) -> str:
    lines = ["| op | S | rss GiB | rss maps | tensors GiB | tensors maps | plan GiB (its maps) | "
             "rss / plan | op s | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['op']} | {r['size']} | {r['error']} | | | | | | | {r['wall_seconds']:.0f} |")
            continue
        plan = plan_maps[r["op"]] * map_bytes(r["size"])
        lines.append(f"| {r['op']} | {r['size']} | {r['rss_bytes'] / GIB:.3f} | {r['rss_maps']:.1f} | "
                     f"{r['tensor_bytes'] / GIB:.3f} | {r['tensor_maps']:.1f} | "
                     f"{plan / GIB:.3f} ({plan_maps[r['op']]}) | "
                     f"{r['rss_bytes'] / plan:.2f} | {r['op_seconds']:.1f} | {r['wall_seconds']:.0f} |")
    return "\n".join(lines)


def parent(args) -> None:
    env = dict(os.environ)
    if not args.glibc_default:
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    rows: list[dict] = []
    for op in args.ops:
        for size in sorted(args.sizes):
            command = [sys.executable, str(Path(__file__).resolve()), "--child", op, str(size),
                       "--warmup", str(args.warmup)] + (["--native-conv"] if args.native_conv else [])
            print(f"{op} {size} x {size} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, env=env)
            except subprocess.TimeoutExpired:
                rows.append({"op": op, "size": size, "error": f"over {args.timeout:.0f} s",
                             "wall_seconds": time.perf_counter() - began})
                print(f"  stopped after {args.timeout:.0f} s; skipping larger sizes", file=sys.stderr)
                break
            wall = time.perf_counter() - began
            if done.returncode:
                rows.append({"op": op, "size": size, "error": f"exit {done.returncode}", "wall_seconds": wall,
                             "stderr": done.stderr[-4000:]})
                print(done.stderr[-4000:], file=sys.stderr)
                break
            row = json.loads(done.stdout.strip().splitlines()[-1])
            row["wall_seconds"] = wall
            rows.append(row)
            print(f"  rss {row['rss_bytes'] / GIB:.3f} GiB ({row['rss_maps']:.1f} maps), tensors "
                  f"{row['tensor_bytes'] / GIB:.3f} GiB ({row['tensor_maps']:.1f} maps), op {row['op_seconds']:.1f} s,"
                  f" wall {wall:.0f} s", file=sys.stderr, flush=True)
    plan_maps = _plan_maps()
    print(table(rows, plan_maps))
    fits = {}
    for op in args.ops:
        measured = [r for r in rows if r["op"] == op and "error" not in r]
        fits[op] = {key: fit(measured, key) for key in ("rss_bytes", "tensor_bytes")}
        for key, line in fits[op].items():
            if line:
                print(f"{op} {key.split('_')[0]}: {line['slope_maps']:.1f} maps per pixel of S^2 "
                      f"+ {line['intercept_gib']:.3f} GiB (least squares over {len(measured)} sizes)")
    if args.out:
        import diffusers
        import torch

        result = {"plan_vae_maps": plan_maps, "map_bytes_per_pixel": map_bytes(1), "rows": rows, "fits": fits,
                  "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
                  "machine": platform.machine(), "cpus": os.cpu_count(), "command": " ".join(sys.argv)}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="output / input side, pixels")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="side of the warm-up run; 0: none")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per child")
    parser.add_argument("--glibc-default", action="store_true", help="leave glibc's dynamic mmap threshold on")
    parser.add_argument("--native-conv", action="store_true",
                        help="PyTorch's own bf16 convolutions even where they are slow (no banded fp32 ones)")
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--child", nargs=2, metavar=("OP", "S"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(s % 8 for s in args.sizes + ([args.warmup] if args.warmup else [])):
        parser.error("sizes must be multiples of 8")
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.warmup, args.native_conv)))
    else:
        parent(args)


if __name__ == "__main__":
    main()
