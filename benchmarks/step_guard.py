"""What the non-finite step guard costs: training steps with and without it.

    KERAS_BACKEND=jax python benchmarks/step_guard.py [--steps 20] [--rounds 2]
    python3 tasks.py bench step_guard            (backend from KERAS_BACKEND)

Every training step of `ContrastiveModel` checks its loss and gradients and keeps
nothing of a non-finite step (see `keras_contrastive.models.backend_steps`): it
snapshots the state a skipped step puts back, computes the verdict (one `isfinite`
reduction per gradient, agreed across replicas) and keeps the values it allows
(JAX: a select; TensorFlow on one device: a `tf.cond` around the optimizer's update
and `post_step`; torch: a Python branch). The reference is the same step with that
work removed (the verdict a constant "apply", no snapshot, no selection, no
branch), run in a separate process of the same
invocation: `--variant unguarded` patches `backend_steps` before anything is traced.

Models: SimCLR and MoCo (queue and momentum copies are guarded state) on the
benchmarks' small CNN (`simclr_cifar10.small_cnn`, 1.2 M parameters) and on the
CIFAR ResNet-18 (11.2 M), batch 256, 32x32 images of the bundled CIFAR-10 sample,
Adam. Each (model, variant) runs `--rounds` times, alternating; the best time per
step is kept. Prints the guarded/unguarded time ratio per model; `--json PATH`
appends the results.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

MODELS = ("simclr_small_cnn", "moco_small_cnn", "simclr_resnet18")


def remove_guard():
    """Turns the guard's work into no-ops (the reference step)."""
    from keras import ops

    from keras_contrastive.models import backend_steps

    def always_apply(model, x, loss, gradients=None):
        yes, no = ops.ones((), "bool"), ops.zeros((), "bool")
        return {"counted": yes, "bad": no, "update": yes, "state": yes}

    backend_steps.step_verdict = always_apply
    backend_steps.evaluation_verdict = always_apply
    backend_steps.guarded_state = lambda model: []
    backend_steps._snapshot = lambda variables: [None] * len(variables)
    backend_steps._keep_where = lambda flag, variables, before: None
    backend_steps._select = lambda flag, new, old: list(new)
    backend_steps._branch = lambda flag, keep, otherwise: keep()


def time_steps(model_name, variant, steps, batch):
    """Seconds per training step (after a warm-up epoch that compiles)."""
    if variant == "unguarded":
        remove_guard()
    import keras
    import numpy as np
    from simclr_cifar10 import resnet18_cifar, small_cnn

    from keras_contrastive.datasets import load_cifar10_sample
    from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
    from keras_contrastive.models import MoCo, SimCLR

    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    images = np.resize(images, (batch * steps, *images.shape[1:]))
    keras.utils.set_random_seed(0)
    method, encoder = model_name.split("_", 1)
    encoder = resnet18_cifar() if encoder == "resnet18" else small_cnn()
    head = ProjectionHead(hidden_dims=(256,), output_dim=128)
    augmenter = SimCLRAugmenter((32, 32), blur=False)
    if method == "moco":
        model = MoCo(encoder, head, augmenter, queue_size=4096)
    else:
        model = SimCLR(encoder, head, augmenter, temperature=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(images[: 2 * batch], batch_size=batch, verbose=0)  # compiles
    start = time.perf_counter()
    model.fit(images, batch_size=batch, shuffle=False, verbose=0)
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", help="append the results to this file")
    parser.add_argument("--variant", choices=("guarded", "unguarded"))
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:  # a child process: one measurement
        seconds = time_steps(args.model, args.variant, args.steps, args.batch_size)
        print(json.dumps({"seconds_per_step": seconds}))
        return
    import keras

    backend = keras.backend.backend()
    for model_name in args.models.split(","):
        best = {}
        for _ in range(args.rounds):
            for variant in ("unguarded", "guarded"):
                command = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--variant",
                    variant,
                    "--model",
                    model_name,
                    "--steps",
                    str(args.steps),
                    "--batch-size",
                    str(args.batch_size),
                ]
                out = subprocess.run(command, capture_output=True, text=True)
                if out.returncode:
                    sys.exit(out.stderr[-3000:])
                seconds = json.loads(out.stdout.strip().splitlines()[-1])
                seconds = seconds["seconds_per_step"]
                best[variant] = min(best.get(variant, seconds), seconds)
        ratio = best["guarded"] / best["unguarded"]
        print(
            f"{backend} {model_name}: guarded {1000 * best['guarded']:.0f} ms/step, "
            f"unguarded {1000 * best['unguarded']:.0f} ms/step, "
            f"ratio {ratio:.3f} (batch {args.batch_size}, best of {args.rounds})",
            flush=True,
        )
        if args.json:
            with open(args.json, "a") as f:
                record = {
                    "benchmark": "step_guard",
                    "backend": backend,
                    "model": model_name,
                    "batch_size": args.batch_size,
                    "guarded_seconds_per_step": best["guarded"],
                    "unguarded_seconds_per_step": best["unguarded"],
                    "ratio": ratio,
                }
                f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
