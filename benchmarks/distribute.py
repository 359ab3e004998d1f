"""SimCLR step time on 1 and on 4 virtual CPU devices: the replica machinery's cost.

    KERAS_BACKEND=jax python benchmarks/distribute.py
    python3 tasks.py bench distribute          (backend from KERAS_BACKEND)
    KERAS_BACKEND=tensorflow python benchmarks/distribute.py --steps 10

One fresh process per device count (the count is fixed when the backend starts),
each timing whole SimCLR training steps (`model.fit`) at the same global batch
(256 by default) of random 32x32 images: a small conv encoder (conv 16 stride 2,
batch norm, ReLU, conv 32 stride 2, batch norm, ReLU, global average pooling), a
64 -> 32 projection head, NT-Xent, SGD, no augmentation (an identity augmenter, so
that the step is the networks, the loss and the replica machinery). 1 device: no
distribution. N devices: TensorFlow `MirroredStrategy` over N logical CPUs (each
replica computes 1/N of the batch; the NT-Xent candidates are all-gathered, the
gradients all-reduced); JAX `keras.distribution.DataParallel` over N host devices
(XLA shards the global step). PyTorch: multi-device `fit` is not supported (Keras
3.15), and the script says so.

The virtual devices share the same CPU cores, so the ratio N devices / 1 device is
no multi-device speed-up: above 1 it is the overhead of the gather, the all-reduce
and the per-replica bookkeeping; below 1 (XLA runs each virtual device on its own
thread) the single-device run had left cores idle. Results are printed and, with
`--json PATH`, appended as one JSON line.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTE = (
    "virtual CPU devices share the same cores, so this is no multi-device "
    "speed-up: above 1 it is the overhead of the gather and the replica "
    "machinery; below 1, per-device threads used cores one device left idle"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global-batch-size", type=int, default=256)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="steps first (compile)")
    parser.add_argument("--json", default=None, help="append the result to PATH")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ----------------------------------------------------------- one device count


def set_up_devices(count):
    """Before Keras starts the backend: the device count and the scope to use."""
    import contextlib

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        import tensorflow as tf

        if count == 1:
            return contextlib.nullcontext()
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
        devices = [f"/cpu:{i}" for i in range(count)]
        return tf.distribute.MirroredStrategy(devices).scope()
    import jax  # XLA_FLAGS (the host device count) was set by the parent.
    import keras

    assert len(jax.devices()) == count, jax.devices()
    if count == 1:
        return contextlib.nullcontext()
    return keras.distribution.DataParallel(devices=jax.devices()).scope()


def small_encoder():
    import keras

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, strides=2, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.Conv2D(32, 3, strides=2, use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


def time_steps(args, count):
    """ms per SimCLR step on `count` devices (this process's devices)."""
    scope = set_up_devices(count)
    import keras
    import numpy as np

    from keras_contrastive.layers import ProjectionHead
    from keras_contrastive.models import SimCLR

    keras.utils.set_random_seed(0)
    batch = args.global_batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * max(args.steps, args.warmup), 32, 32, 3))
    images = images.astype("uint8")
    with scope:
        model = SimCLR(
            small_encoder(),
            projection_head=ProjectionHead(hidden_dims=(64,), output_dim=32),
            augmenter=keras.layers.Identity(),
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(images[: batch * args.warmup], batch_size=batch, verbose=0)
        start = time.perf_counter()
        model.fit(images[: batch * args.steps], batch_size=batch, verbose=0)
        seconds = time.perf_counter() - start
    return 1000.0 * seconds / args.steps


# ------------------------------------------------------------------- driver


def run_worker(args, count):
    """Times `count` devices in a fresh process; returns its ms per step."""
    env = dict(os.environ)
    if env.get("KERAS_BACKEND") == "jax":
        flag = f"--xla_force_host_platform_device_count={count}"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flag}"
    command = [sys.executable, os.path.abspath(__file__), "--worker", str(count)]
    command += ["--global-batch-size", str(args.global_batch_size)]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{count}-device run failed:\n{result.stderr[-3000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.
    if args.worker is not None:
        print(time_steps(args, args.worker), flush=True)
        return None
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "torch":
        print(
            "torch: not supported. Keras 3.15 has no multi-device `fit` for the "
            "PyTorch backend (keras_contrastive raises a ValueError); use JAX or "
            "TensorFlow."
        )
        return None
    if args.global_batch_size % args.devices:
        raise SystemExit("--global-batch-size must be a multiple of --devices")
    single = run_worker(args, 1)
    multi = run_worker(args, args.devices)
    print(
        f"{backend}: SimCLR step, global batch {args.global_batch_size}, 32x32, "
        f"small conv encoder, {args.steps} timed steps\n"
        f"  1 device:  {single:8.1f} ms/step\n"
        f"  {args.devices} devices: {multi:8.1f} ms/step\n"
        f"  ratio {args.devices}/1: {multi / single:.2f}\n  ({NOTE})",
        flush=True,
    )
    result = {
        "benchmark": "distribute_step_time",
        "backend": backend,
        "global_batch_size": args.global_batch_size,
        "devices": args.devices,
        "steps": args.steps,
        "ms_per_step_1_device": single,
        f"ms_per_step_{args.devices}_devices": multi,
        "ratio": multi / single,
    }
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
