"""SimCLR on CIFAR-10: a fixed small-CNN recipe and training-step throughput.

    KERAS_BACKEND=jax python benchmarks/simclr_cifar10.py recipe [--epochs 20]
    KERAS_BACKEND=torch python benchmarks/simclr_cifar10.py throughput [--steps 3] \\
        [--encoder resnet18 | small_cnn] [--lightly]
    python3 tasks.py bench simclr_cifar10 recipe      (backend from KERAS_BACKEND)

`recipe`: 10,000 images drawn from the CIFAR-10 training split (JPEG-npz file, by
default the project's `../shared/data/cifar10/train.npz`) with seed 0 (the first
10,000 of `numpy.random.default_rng(0).permutation(50000)`; the next 10,000 are the
held-out kNN queries); a small CNN encoder (four 3x3 conv-batchnorm-ReLU blocks of
32, 64, 128, 256 channels, 2x2 max-pool after the first three, global average
pooling; a `Rescaling(1/255)` in front because the augmenter hands over 0..255
pixels); `ProjectionHead(hidden_dims=(256,), output_dim=128)`; `NTXent(0.5)` (SimCLR's
temperature); `SimCLRAugmenter(32, blur=False)` (crop scale (0.08, 1), colour
strength 0.5, SimCLR's CIFAR-10 setting); Adam 1e-3; batch 256; 20 epochs. Then the
kNN top-1 accuracy (k = 200, t = 0.1) of the 10,000 held-out images against the
10,000 used, for the random-init and the trained encoder.

`throughput`: images per second of whole SimCLR training steps (augmentation of
both views, ResNet-18 forward and backward, Adam update) at batch 256 on 32x32
images from the bundled sample, after `--warmup` steps that include compilation.
The ResNet-18 has the CIFAR stem (3x3 stride-1 first convolution, no max-pool) and
[2, 2, 2, 2] basic blocks of 64, 128, 256, 512 channels, 11.2 M parameters;
`--encoder small_cnn` times the recipe's encoder instead. The projection head's
hidden width is the encoder's output width, as lightly's `SimCLRProjectionHead`.

With `--lightly`, the same recipe / step also runs in lightly (PyTorch) when it is
importable, and both figures are printed side by side (lightly's throughput is its
median time between steps, so its DataLoader workers' start-up is left out). Results
are printed and, with `--json PATH`, appended as one JSON line each with the command,
machine and date (`_results.py`); `render_docs.py` tabulates the throughput records
of `benchmarks/results/simclr_throughput.jsonl`.
"""

import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_contrastive.datasets import load_cifar10_sample, load_jpeg_npz  # noqa: E402
from keras_contrastive.evaluation import knn_evaluate  # noqa: E402
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter  # noqa: E402
from keras_contrastive.models import SimCLR  # noqa: E402

DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "cifar10", "train.npz")


def conv_bn_relu(
    filters,
    strides=1,
    kernel_initializer="glorot_uniform",
    batch_norm_momentum=0.99,
    batch_norm_epsilon=1e-3,
):
    """[3x3 convolution without bias, batch norm, ReLU]: one encoder block."""
    return [
        keras.layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer=kernel_initializer,
        ),
        keras.layers.BatchNormalization(
            momentum=batch_norm_momentum, epsilon=batch_norm_epsilon
        ),
        keras.layers.ReLU(),
    ]


def small_cnn(
    kernel_initializer="glorot_uniform",
    batch_norm_momentum=0.99,
    batch_norm_epsilon=1e-3,
    image_size=32,
):
    """The recipe's encoder: 4 conv-BN-ReLU blocks (32..256), 3 max-pools, GAP.

    Keras' default initializer and batch-norm settings unless given;
    `image_size=None` takes any input size (multi-crop's small views).
    """
    layers = [
        keras.Input((image_size, image_size, 3)),
        keras.layers.Rescaling(1 / 255),
    ]
    for i, filters in enumerate((32, 64, 128, 256)):
        layers += conv_bn_relu(
            filters, 1, kernel_initializer, batch_norm_momentum, batch_norm_epsilon
        )
        if i < 3:
            layers.append(keras.layers.MaxPooling2D(2))
    layers.append(keras.layers.GlobalAveragePooling2D())
    return keras.Sequential(layers, name="small_cnn")


def _conv_bn(x, filters, strides=1, relu=True):
    x = keras.layers.Conv2D(filters, 3, strides, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x) if relu else x


