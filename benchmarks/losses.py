"""Speed of the contrastive losses against the matmul floor, on the current backend.

    KERAS_BACKEND=jax python benchmarks/losses.py   (or: python3 tasks.py bench losses)

Prints, for forward plus backward:
  * the floor: sum(Z @ Z.T) for Z of 2048 x 128 (one 2048 x 2048 x 128 matmul forward,
    two backward);
  * NTXent with N = 1024 pairs, d = 128 (a 2048 x 2048 similarity matrix), dense
    and streaming (`block_size`, 256 rows per block by default: no 2048 x 2048
    matrix; one more matmul backward, so about 4/3 of the floor at best);
  * InfoNCE with N = 1024 queries and a 16,384-row negative queue (MoCo), dense and
    streaming;
  * SigLIP with N = 1024 pairs, d = 128 (a 1024 x 1024 logit matrix);
  * Barlow Twins with N = 1024, D = 128 (the same inputs; the D x D route), and with
    N = 512, D = 2048 (a projector-sized D: the N x N Gram route, and for
    comparison the D x D route forced);
and each loss's time divided by the floor measured in the same process. Functions are
jitted on JAX, wrapped in tf.function on TensorFlow (XLA off, as Keras' fit uses on
CPU) and run eagerly on PyTorch; each is warmed up, then the median of several runs
is reported, and the fastest ("best of") runs. Targets: NTXent ratio <= 1.3 on JAX and
TensorFlow (1.5 on PyTorch), streaming NTXent <= 1.5.

`--memory` then measures, each in a fresh subprocess (so that peaks do not mix), the
peak resident memory of one NTXent forward + backward above the memory before it,
dense and streaming, at `--memory-pairs` pairs (default 4096: a 8192 x 8192 float32
matrix is 256 MiB).

`--json PATH` appends one record per measured loss (and per memory figure), with
the command, machine and date (`_results.py`), for docs/benchmarks.md
(`render_docs.py`).
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _results import append_jsonl  # noqa: E402  (benchmarks/)
from _timing import timings  # noqa: E402
from keras import ops  # noqa: E402

from keras_contrastive.losses import (  # noqa: E402
    barlow_twins_loss,
    info_nce,
    nt_xent,
    siglip_loss,
)
from keras_contrastive.losses.barlow_twins import _barlow_twins  # noqa: E402


def floor_fn(z):
    return ops.sum(ops.matmul(z, ops.transpose(z)))


def ntxent_fn(z_a, z_b):
    return ops.mean(nt_xent(z_a, z_b, temperature=0.5))


def infonce_fn(q, k, queue):
    return ops.mean(info_nce(q, k, negatives=queue, temperature=0.2))


def streaming_ntxent_fn(block_size):
    def fn(z_a, z_b):
        return ops.mean(nt_xent(z_a, z_b, temperature=0.5, block_size=block_size))

    return fn


def streaming_infonce_fn(block_size):
    def fn(q, k, queue):
        values = info_nce(q, k, negatives=queue, temperature=0.2, block_size=block_size)
        return ops.mean(values)

    return fn


def siglip_fn(x, y):
    return ops.mean(siglip_loss(x, y))


def barlow_twins_fn(z_a, z_b):
    return barlow_twins_loss(z_a, z_b)


def barlow_twins_dxd_fn(z_a, z_b):
    return _barlow_twins(z_a, z_b, 5e-3, 1.0, gram=False)


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


def memory_child(pairs, dim, block_size):
    """One NTXent forward + backward; prints the peak RSS above the start (MiB)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _memory import reset_peak, status_kib

    rng = np.random.default_rng(0)
    z = rng.normal(size=(2 * pairs, dim)).astype("float32")
    fn = streaming_ntxent_fn(block_size or None)
    run = value_and_grad_runner(fn, [z[:pairs], z[pairs:]], (0, 1))
    small = value_and_grad_runner(fn, [z[:8], z[8:16]], (0, 1))
    small()  # imports, kernels and thread pools set up outside the measurement
    if keras.backend.backend() == "jax":
        run()  # compiles (a compilation's peak is not the step's)
    exact = reset_peak()
    base = status_kib("VmRSS")
    run()
    peak = (status_kib("VmHWM") - base) / 1024
    print(json.dumps({"peak_mib": peak, "exact": exact}))


