"""Peak memory and time per step of SimCLR with and without gradient caching.

    KERAS_BACKEND=jax python benchmarks/gradient_cache.py [--steps N]
    (or: python3 tasks.py bench gradient_cache)

Configurations: the plain step at a batch of 256, the gradient-cached step at a
global batch of 4096 in chunks of 256, the plain step at 4096 (if it fits) and,
with `--large N`, the cached step at a global batch of N (e.g. 16384). Model:
SimCLR with a small conv encoder (3x3 convolutions with 16 channels, then 32 with
stride 2, global average pooling), a projection head without batch norm and the
default augmenter (no blur), on random 32x32 images: no downloads.

Gradient caching removes the encoder's activations from the peak, and the cached
step streams NT-Xent in blocks of `chunk_size` rows (`losses.nt_xent`'s
`block_size`), so the loss's (2B)^2 similarity matrix (256 MiB per float32 copy at
B = 4096) is no longer built for the gradient; the logged retrieval accuracy
(forward only) still builds it once. On JAX the chunks run in `lax.scan`, whose
body's buffers XLA reuses from chunk to chunk (unrolled, the peak grew with the
batch by about 0.5 MiB per image with this encoder).

Each configuration runs in its own subprocess so that peaks do not mix. After one
warm-up step (compilation), the child hands freed memory back to the kernel
(`malloc_trim`), resets the peak-RSS counter (`/proc/self/clear_refs`), times
`--steps` steps of `train_on_batch` and reports the peak resident memory above the
resident memory before the timed steps ("RSS MiB"). Allocators that keep freed
memory make that figure depend on what earlier steps left behind (glibc's malloc
raises its mmap threshold after each large free and then reuses or keeps the
block; TensorFlow's CPU allocator hardly shows in RSS at all), so each
configuration runs a second child for the memory the step's tensors need at its
peak ("live MiB"): on TensorFlow its CPU allocator's own peak count
(`tf.config.experimental.get_memory_info`), elsewhere the RSS peak under
`MALLOC_MMAP_THRESHOLD_=65536` and `MALLOC_TRIM_THRESHOLD_=65536` (every block of
64 KiB or more mapped on allocation and unmapped on free, so RSS follows live
memory; slower, which is why times come from the first child). Ratios are against
the plain step at 256. The last columns give the first step's time and its RSS
peak above the memory after building (compilation included).
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

from _memory import allocator_peak_mib, allocator_reset, reset_peak, status_kib  # noqa: E402  (benchmarks/)

SIZE = 32
CONFIGS = (  # (label, batch size, chunk size or None)
    ("plain 256", 256, None),
    ("cached 4096 / 256", 4096, 256),
    ("plain 4096", 4096, None),
)


def build_model(chunk_size):
    import keras

    from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
    from keras_contrastive.models import SimCLR

    encoder = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    model = SimCLR(
        encoder,
        ProjectionHead(hidden_dims=(64,), output_dim=32, batch_norm=False),
        SimCLRAugmenter(SIZE, blur=False, seed=0),
        gradient_cache=chunk_size,
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def child(batch_size, chunk_size, steps):
    """Runs one configuration; prints a JSON line with its figures."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).integers(0, 256, (batch_size, SIZE, SIZE, 3))
    x = x.astype("uint8")
    model = build_model(chunk_size)
    built_kib = status_kib("VmRSS")
    start = time.perf_counter()
    model.train_on_batch(x)  # compiles
    first = time.perf_counter() - start
    first_peak_kib = status_kib("VmHWM")
    exact = reset_peak()
    base_kib = status_kib("VmRSS")
    allocator_base = allocator_reset()
    times, losses = [], []
    for _ in range(steps):
        start = time.perf_counter()
        logs = model.train_on_batch(x, return_dict=True)
        losses.append(float(logs["loss"]))
        times.append(time.perf_counter() - start)
    peak_kib = status_kib("VmHWM")
    allocator_peak = allocator_peak_mib(allocator_base)
    print(
        json.dumps(
            {
                "first_step_s": first,
                "step_s": float(np.median(times)),
                "peak_delta_mib": (peak_kib - base_kib) / 1024,
                "first_peak_delta_mib": (first_peak_kib - built_kib) / 1024,
                "peak_rss_mib": peak_kib / 1024,
                "peak_exact": exact,
                "allocator_peak_delta_mib": allocator_peak,
                "loss": losses[-1],
            }
        )
    )


LIVE_MEMORY_ENV = {  # glibc: blocks >= 64 KiB mmapped, unmapped (returned) on free
    "MALLOC_MMAP_THRESHOLD_": "65536",
    "MALLOC_TRIM_THRESHOLD_": "65536",
}


def child_result(batch_size, chunk_size, steps, env=None):
    command = [sys.executable, __file__, "--child", str(batch_size), "--steps"]
    command += [str(steps), "--chunk", str(chunk_size or 0)]
    env = {**os.environ, **(env or {})}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {result.returncode}: {tail[0]}"}
    return json.loads(lines[-1])


def run(label, batch_size, chunk_size, steps):
    """Times and RSS from a default child; the step's live memory from a second."""
    timed = child_result(batch_size, chunk_size, steps)
    if "error" in timed:
        return {"label": label, **timed}
    memory = child_result(batch_size, chunk_size, 1, LIVE_MEMORY_ENV)
    if "error" in memory:
        return {"label": label, **memory}
    live = memory["allocator_peak_delta_mib"]
    if live is None:
        live = memory["peak_delta_mib"]
    exact = timed["peak_exact"] and memory["peak_exact"]
    return {"label": label, **timed, "live_peak_mib": live, "peak_exact": exact}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="timed steps")
    parser.add_argument("--skip-plain-large", action="store_true")
    parser.add_argument(
        "--large",
        type=int,
        default=0,
        help="also the cached step at this global batch (e.g. 16384), chunks of 256",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.chunk or None, args.steps)

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    print(f"backend: {backend}, {args.steps} timed steps each")
    rows = []
    configs = CONFIGS + ((f"cached {args.large} / 256", args.large, 256),) * bool(
        args.large
    )
    for label, batch_size, chunk_size in configs:
        if args.skip_plain_large and label == "plain 4096":
            continue
        rows.append(run(label, batch_size, chunk_size, args.steps))
    base = rows[0]
    header = (
        f"{'configuration':<20}{'s/step':>9}{'x plain256':>12}"
        f"{'live MiB':>10}{'x plain256':>12}{'RSS MiB':>9}{'x plain256':>12}"
        f"{'1st step s':>12}{'MiB':>7}{'loss':>8}"
    )
    print(header)
    for row in rows:
        if "error" in row:
            print(f"{row['label']:<20} did not run ({row['error']})")
            continue
        print(
            f"{row['label']:<20}{row['step_s']:>9.2f}"
            f"{row['step_s'] / base['step_s']:>12.2f}"
            f"{row['live_peak_mib']:>10.0f}"
            f"{row['live_peak_mib'] / base['live_peak_mib']:>12.2f}"
            f"{row['peak_delta_mib']:>9.0f}"
            f"{row['peak_delta_mib'] / base['peak_delta_mib']:>12.2f}"
            f"{row['first_step_s']:>12.1f}{row['first_peak_delta_mib']:>7.0f}"
            f"{row['loss']:>8.3f}"
        )
    if not all(row.get("peak_exact", True) for row in rows):
        print("note: peak RSS could not be reset; peaks include the warm-up step")


if __name__ == "__main__":
    main()