def resnet18_cifar():
    """ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool), GAP output."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = _conv_bn(x, 64)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            shortcut = x
            y = _conv_bn(x, filters, strides)
            y = _conv_bn(y, filters, relu=False)
            if strides != 1 or shortcut.shape[-1] != filters:
                shortcut = keras.layers.Conv2D(filters, 1, strides, use_bias=False)(x)
                shortcut = keras.layers.BatchNormalization()(shortcut)
            x = keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs, name="resnet18_cifar")


def recipe_split(labels, num_train, num_eval, seed):
    """Indices of the training and held-out images: one permutation, seed `seed`."""
    order = np.random.default_rng(seed).permutation(len(labels))
    if num_train + num_eval > len(order):
        raise ValueError(
            f"--num-train + --num-eval = {num_train + num_eval} exceeds the "
            f"{len(order)} images of the file."
        )
    return np.sort(order[:num_train]), np.sort(order[num_train : num_train + num_eval])


def run_recipe(args):
    images, labels, _ = load_jpeg_npz(args.data)
    train, held_out = recipe_split(labels, args.num_train, args.num_eval, args.seed)
    x_train, y_train = images[train], labels[train]
    x_eval, y_eval = images[held_out], labels[held_out]
    keras.utils.set_random_seed(args.seed)

    encoder = small_cnn()
    t0 = time.perf_counter()
    random_init = knn_evaluate(encoder, (x_train, y_train), (x_eval, y_eval))
    knn_seconds = time.perf_counter() - t0
    print(f"random-init kNN top-1 (k=200, t=0.1): {random_init:.4f}", flush=True)

    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(256,), output_dim=128),
        augmenter=SimCLRAugmenter((32, 32), blur=False),
        temperature=0.5,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    t0 = time.perf_counter()
    history = model.fit(
        x_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        verbose=args.verbose,
    )
    train_seconds = time.perf_counter() - t0
    trained = knn_evaluate(model.encoder, (x_train, y_train), (x_eval, y_eval))
    print(f"trained kNN top-1 after {args.epochs} epochs: {trained:.4f}", flush=True)
    rate = args.epochs * len(x_train) / train_seconds
    print(
        f"training: {train_seconds:.0f} s ({rate:.1f} images/s incl. compilation); "
        f"one kNN evaluation: {knn_seconds:.1f} s",
        flush=True,
    )
    result = {
        "benchmark": "simclr_cifar10_recipe",
        "backend": keras.backend.backend(),
        "epochs": args.epochs,
        "num_train": len(x_train),
        "num_eval": len(x_eval),
        "knn_random_init": random_init,
        "knn_trained": trained,
        "final_loss": float(history.history["loss"][-1]),
        "train_seconds": train_seconds,
    }
    if args.lightly:
        result["lightly"] = _lightly_or_none(
            "recipe", args, (x_train, y_train, x_eval, y_eval)
        )
    return result


def run_throughput(args):
    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    batch = args.batch_size
    needed = batch * (max(args.steps, args.warmup) + 1)  # lightly times one more
    images = np.resize(images, (needed, *images.shape[1:]))  # Repeats if needed.
    keras.utils.set_random_seed(args.seed)
    encoder = resnet18_cifar() if args.encoder == "resnet18" else small_cnn()
    # The head's hidden width is the encoder's output width, as lightly's.
    width = encoder.compute_output_shape((None, 32, 32, 3))[-1]
    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(hidden_dims=(width,), output_dim=128),
        augmenter=SimCLRAugmenter((32, 32), blur=False),
        temperature=0.5,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    t0 = time.perf_counter()
    model.fit(images[: batch * args.warmup], batch_size=batch, epochs=1, verbose=0)
    warmup_seconds = time.perf_counter() - t0
    timed = images[: batch * args.steps]
    t0 = time.perf_counter()
    model.fit(timed, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    seconds = time.perf_counter() - t0
    rate = len(timed) / seconds
    name = {"resnet18": "ResNet-18", "small_cnn": "small-CNN"}[args.encoder]
    print(
        f"{name} SimCLR step, batch {batch}, 32x32, augmentation included: "
        f"{rate:.1f} images/s ({seconds / args.steps:.2f} s/step over {args.steps} "
        f"steps; warm-up {args.warmup} steps {warmup_seconds:.0f} s)",
        flush=True,
    )
    result = {
        "benchmark": f"simclr_{args.encoder}_throughput",
        "backend": keras.backend.backend(),
        "encoder": args.encoder,
        "batch_size": batch,
        "steps": args.steps,
        "warmup_steps": args.warmup,
        "images_per_second": rate,
        "seconds_per_step": seconds / args.steps,
        "parameters": int(model.encoder.count_params()),
    }
    if args.lightly:
        lightly = _lightly_or_none("throughput", args, (images,))
        result["lightly"] = lightly
        if lightly:
            ratio = rate / lightly["images_per_second"]
            result["vs_lightly"] = ratio
            print(f"{keras.backend.backend()} / lightly: {ratio:.2f}x", flush=True)
    return result


def _lightly_or_none(kind, args, data):
    if importlib.util.find_spec("lightly") is None:
        print("lightly is not importable: no side-by-side figure.", flush=True)
        return None
    # Imported only here: needs torch, torchvision and lightly.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _lightly_peer

    if kind == "recipe":
        figures = _lightly_peer.recipe(*data, epochs=args.epochs, seed=args.seed)
    else:
        figures = _lightly_peer.throughput(
            data[0],
            steps=args.steps,
            warmup=args.warmup,
            batch_size=args.batch_size,
            encoder=args.encoder,
        )
    print(f"lightly: {figures}", flush=True)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("recipe", "throughput", "all"))
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 JPEG-npz file")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-eval", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=3, help="timed throughput steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument(
        "--encoder",
        choices=("resnet18", "small_cnn"),
        default="resnet18",
        help="throughput's encoder (small_cnn: the recipe's)",
    )
    parser.add_argument("--lightly", action="store_true", help="also run lightly")
    parser.add_argument("--verbose", type=int, default=1, help="fit's verbosity")
    parser.add_argument("--json", help="append the results to this file")
    args = parser.parse_args(argv)

    print(f"backend: {keras.backend.backend()}", flush=True)
    results = []
    if args.mode in ("recipe", "all"):
        results.append(run_recipe(args))
    if args.mode in ("throughput", "all"):
        results.append(run_throughput(args))
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _results import append_jsonl

        append_jsonl(args.json, results)
    return results


if __name__ == "__main__":
    main()
