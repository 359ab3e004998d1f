"""CLIP on the current backend: training throughput, and the cost of its losses.

    KERAS_BACKEND=jax python benchmarks/clip.py     (or: python3 tasks.py bench clip)
    KERAS_BACKEND=jax python benchmarks/clip.py --part step
    KERAS_BACKEND=jax python benchmarks/clip.py --part losses --sizes 4096,16384

Two parts:

1. `step`: image-text pairs per second of `train_on_batch` at a batch of 256, for
   `loss="softmax"` and `loss="sigmoid"`. Image tower: the CNN of
   examples/clip_cifar10.py (3 conv-BN-ReLU blocks, 32/64/128 channels) on random
   32x32 images; text tower: a small BERT (`keras_contrastive.text.BertBackbone`,
   2 layers, hidden 128, 4 heads, 16 tokens, random weights) with mean pooling;
   embed_dim 128. One compiled warm-up step, then the median of `--steps` steps.
2. `losses`: forward + backward (gradients for both embedding matrices) of the
   two losses on N random (image, text) embedding pairs of dimension d = 512 (the
   N x N logit matrix is what grows), for each N of `--sizes`, against the floor
   sum(X @ Y.T): one N x N x d matmul forward, two backward. Each configuration
   runs in its own subprocess: after a warm-up call (compilation) the child hands
   freed memory back (`malloc_trim`), resets the peak-RSS counter
   (`/proc/self/clear_refs`) and reports the median time of `--repeats` calls
   and the peak resident memory above the memory before them (what a call needs:
   the N x N matrices, 1 GiB per float32 copy at N = 16,384). Allocators that keep
   freed memory understate that figure (JAX's CPU allocator does): on JAX the
  table adds XLA's own count of the compiled call's scratch buffers
  (`memory_analysis().temp_size_in_bytes`). Functions are jitted on JAX, wrapped in
   `tf.function` on TensorFlow and run eagerly on PyTorch (as in
   benchmarks/losses.py).

The machine's other load changes absolute times: compare ratios within a run.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.

from _memory import reset_peak, status_kib  # noqa: E402  (benchmarks/)
from _timing import timings  # noqa: E402

DIM = 512
TOKENS, VOCABULARY = 16, 1000


# ------------------------------------------------------------------ step


def clip_model(loss):
    import keras

    from keras_contrastive.models import CLIP
    from keras_contrastive.text import (
        BertBackbone,
        SentenceEncoder,
        WordPieceTokenizer,
    )

    def block(filters):
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
        ]

    image_tower = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            *block(32),
            keras.layers.MaxPooling2D(),
            *block(64),
            keras.layers.MaxPooling2D(),
            *block(128),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [
        f"w{i}" for i in range(VOCABULARY - 5)
    ]
    text_tower = SentenceEncoder(
        BertBackbone(
            vocabulary_size=VOCABULARY,
            num_layers=2,
            num_heads=4,
            hidden_dim=128,
            intermediate_dim=256,
            max_sequence_length=TOKENS,
        ),
        WordPieceTokenizer(vocabulary, sequence_length=TOKENS),
    )
    return CLIP(image_tower, text_tower, embed_dim=128, loss=loss)


def step_throughput(loss, batch_size, steps):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, 32, 32, 3)).astype("uint8")
    tokens = {
        "token_ids": rng.integers(5, VOCABULARY, (batch_size, TOKENS)).astype("int32"),
        "padding_mask": np.ones((batch_size, TOKENS), "int32"),
    }
    model = clip_model(loss)
    model.build_for((images, tokens))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.train_on_batch((images, tokens))  # compiles
    first = time.perf_counter() - start
    times = timings(lambda: model.train_on_batch((images, tokens)), 0, steps)
    step = float(np.median(times))
    return {
        "loss": loss,
        "batch": batch_size,
        "step_ms": step * 1e3,
        "pairs_per_s": batch_size / step,
        "first_step_s": first,
    }


# ------------------------------------------------------------------ losses


def loss_function(name):
    from keras import ops

    from keras_contrastive.losses import siglip_loss, symmetric_info_nce

    if name == "floor":
        return lambda x, y: ops.sum(ops.matmul(x, ops.transpose(y)))
    if name == "softmax":
        return lambda x, y: ops.mean(symmetric_info_nce(x, y, temperature=0.07))
    return lambda x, y: ops.mean(siglip_loss(x, y, logit_scale=10.0, logit_bias=-10.0))


def runner(fn, x, y):
    """A no-argument callable running fn forward + backward (both inputs)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
        xs = [jax.numpy.asarray(x), jax.numpy.asarray(y)]
        return lambda: jax.block_until_ready(step(*xs))
    if backend == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(x), tf.constant(y)]

        @tf.function
        def step(a, b):
            with tf.GradientTape() as tape:
                tape.watch([a, b])
                value = fn(a, b)
            return value, tape.gradient(value, [a, b])

        def run():
            value, grads = step(*xs)
            return value.numpy(), [g.numpy() for g in grads]

        return run
    import torch

    xs = [torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)]

    def run():
        value = fn(*xs)
        grads = torch.autograd.grad(value, xs)
        return value.item(), grads

    return run


