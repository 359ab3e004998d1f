"""The distributed examples run end to end (2 simulated devices, 2 steps)."""

import os
import re
import subprocess
import sys

import keras
import pytest

BACKEND = keras.backend.backend()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = {
    "jax": "examples/distributed_jax.py",
    "tensorflow": "examples/distributed_tensorflow.py",
}


@pytest.mark.skipif(BACKEND not in EXAMPLES, reason="no distributed example")
def test_distributed_example_trains_and_saves(tmp_path):
    output = tmp_path / "encoder.keras"
    args = "--virtual-devices 2 --epochs 1 --limit 64 --global-batch-size 32"
    result = subprocess.run(
        [sys.executable, EXAMPLES[BACKEND], *args.split(), "--output", str(output)],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND=BACKEND),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert re.search(r"2 replica|2 cpu device", result.stdout), result.stdout
    loss = float(re.search(r"final loss (\S+)", result.stdout).group(1))
    assert 0.0 < loss < 10.0, result.stdout
    encoder = keras.saving.load_model(output)
    assert encoder.output_shape[-1] > 0