def memory_rows(pairs, dim, block_size, figures=None):
    """Text rows of the dense and streaming peaks; `figures` (a dict), when
    given, receives {label: peak MiB}."""
    rows = []
    for block in (0, block_size):
        command = [sys.executable, os.path.abspath(__file__), "--memory-child"]
        command += [str(pairs), "--dim", str(dim), "--block", str(block)]
        result = subprocess.run(command, capture_output=True, text=True)
        lines = [x for x in result.stdout.splitlines() if x.startswith("{")]
        label = f"streaming, block {block}" if block else "dense"
        if result.returncode or not lines:
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append(f"  {label:<22} did not run ({tail})")
            continue
        peak = json.loads(lines[-1])["peak_mib"]
        if figures is not None:
            figures[label] = peak
        rows.append(f"  {label:<22}{peak:8.0f} MiB")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queue", type=int, default=16384)
    parser.add_argument("--bt-rows", type=int, default=512)
    parser.add_argument("--bt-dim", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--block", type=int, default=256, help="streaming block")
    parser.add_argument("--memory", action="store_true", help="also peak memory")
    parser.add_argument("--memory-pairs", type=int, default=4096)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child, args.dim, args.block)

    rng = np.random.default_rng(0)
    n, d = args.pairs, args.dim
    z = rng.normal(size=(2 * n, d)).astype("float32")
    z_a, z_b = z[:n], z[n:]
    queue = rng.normal(size=(args.queue, d)).astype("float32")
    wide = rng.normal(size=(2 * args.bt_rows, args.bt_dim)).astype("float32")
    w_a, w_b = wide[: args.bt_rows], wide[args.bt_rows :]

    # Interleave the measurements so that a change of machine load hits all of them.
    runners = {
        "floor": value_and_grad_runner(floor_fn, [z], (0,)),
        "ntxent": value_and_grad_runner(ntxent_fn, [z_a, z_b], (0, 1)),
        "ntxent_stream": value_and_grad_runner(
            streaming_ntxent_fn(args.block), [z_a, z_b], (0, 1)
        ),
        "infonce": value_and_grad_runner(infonce_fn, [z_a, z_b, queue], (0, 1)),
        "infonce_stream": value_and_grad_runner(
            streaming_infonce_fn(args.block), [z_a, z_b, queue], (0, 1)
        ),
        "siglip": value_and_grad_runner(siglip_fn, [z_a, z_b], (0, 1)),
        "bt": value_and_grad_runner(barlow_twins_fn, [z_a, z_b], (0, 1)),
        "bt_wide": value_and_grad_runner(barlow_twins_fn, [w_a, w_b], (0, 1)),
        "bt_wide_dxd": value_and_grad_runner(barlow_twins_dxd_fn, [w_a, w_b], (0, 1)),
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
        f"NTXent  N={n}, streaming (block {args.block}):  "
        f"{t['ntxent_stream'] * 1e3:8.2f} ms   ratio "
        f"{t['ntxent_stream'] / t['floor']:.2f}"
    )
    print(
        f"InfoNCE N={n} + {args.queue}-row queue, fwd+bwd: "
        f"{t['infonce'] * 1e3:8.2f} ms   ratio {t['infonce'] / t['floor']:.2f}"
    )
    print(
        f"InfoNCE N={n} + {args.queue}-row queue, streaming: "
        f"{t['infonce_stream'] * 1e3:8.2f} ms   ratio "
        f"{t['infonce_stream'] / t['floor']:.2f}"
    )
    n_bt, d_bt = args.bt_rows, args.bt_dim
    rows = [
        ("siglip", f"SigLIP  N={n}, d={d}, fwd+bwd:"),
        ("bt", f"BarlowTwins N={n}, D={d} (D x D), fwd+bwd:"),
        ("bt_wide", f"BarlowTwins N={n_bt}, D={d_bt} (N x N Gram), fwd+bwd:"),
        ("bt_wide_dxd", f"BarlowTwins N={n_bt}, D={d_bt} (D x D forced), fwd+bwd:"),
    ]
    for name, label in rows:
        print(f"{label:<52}{t[name] * 1e3:8.2f} ms   ratio {t[name] / t['floor']:.2f}")
    # Medians above (the figure of record); the fastest runs below are less
    # sensitive to other processes competing for the cores.
    names = {
        "ntxent": "NTXent",
        "ntxent_stream": "NTXent-streaming",
        "infonce": "InfoNCE",
        "infonce_stream": "InfoNCE-streaming",
        "siglip": "SigLIP",
        "bt": "BarlowTwins",
        "bt_wide": "BarlowTwins-wide",
        "bt_wide_dxd": "BarlowTwins-wide-DxD",
    }
    print(
        "best-of-runs ratios: "
        + ", ".join(f"{v} {best[k] / best['floor']:.2f}" for k, v in names.items())
    )
    if args.memory:
        print(
            f"peak memory of NTXent fwd+bwd, N={args.memory_pairs} pairs, d={d} "
            f"(a {2 * args.memory_pairs}^2 float32 matrix is "
            f"{(2 * args.memory_pairs) ** 2 * 4 / 2**20:.0f} MiB):"
        )
        peaks = {}
        for row in memory_rows(args.memory_pairs, d, args.block, peaks):
            print(row)
    if args.json:
        shape = {"pairs": n, "dim": d, "queue": args.queue, "block": args.block}
        records = [
            {
                "benchmark": "losses",
                "backend": backend,
                "loss": label,
                "ms": 1e3 * t[key],
                "vs_floor": t[key] / t["floor"],
                "vs_floor_best": best[key] / best["floor"],
                **shape,
            }
            for key, label in names.items()
        ]
        records += [
            {
                "benchmark": "losses",
                "backend": backend,
                "memory": label,
                "peak_mib": peak,
                "memory_pairs": args.memory_pairs,
                **shape,
            }
            for label, peak in (peaks.items() if args.memory else ())
        ]
        append_jsonl(args.json, records)


if __name__ == "__main__":
    main()