def xla_temp_mib(fn, x, y):
    """XLA's own count of the compiled call's scratch memory (JAX): exact where
    the RSS reading is not (JAX's CPU allocator keeps its buffers)."""
    import jax

    step = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
    analysis = step.lower(x, y).compile().memory_analysis()
    return None if analysis is None else analysis.temp_size_in_bytes / 2**20


def loss_child(name, n, repeats):
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, DIM)).astype("float32")
    y = rng.normal(size=(n, DIM)).astype("float32")
    run = runner(loss_function(name), x, y)
    run()  # compiles
    planned = None
    if keras.backend.backend() == "jax":
        planned = xla_temp_mib(loss_function(name), x, y)
    reset_peak()
    base = status_kib("VmRSS")
    times = timings(run, 0, repeats)
    peak = status_kib("VmHWM")
    return {
        "name": name,
        "n": n,
        "ms": float(np.median(times)) * 1e3,
        "best_ms": float(np.min(times)) * 1e3,
        "peak_mib": (peak - base) / 1024,
        "xla_temp_mib": planned,
    }


def run_child(args):
    command = [sys.executable, os.path.abspath(__file__), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("step", "losses", "all"), default="all")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", default="4096,16384")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, n = args.child
        print(json.dumps(loss_child(name, int(n), args.repeats)))
        return

    import keras

    backend = keras.backend.backend()
    if args.part in ("step", "all"):
        print(
            f"backend {backend}: CLIP train_on_batch, batch {args.batch_size}, "
            "32x32 CNN + 2-layer BERT (hidden 128, 16 tokens)"
        )
        for loss in ("softmax", "sigmoid"):
            row = step_throughput(loss, args.batch_size, args.steps)
            print(
                f"  {loss:<8}{row['step_ms']:8.0f} ms/step {row['pairs_per_s']:8.0f} "
                f"pairs/s   (first step {row['first_step_s']:.1f} s)",
                flush=True,
            )
    if args.part in ("losses", "all"):
        print(f"backend {backend}: losses, forward + backward, d = {DIM}")
        print(
            f"  {'N':>6} {'loss':<8}{'ms':>10}{'x floor':>9}{'peak MiB':>10}"
            f"{'XLA temp MiB':>14}"
        )
        for n in [int(s) for s in args.sizes.split(",")]:
            floor = None
            for name in ("floor", "softmax", "sigmoid"):
                row = run_child(
                    ["--child", name, str(n), "--repeats", str(args.repeats)]
                )
                if "error" in row:
                    print(f"  {n:>6} {name:<8} failed: {row['error']}", flush=True)
                    continue
                floor = row["ms"] if name == "floor" else floor
                ratio = row["ms"] / floor if floor else float("nan")
                print(
                    f"  {n:>6} {name:<8}{row['ms']:>10.0f}{ratio:>9.2f}"
                    f"{row['peak_mib']:>10.0f}"
                    + (
                        f"{row['xla_temp_mib']:>14.0f}"
                        if row.get("xla_temp_mib") is not None
                        else ""
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
