"""The full-size GPU benchmark's code runs: ``--tiny`` takes every section through the CPU and writes each
section's JSON as it ends."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_full_size.py"


@pytest.mark.slow  # about 40 s of CPU: eleven sections, each building its models
def test_gpu_full_size_runs_tiny_and_writes_a_file_per_section(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--steps", "2", "--mode-steps", "1,2",
                           "--cache-steps", "6", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {path.stem: json.loads(path.read_text()) for path in tmp_path.glob("*.json")}
    setups = ["full", "model-offload", "group-offload", "sequential", "model-offload_fp8", "group-offload_fp8"]
    assert set(results) == {"run", "speed", "cache", "train", "model", "mode_model-offload_nf4",
                            *(f"mode_{s}" for s in setups)}
    assert not [name for name, value in results.items() if "error" in value]
    assert results["speed"]["2 ref"]["squeeze/diffusers"] > 0
    for setup in setups:
        assert set(results[f"mode_{setup}"]["runs"]) == {"1", "2"} and "image@40" in results[f"mode_{setup}"]
    assert "skipped" in results["mode_model-offload_nf4"]
    assert results["cache"]["taylorseer"]["passes"] != results["cache"]["none"]["passes"]
    assert results["cache"]["lightning"]["seconds"] > 0  # 8 steps with a Lightning-shaped LoRA fused, then removed
    assert results["train"]["trainable"] > 0 and results["train"]["final_loss"] > 0
    model = results["model"]
    assert model["image"]["previews"] == 4 and model["drop_index"] > 0
    assert "2 ref: staged 0.95/0.85 / joint" in done.stdout and "stage trainer" in done.stdout
