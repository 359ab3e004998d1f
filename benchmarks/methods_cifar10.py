"""MoCo, BYOL, the memory bank, NNCLR and Barlow Twins on the fixed CIFAR-10 recipe,
next to SimCLR.

    KERAS_BACKEND=jax python benchmarks/methods_cifar10.py [--epochs 20]
        [--methods simclr,moco,byol,memory_bank] [--num-images 10000]
    python3 tasks.py bench methods_cifar10            (backend from KERAS_BACKEND)

The recipe of `simclr_cifar10.py`: 10,000 images drawn from
the CIFAR-10 training split with seed 0 (the next 10,000 of the same permutation
are the held-out kNN queries), the small 4-block CNN encoder, SimCLR augmentation
without blur, Adam 1e-3, batch 256, 20 epochs, then kNN top-1 (k = 200, t = 0.1) of
the held-out images against the training ones. Per method:

- `simclr`: `ProjectionHead((256,), 128)`, NT-Xent, temperature 0.5 (the reference);
- `moco`: MoCo v2, the same head, queue 4096, momentum 0.99, temperature 0.2;
- `byol`: the same head, `PredictionHead((256,), 128)`, momentum 0.99 annealed to 1
  with the cosine `MomentumSchedule`;
- `simsiam` (optional): SimSiam's default heads for the encoder;
- `memory_bank`: Wu et al. 2018: linear 128-d head, 4096 negatives, temperature
  0.07, bank momentum 0.5 (ids are the row numbers of the training images);
- `nnclr` (optional): Dwibedi et al. 2021: the same head, `PredictionHead((256,),
  128)`, support set 4096, temperature 0.2;
- `barlow_twins` (optional): Zbontar et al. 2021: `ProjectionHead((2048, 2048),
  2048)` (the paper's 8192 scaled down), lambda 5e-3;
- `simclr_multicrop` (optional): SimCLR on `MultiCrop` views (Caron et al.
  2020): the recipe's two 32 x 32 views (crop area 8-100%) plus six 16 x 16 local
  views (5-14%), NT-Xent over every pair with a global view;
- `deep_infomax` (optional): Hjelm et al. 2019, the local InfoNCE objective on
  the encoder's 8x8 map after the second max-pool against its pooled features, no
  augmentation.

With `--lightly`, the methods lightly has (`simclr`, `moco`, `byol`) also run in
lightly (PyTorch, `_lightly_peer.py`) on the same images, when lightly, torch and
torchvision are importable: kNN top-1 and step time side by side
(`--lightly-only`: lightly's runs alone, for more seeds). lightly's transform ends
with ImageNet's `Normalize`; `--lightly-input-norm centred` only centres its pixels,
(x - mean) / 255, as `conventions_cifar10.py --input-norm centred` does ours.

Both libraries leave out each epoch's partial last batch (`fit`'s default
`drop_last`, lightly's examples' `DataLoader(drop_last=True)`); `--keep-last`
trains on it in both (the records before this switch existed did, in both).

Every method starts from the same random-init encoder (same seed). Reported: the
kNN top-1 of the random-init and trained encoders, training time, and the median
time of a training step after compilation (from per-batch timestamps, first epoch's
first two steps excluded), also relative to SimCLR's: the momentum copy of MoCo and
BYOL should cost at most one extra forward pass. Results are printed and, with
`--json PATH`, appended as JSON lines.
"""

import argparse
import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, ROOT)  # Run from a checkout without `pip install -e .`.
sys.path.insert(0, HERE)  # The sibling recipe module.

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _results import append_jsonl  # noqa: E402
from simclr_cifar10 import DEFAULT_DATA, recipe_split, small_cnn  # noqa: E402

from keras_contrastive.callbacks.momentum_schedule import (  # noqa: E402
    MomentumSchedule,
)
from keras_contrastive.datasets import load_jpeg_npz  # noqa: E402
from keras_contrastive.evaluation import knn_evaluate  # noqa: E402
from keras_contrastive.layers import (  # noqa: E402
    MultiCrop,
    PredictionHead,
    ProjectionHead,
    SimCLRAugmenter,
)
from keras_contrastive.models import (  # noqa: E402
    BYOL,
    NNCLR,
    BarlowTwins,
    MemoryBankModel,
    MoCo,
    SimCLR,
    SimSiam,
)

METHODS = (
    "simclr",
    "moco",
    "byol",
    "simsiam",
    "memory_bank",
    "nnclr",
    "barlow_twins",
    "deep_infomax",
    "simclr_multicrop",
)
DEFAULT_METHODS = "simclr,moco,byol,memory_bank"


