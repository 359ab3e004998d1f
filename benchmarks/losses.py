"""Speed of the contrastive losses against the matmul floor, on the current backend.

    KERAS_BACKEND=jax python benchmarks/losses.py   (or: python3 tasks.py bench losses)

Prints, for forward plus backward:
  * the floor: sum(Z @ Z.T) for Z of 2048 x 128 (one 2048 x 2048 x 128 matmul forward,
    two backward);
  * NTXent with N = 1024 pairs, d = 128 (a 2048 x 2048 similarity matrix);
  * InfoNCE with N = 1024 queries and a 16,384-row negative queue (MoCo);
and each loss's time divided by the floor measured in the same process. Functions are
jitted on JAX, wrapped in tf.function on TensorFlow (XLA off, as Keras' fit uses on
CPU) and run eagerly on PyTorch; each is warmed up, then the median of several runs
is reported. Target (issue 2, section 5): NTXent ratio <= 1.5 on JAX and TensorFlow.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_contrastive.losses import info_nce, nt_xent  # noqa: E402


def floor_fn(z):
    return ops.sum(ops.matmul(z, ops.transpose(z)))


def ntxent_fn(z_a, z_b):
    return ops.mean(nt_xent(z_a, z_b, temperature=0.5))


def infonce_fn(q, k, queue):
    return ops.mean(info_nce(q, k, negatives=queue, temperature=0.2))


def value_and_grad_runner(fn, arrays, argnums):
    """A no-argument callable running fn forward + backward wrt arrays[argnums]."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(fn, argnums=argnums))
        xs = [jax.numpy.asarray(a) for a in arrays]
        return lambda: jax.block_until_ready(step(*xs))
    if backend == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(a) for a in arrays]

        @tf.function
        def step(*ts):
            with tf.GradientTape() as tape:
                for i in argnums:
                    tape.watch(ts[i])
                value = fn(*ts)
            return value, tape.gradient(value, [ts[i] for i in argnums])

        def run():
            value, grads = step(*xs)
            return value.numpy(), [g.numpy() for g in grads]

        return run
    if backend == "torch":
        import torch

        xs = [torch.tensor(a, requires_grad=i in argnums) for i, a in enumerate(arrays)]

        def run():
            value = fn(*xs)
            grads = torch.autograd.grad(value, [xs[i] for i in argnums])
            return value.item(), grads

        return run
    raise ValueError(f"unsupported backend {backend!r}")


def timings(run, warmup, repeats):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queue", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n, d = args.pairs, args.dim
    z = rng.normal(size=(2 * n, d)).astype("float32")
    z_a, z_b = z[:n], z[n:]
    queue = rng.normal(size=(args.queue, d)).astype("float32")

    # Interleave the measurements so that a change of machine load hits all of them.
    runners = {
        "floor": value_and_grad_runner(floor_fn, [z], (0,)),
        "ntxent": value_and_grad_runner(ntxent_fn, [z_a, z_b], (0, 1)),
        "infonce": value_and_grad_runner(infonce_fn, [z_a, z_b, queue], (0, 1)),
    }
    times = {name: [] for name in runners}
    for run in runners.values():
        timings(run, args.warmup, 0)
    rounds = 3
    for _ in range(rounds):
        for name, run in runners.items():
            times[name] += timings(run, 0, max(1, args.repeats // rounds))
    t = {name: float(np.median(v)) for name, v in times.items()}
    best = {name: float(np.min(v)) for name, v in times.items()}

    backend = keras.backend.backend()
    print(f"backend: {backend}  (N = {n} pairs, d = {d}, queue = {args.queue})")
    print(f"floor   sum(Z @ Z.T), Z {2 * n}x{d}, fwd+bwd: {t['floor'] * 1e3:8.2f} ms")
    print(
        f"NTXent  N={n}, fwd+bwd:                  {t['ntxent'] * 1e3:8.2f} ms"
        f"   ratio {t['ntxent'] / t['floor']:.2f}"
    )
    print(
        f"InfoNCE N={n} + {args.queue}-row queue, fwd+bwd: "
        f"{t['infonce'] * 1e3:8.2f} ms   ratio {t['infonce'] / t['floor']:.2f}"
    )
    # Medians above (the figure of record); the fastest runs below are less
    # sensitive to other processes competing for the cores.
    print(
        f"best-of-runs ratios: NTXent {best['ntxent'] / best['floor']:.2f}, "
        f"InfoNCE {best['infonce'] / best['floor']:.2f}"
    )


if __name__ == "__main__":
    main()
