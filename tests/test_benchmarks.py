"""The full-size GPU benchmark's code runs: ``--tiny`` takes every section through the CPU in seconds."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_full_size.py"


def test_gpu_full_size_runs_tiny(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--steps", "2", "--repeats", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "gpu_full_size.json").read_text())
    assert not [name for name, value in results.items() if isinstance(value, dict) and "error" in value]
    assert set(results["speed"]) == {"1 ref", "2 ref"} and results["speed"]["2 ref"]["squeeze/diffusers"] > 0
    for mode in ("full", "model-offload", "group-offload", "sequential"):
        assert results[f"mode:{mode}"]["seconds"] > 0
    assert results["train"]["trainable"] > 0
    assert "2 ref: staged 0.95/0.85 / joint" in done.stdout and "LoRA rank 16 training step" in done.stdout