def build(method, encoder, num_train, color_strength=0.5):
    """(model, fit callbacks, whether the model takes (ids, images))."""
    augmenter = SimCLRAugmenter((32, 32), blur=False, color_strength=color_strength)

    def head():
        return ProjectionHead(hidden_dims=(256,), output_dim=128)

    if method == "simclr":
        return SimCLR(encoder, head(), augmenter, temperature=0.5), [], False
    if method == "simclr_multicrop":
        # The two-view recipe's global views, plus six local ones.
        crop = MultiCrop(32, 16, 2, 6, scales=((0.08, 1.0), (0.05, 0.14)), blur=False)
        return SimCLR(encoder, head(), crop, temperature=0.5), [], False
    if method == "moco":
        model = MoCo(
            encoder,
            head(),
            augmenter,
            queue_size=4096,
            momentum=0.99,
            temperature=0.2,
        )
        return model, [], False
    if method == "byol":
        model = BYOL(
            encoder,
            head(),
            PredictionHead(hidden_dims=(256,), output_dim=128),
            augmenter,
            momentum=0.99,
        )
        return model, [MomentumSchedule(start=0.99, end=1.0)], False
    if method == "simsiam":
        return SimSiam(encoder, augmenter=augmenter), [], False
    if method == "nnclr":
        model = NNCLR(
            encoder,
            head(),
            PredictionHead(hidden_dims=(256,), output_dim=128),
            augmenter,
            support_size=4096,
            temperature=0.2,
        )
        return model, [], False
    if method == "barlow_twins":
        head = ProjectionHead(hidden_dims=(2048, 2048), output_dim=2048)
        return BarlowTwins(encoder, head, augmenter), [], False
    if method == "deep_infomax":
        from keras_contrastive.models import DeepInfoMax

        # Hjelm et al. 2019: the 8 x 8 map after the second max-pool is the local
        # features, the encoder's output the global vector; InfoNCE, the default
        # 512-d dot-product critic, no augmentation (the paper's).
        pools = [
            layer
            for layer in encoder.layers
            if isinstance(layer, keras.layers.MaxPooling2D)
        ]
        return DeepInfoMax(encoder, pools[1].name), [], False
    model = MemoryBankModel(
        encoder,
        num_train,
        augmenter=augmenter,
        num_negatives=4096,
        temperature=0.07,
        bank_momentum=0.5,
    )
    return model, [], True


class StepTimer(keras.callbacks.Callback):
    """Wall time between consecutive batch ends (the step, made synchronous)."""

    def __init__(self, skip=2):
        super().__init__()
        self.skip = skip
        self.durations = []
        self._last = None
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self._seen += 1
        if self._last is not None and self._seen > self.skip:
            self.durations.append(now - self._last)
        self._last = now

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None  # not across the epoch boundary (evaluation, shuffles)

    def median(self):
        return float(np.median(self.durations)) if self.durations else float("nan")


