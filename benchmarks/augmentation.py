"""The SimCLR augmenter's speed on every backend, against JAX and lightly, in one run.

    python benchmarks/augmentation.py [--backends jax,tensorflow,torch] \\
        [--batch-size 256] [--repeats 20] [--lightly] [--json PATH]

Times one view of `--batch-size` CIFAR-10 images (the bundled sample, 32x32)
through `SimCLRAugmenter(32, blur=False)` (crop scale (0.08, 1), colour strength
0.5: the recipe of `simclr_cifar10.py`) in the form a training step runs it:

- JAX: `jax.jit` of the layer's `stateless_call`, the seed state threaded from
  call to call (as inside Keras' compiled train step);
- TensorFlow: `tf.function` without XLA (as Keras' `fit` on CPU);
- PyTorch: eager under `torch.no_grad()` (Keras' torch backend does not compile).

Each backend runs in its own subprocess (`KERAS_BACKEND` is fixed per process),
is warmed up (compilation excluded), and reports the median and the best of
`--repeats` calls. `--lightly` also times lightly's `SimCLRTransform` (the same
crop and colour settings, torchvision's PIL ops, one image at a time, as a
DataLoader worker applies it) on the same images, with `--lightly-python` if
lightly lives in another environment; its time per view is half its time for
the two views it makes. Ratios are printed against JAX (the goal for PyTorch:
within 2x) and against lightly, all measured in this run.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # the sibling helper modules

from _timing import timings  # noqa: E402


def _images(batch_size):
    import numpy as np

    from keras_contrastive.datasets import load_cifar10_sample

    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    return np.resize(images, (batch_size, *images.shape[1:]))  # repeats if needed


def _time(call, repeats, warmup=3):
    seconds = sorted(timings(call, warmup, repeats))
    return {"median_ms": 1e3 * seconds[len(seconds) // 2], "best_ms": 1e3 * seconds[0]}


def _keras_call(batch_size):
    """A no-argument function that makes one augmented view on this backend."""
    import keras

    from keras_contrastive.layers import SimCLRAugmenter

    augmenter = SimCLRAugmenter(32, blur=False, seed=0)
    images = keras.ops.convert_to_tensor(_images(batch_size).astype("float32"))
    augmenter(images[:2], training=True)  # builds the layer (its seed state)
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        @jax.jit
        def view(state, x):
            return augmenter.stateless_call([], state, x, training=True)

        state = [v.value for v in augmenter.non_trainable_variables]

        def call():
            nonlocal state
            out, state = view(state, images)
            out.block_until_ready()

        return call
    if backend == "tensorflow":
        import tensorflow as tf

        view = tf.function(lambda x: augmenter(x, training=True))
        return lambda: view(images).numpy()
    import torch

    def call():
        with torch.no_grad():
            augmenter(images, training=True)

    return call


def _lightly_call(batch_size):
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    transform = SimCLRTransform(
        input_size=32, cj_strength=0.5, gaussian_blur=0.0, min_scale=0.08
    )
    pictures = [Image.fromarray(image) for image in _images(batch_size)]

    def call():
        for picture in pictures:
            transform(picture)  # two views

    return call


def worker(kind, batch_size, repeats):
    """Runs in a subprocess: times one kind and prints its figures as JSON."""
    if kind == "lightly":
        figures = _time(_lightly_call(batch_size), repeats)
        figures = {k: v / 2 for k, v in figures.items()}  # per view
    else:
        figures = _time(_keras_call(batch_size), repeats)
    print("RESULT " + json.dumps({"kind": kind, **figures}), flush=True)


def _measure(kind, args, python):
    path = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, PYTHONPATH=path)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # lightly's worker imports keras_contrastive (the images) next to torch.
    env["KERAS_BACKEND"] = "torch" if kind == "lightly" else kind
    command = [
        python,
        os.path.abspath(__file__),
        "--worker",
        kind,
        "--batch-size",
        str(args.batch_size),
        "--repeats",
        str(args.repeats),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    print(f"{kind}: not measured ({reason})", flush=True)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--lightly", action="store_true", help="also time lightly")
    parser.add_argument(
        "--lightly-python", default=sys.executable, help="interpreter with lightly"
    )
    parser.add_argument("--json", help="append the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.batch_size, args.repeats)

    kinds = [b.strip() for b in args.backends.split(",") if b.strip()]
    results = {}
    for kind in kinds + (["lightly"] if args.lightly else []):
        python = args.lightly_python if kind == "lightly" else sys.executable
        figures = _measure(kind, args, python)
        if figures is not None:
            results[kind] = figures
    jax_ms = results.get("jax", {}).get("median_ms")
    lightly_ms = results.get("lightly", {}).get("median_ms")
    records = []
    print(f"one view of {args.batch_size} images, median (best) of {args.repeats}:")
    for kind, figures in results.items():
        line = f"  {kind:10s} {figures['median_ms']:7.1f} ms ({figures['best_ms']:.1f})"
        record = {
            "benchmark": "augmentation",
            "kind": kind,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            **figures,
        }
        if jax_ms:
            record["vs_jax"] = figures["median_ms"] / jax_ms
            line += f"  {record['vs_jax']:.2f}x JAX"
        if lightly_ms:
            record["vs_lightly"] = figures["median_ms"] / lightly_ms
            line += f"  {record['vs_lightly']:.2f}x lightly"
        print(line, flush=True)
        records.append(record)
    if args.json and records:
        from _results import append_jsonl  # imports keras: only when writing

        append_jsonl(args.json, records)
    return records


if __name__ == "__main__":
    main()