def run_method(method, args, data, random_init):
    x_train, y_train, x_eval, y_eval = data
    keras.utils.set_random_seed(args.seed)  # the same random-init encoder each time
    # Same weights either way; multi-crop's encoder also takes 16 x 16 views.
    encoder = small_cnn(image_size=None if "multicrop" in method else 32)
    model, callbacks, with_ids = build(
        method, encoder, len(x_train), color_strength=args.color_strength
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    timer = StepTimer()
    x = (np.arange(len(x_train)), x_train) if with_ids else x_train
    t0 = time.perf_counter()
    history = model.fit(
        x,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        verbose=args.verbose,
        callbacks=callbacks + [timer],
        drop_last=not args.keep_last,
    )
    train_seconds = time.perf_counter() - t0
    trained = knn_evaluate(model.encoder, (x_train, y_train), (x_eval, y_eval))
    return {
        "benchmark": "methods_cifar10",
        "library": "keras_contrastive",
        "method": method,
        "seed": args.seed,
        "split_seed": args.seed if args.split_seed is None else args.split_seed,
        "backend": keras.backend.backend(),
        "epochs": args.epochs,
        "num_train": len(x_train),
        "num_eval": len(x_eval),
        "knn_random_init": random_init,
        "knn_trained": trained,
        "drop_last": not args.keep_last,
        "color_strength": args.color_strength,
        "final_loss": float(history.history["loss"][-1]),
        "final_embedding_std": float(history.history["embedding_std"][-1]),
        "train_seconds": train_seconds,
        "step_seconds": timer.median(),
    }


def lightly_peer(method, args, data):
    """lightly's run of `method` on the same data, or None where it cannot run."""
    if method not in ("simclr", "moco", "byol"):
        print(f"lightly has no {method} counterpart here.", flush=True)
        return None
    if importlib.util.find_spec("lightly") is None:
        print("lightly is not importable: no side-by-side figure.", flush=True)
        return None
    import _lightly_peer  # needs torch, torchvision and lightly

    figures = _lightly_peer.recipe(
        *data,
        epochs=args.epochs,
        seed=args.seed,
        method=method,
        drop_last=not args.keep_last,
        color_strength=args.color_strength,
        input_norm=args.lightly_input_norm,
    )
    return {
        "benchmark": "methods_cifar10",
        "library": "lightly",
        "method": method,
        "seed": args.seed,
        "split_seed": args.seed if args.split_seed is None else args.split_seed,
        "epochs": args.epochs,
        "num_train": len(data[0]),
        "num_eval": len(data[2]),
        "drop_last": not args.keep_last,
        "color_strength": args.color_strength,
        "input_norm": args.lightly_input_norm,
        **figures,
    }


def _report(name, result, epochs):
    print(
        f"{name}: kNN {result['knn_trained']:.4f} after {epochs} epochs, "
        f"{result['train_seconds']:.0f} s, {1000 * result['step_seconds']:.0f} "
        "ms/step",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma-separated")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 JPEG-npz file")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--num-images",
        type=int,
        default=10_000,
        help="training images, and as many held-out kNN queries",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--split-seed",
        type=int,
        default=None,
        help="seed of the image split (default: --seed); fix it to vary only "
        "the model's seed, as conventions_cifar10.py does",
    )
    parser.add_argument("--verbose", type=int, default=1, help="fit's verbosity")
    parser.add_argument("--json", help="append the results to this file")
    parser.add_argument(
        "--lightly", action="store_true", help="also run lightly's recipes"
    )
    parser.add_argument(
        "--lightly-only", action="store_true", help="only lightly's runs (seeds)"
    )
    parser.add_argument(
        "--keep-last", action="store_true", help="train on partial last batches"
    )
    parser.add_argument(
        "--color-strength",
        type=float,
        default=0.5,
        help="colour jitter strength of both libraries' augmentation",
    )
    parser.add_argument(
        "--lightly-input-norm",
        choices=("imagenet", "centred"),
        default="imagenet",
        help="lightly's pixels: its ImageNet Normalize, or (x - mean) / 255",
    )
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        parser.error(f"--methods takes a comma-separated subset of {METHODS}")

    print(f"backend: {keras.backend.backend()}", flush=True)
    images, labels, _ = load_jpeg_npz(args.data)
    split_seed = args.seed if args.split_seed is None else args.split_seed
    train, held_out = recipe_split(labels, args.num_images, args.num_images, split_seed)
    data = (images[train], labels[train], images[held_out], labels[held_out])
    keras.utils.set_random_seed(args.seed)
    random_init = knn_evaluate(small_cnn(), data[:2], data[2:])
    print(f"random-init kNN top-1 (k=200, t=0.1): {random_init:.4f}", flush=True)

    results = []
    for method in methods:
        print(f"--- {method}", flush=True)
        if not args.lightly_only:
            result = run_method(method, args, data, random_init)
            results.append(result)
            _report(method, result, args.epochs)
        if args.lightly or args.lightly_only:
            peer = lightly_peer(method, args, data)
            if peer is not None:
                results.append(peer)
                _report(f"lightly {method}", peer, args.epochs)
    references = {r["library"]: r for r in results if r["method"] == "simclr"}
    print(
        f"\n{'library':<18} {'method':<12} {'kNN top-1':>9} {'ms/step':>8} "
        f"{'vs SimCLR':>9}"
    )
    print(f"{'':<18} {'random init':<12} {random_init:>9.4f}")
    for result in results:
        # Step time relative to the same library's SimCLR step.
        reference = references.get(result["library"])
        if reference is not None:
            result["step_time_vs_simclr"] = (
                result["step_seconds"] / reference["step_seconds"]
            )
        relative = result.get("step_time_vs_simclr")
        print(
            f"{result['library']:<18} {result['method']:<12} "
            f"{result['knn_trained']:>9.4f} {1000 * result['step_seconds']:>8.0f} "
            + (f"{relative:>8.2f}x" if relative is not None else f"{'-':>9}")
        )
    if args.json:
        append_jsonl(args.json, results)
    return results


if __name__ == "__main__":
    main()
