"""Single-factor ablations of training conventions on the CIFAR-10 recipe.

    KERAS_BACKEND=tensorflow python benchmarks/conventions_cifar10.py \\
        --method simclr --seeds 0,1,2 [--views joint] [--head-init torch] \\
        [--encoder-init torch] [--encoder-bn torch] [--adam-epsilon 1e-8] \\
        [--input-norm imagenet|centred|tf] [--views-from lightly] [--keep-last] \\
        [--moco-negatives queue] \\
        [--epochs 20] [--num-images 10000] [--json PATH]

The recipe of `methods_cifar10.py` (10,000 CIFAR-10 training images drawn with
seed 0, the next 10,000 as held-out kNN queries, the small CNN, a
`ProjectionHead((256,), 128)`, `SimCLRAugmenter(32, blur=False)` at
`--color-strength`, Adam 1e-3, batch 256, kNN top-1 k = 200, t = 0.1) with one
convention switched at a time between Keras' defaults and PyTorch's (which lightly
and solo-learn inherit):

- `--views joint`: both views through the networks in one call, so batch norm
  normalises the 2N images together (the default, `per_view`, is the
  library's: one call per view; `batch_norm_views`);
- `--head-init torch`: the heads' dense kernels and biases drawn from
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (`torch.nn.Linear`'s default) instead of
  Glorot-uniform kernels and zero biases;
- `--encoder-init torch`: the same for the encoder's convolutions
  (`VarianceScaling(1/3, "fan_in", "uniform")`, `torch.nn.Conv2d`'s default);
- `--encoder-bn torch`: batch-norm momentum 0.9 and epsilon 1e-5 in the encoder
  (PyTorch's 0.1 / 1e-5; Keras' defaults are 0.99 / 1e-3; the heads already use
  0.9 / 1e-5);
- `--adam-epsilon 1e-8`: PyTorch's Adam epsilon (Keras': 1e-7);
- `--input-norm imagenet`: pixels standardised with ImageNet's channel mean
  and std, as lightly's transform does, instead of scaled to [0, 1] (the first
  convolution then pads with the mean colour instead of black); `centred` only
  subtracts the mean ((x - mean) / 255), `tf` is Keras' x / 127.5 - 1;
- `--moco-negatives queue`: MoCo's negatives are the queue alone, as in He et
  al. (2020), Algorithm 1, and lightly's MoCo (`MoCo` also counts the batch's
  other keys);
- `--keep-last`: the final partial batch of each epoch is a step
  (`fit(..., drop_last=False)`; the library's default, like PyTorch's
  `DataLoader(drop_last=True)` in lightly's and solo-learn's recipes, leaves it
  out). Records store `drop_last`;
- `--views-from lightly`: SimCLR or BYOL trained on views made by lightly's
  `SimCLRTransform` (torchvision's PIL ops; needs lightly) instead of
  `SimCLRAugmenter`; `lightly-crop` takes only the crop and flip from lightly
  and the colour distortion from us, `lightly-colour` the reverse
  (`_premade_views.PeerViews`).

The model seed changes with `--seeds` (initial weights, augmentation draws,
shuffling); the data split stays fixed. Prints one line per seed and the mean and
standard deviation; `--json PATH` appends one JSON line per seed, with the
command, machine and date (`_results.py`), which `render_docs.py` tabulates on
docs/benchmarks.md as the mean +- standard deviation per configuration. The BYOL short
run: `--method byol --num-images 2048 --num-eval 1024 --batch-size 128 --epochs 3
--k 50`, with the recipe's encoder or `--encoder strided` (two stride-2
conv-BN-ReLU blocks of 32 and 64 channels, a smaller network).

Two controls separate what training changes from what evaluation changes:

- `--learning-rate 0`: the same fit with frozen weights. Only batch norm's moving
  statistics move, so its kNN change is the part of a "gain" that comes from
  evaluating with different statistics, not from learning.
- `--precise-bn`: before kNN, both the random-init encoder (a copy) and the
  trained one get the batch-norm statistics of the same clean training images
  (one batch of 2,048; "precise BN", Wu & Johnson 2021), so the two are
  compared under equal normalisation. At initialisation the moving statistics are
  mean 0 and variance 1, which makes every batch norm the identity; a short run
  evaluates with a moving average that is part initial value, part augmented
  views. Records store `precise_bn_random_init`; earlier records, without it,
  applied precise BN to the trained encoder only.

Records also carry the effective rank (RankMe, Garrido et al. 2023) of the
held-out images' features before and after training (`effective_rank_*`; not
in earlier records), which shows dimensional collapse (Jing et al. 2022) where
kNN only shows a loss. `--predictor linear-identity` gives BYOL a linear
prediction head that starts as the identity (Tian et al. 2021's linear predictor)
instead of the paper's MLP.
"""

import argparse
import importlib.util
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, os.path.dirname(HERE))  # a checkout without `pip install`
sys.path.insert(0, HERE)  # the sibling recipe module

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _premade_views import SOURCES, FirstView, PeerViews, PremadeViews  # noqa: E402
from _results import append_jsonl  # noqa: E402
from keras import ops  # noqa: E402
from simclr_cifar10 import (  # noqa: E402
    DEFAULT_DATA,
    conv_bn_relu,
    recipe_split,
    small_cnn,
)

from keras_contrastive.callbacks import MomentumSchedule  # noqa: E402
from keras_contrastive.datasets import load_jpeg_npz  # noqa: E402
from keras_contrastive.evaluation import (  # noqa: E402
    compute_embeddings,
    effective_rank,
    knn_accuracy,
)
from keras_contrastive.layers import (  # noqa: E402
    PredictionHead,
    ProjectionHead,
    SimCLRAugmenter,
)
from keras_contrastive.layers.state import l2_normalize  # noqa: E402
from keras_contrastive.models import BYOL, MoCo, SimCLR  # noqa: E402
from keras_contrastive.models.backbones import (  # noqa: E402
    _TORCH_MEAN,
    preprocessing_layers,
)

#: Clean training images whose batch-norm statistics `--precise-bn` evaluates with.
PRECISE_BN_IMAGES = 2048

#: BYOL's prediction head: the paper's MLP, or a linear map that starts as the
#: identity (DirectPred's linear predictor, Tian et al. 2021, initialised so the
#: first steps only align the two views' projections).
PREDICTORS = {
    "mlp": lambda: PredictionHead(hidden_dims=(256,), output_dim=128),
    "linear-identity": lambda: PredictionHead(
        hidden_dims=(), output_dim=128, kernel_initializer="identity"
    ),
}


class QueueOnlyMoCo(MoCo):
    """MoCo whose negatives are the queue alone, as in He et al. (2020),
    Algorithm 1 (and lightly's `NTXentLoss(memory_bank_size=...)`): the batch's
    other keys, which `MoCo` adds, become negatives only once enqueued."""

    def _direction_loss(self, query, keys, synthetic):
        query, keys = l2_normalize(query), l2_normalize(keys)
        positive = ops.sum(query * keys, axis=-1, keepdims=True)
        negative = ops.matmul(query, ops.transpose(self.queue.keys))
        logits = ops.concatenate([positive, negative], axis=-1) / self.temperature
        return ops.mean(ops.logsumexp(logits, axis=-1) - logits[:, 0])


#: torch.nn.Linear / Conv2d's default kernel: U(+-1/sqrt(fan_in)).
TORCH_KERNEL = {"class_name": "VarianceScaling", "config": {
    "scale": 1 / 3, "mode": "fan_in", "distribution": "uniform"}}  # fmt: skip


#: --input-norm: the layers that take (0, 255) pixels to the first convolution.
#: "imagenet" is lightly's (`Normalize` with ImageNet's mean and std); "centred"
#: only moves the mean to zero (the scale stays 1/255) and "tf" is Keras'
#: (-1, 1) idiom, which tell the centring from the scale apart.
INPUT_SCALINGS = {
    "unit": lambda: [keras.layers.Rescaling(1 / 255)],
    "imagenet": lambda: preprocessing_layers("torch"),
    "centred": lambda: [
        keras.layers.Normalization(
            mean=[255.0 * m for m in _TORCH_MEAN], variance=[255.0**2] * 3
        )
    ],
    "tf": lambda: preprocessing_layers("tf"),
}


def with_input_scaling(encoder, mode):
    """`encoder` (a Sequential that starts with Rescaling(1/255)) with its
    pixels scaled by `INPUT_SCALINGS[mode]` instead. With a centred input the
    first convolution's zero padding is the mean colour, not black.

    "unit" returns `encoder` itself (its first layer already is that scaling), so
    the default builds the very model of the records made before this switch."""
    rescaling, *rest = encoder.layers
    if not isinstance(rescaling, keras.layers.Rescaling):
        raise ValueError(f"expected a leading Rescaling layer, got {rescaling}")
    if mode == "unit":
        return encoder
    scaling = INPUT_SCALINGS[mode]()
    return keras.Sequential([keras.Input(encoder.input_shape[1:]), *scaling, *rest])


def torch_style_head(head, fan_in):
    """Sets the dense layers of an unbuilt `MLPHead` to torch.nn.Linear's init."""
    for block in head.blocks:
        if isinstance(block, keras.layers.Dense):
            block.kernel_initializer = keras.initializers.get(TORCH_KERNEL)
            limit = 1 / math.sqrt(fan_in)
            block.bias_initializer = keras.initializers.RandomUniform(-limit, limit)
            fan_in = block.units
    return head


def precise_batch_norm(encoder, images):
    """Sets every batch norm's moving statistics to those of `images` (clean
    training images, one batch): the statistics the features are evaluated with,
    instead of a moving average over augmented views of past weights."""
    norms = [
        x
        for x in encoder._flatten_layers()
        if isinstance(x, keras.layers.BatchNormalization)
    ]
    saved = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    encoder(keras.ops.convert_to_tensor(images), training=True)
    for norm, momentum in zip(norms, saved):
        norm.momentum = momentum


def strided_cnn(kernel_initializer, batch_norm_momentum, batch_norm_epsilon):
    """Two stride-2 conv-BN-ReLU blocks (32, 64 channels) and global pooling: the
    short run's small encoder."""
    layers = [keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255)]
    for filters in (32, 64):
        layers += conv_bn_relu(
            filters, 2, kernel_initializer, batch_norm_momentum, batch_norm_epsilon
        )
    return keras.Sequential([*layers, keras.layers.GlobalAveragePooling2D()])


def precise_copy(encoder, images):
    """A copy of `encoder` with the batch-norm statistics of `images`; `encoder`
    itself is left as it is (its moving statistics start the training run)."""
    copy = keras.models.clone_model(encoder)
    copy.set_weights(encoder.get_weights())
    precise_batch_norm(copy, images)
    return copy


def build(args, encoder):
    augmenter = SimCLRAugmenter(
        (32, 32), blur=False, color_strength=args.color_strength
    )
    heads = [ProjectionHead(hidden_dims=(256,), output_dim=128)]
    if args.method == "byol":
        heads.append(PREDICTORS[args.predictor]())
    if args.head_init == "torch":
        for head, fan_in in zip(heads, (256, 128)):
            torch_style_head(head, fan_in)
    views = {"batch_norm_views": args.views}
    simclr, byol = SimCLR, BYOL
    if args.views_from != "ours":
        augmenter = FirstView()
        simclr = type("PremadeViewsSimCLR", (PremadeViews, SimCLR), {})
        byol = type("PremadeViewsBYOL", (PremadeViews, BYOL), {})
    if args.method == "simclr":
        return simclr(encoder, heads[0], augmenter, temperature=0.5, **views), []
    if args.method == "moco":
        moco = QueueOnlyMoCo if args.moco_negatives == "queue" else MoCo
        model = moco(
            encoder, heads[0], augmenter, queue_size=4096, momentum=0.99,
            temperature=0.2,
        )  # fmt: skip
        return model, []
    m = args.momentum
    model = byol(encoder, heads[0], heads[1], augmenter, momentum=m, **views)
    return model, [MomentumSchedule(start=m, end=1.0)]


def read_out(encoder, data, k):
    """kNN top-1 (k, t = 0.1) and the effective rank (RankMe) of the held-out
    images' features."""
    x_train, y_train, x_eval, y_eval = data
    # The held-out features are embedded once, for both read-outs.
    eval_features = compute_embeddings(encoder, x_eval)
    accuracy = knn_accuracy(
        compute_embeddings(encoder, x_train),
        y_train,
        eval_features,
        y_eval,
        k=k,
        temperature=0.1,
    )
    return accuracy, effective_rank(eval_features)


def run(args, seed, data):
    x_train = data[0]
    keras.utils.set_random_seed(seed)
    torch_encoder = {
        "kernel_initializer": TORCH_KERNEL if args.encoder_init == "torch" else
        "glorot_uniform",
        "batch_norm_momentum": 0.9 if args.encoder_bn == "torch" else 0.99,
        "batch_norm_epsilon": 1e-5 if args.encoder_bn == "torch" else 1e-3,
    }  # fmt: skip
    encoder = {"small_cnn": small_cnn, "strided": strided_cnn}[args.encoder](
        **torch_encoder
    )
    encoder = with_input_scaling(encoder, args.input_norm)
    initial = (
        precise_copy(encoder, x_train[:PRECISE_BN_IMAGES])
        if args.precise_bn
        else encoder
    )
    random_init, random_init_rank = read_out(initial, data, args.k)
    model, callbacks = build(args, encoder)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate, epsilon=args.adam_epsilon)
    )
    inputs = {"x": x_train, "batch_size": args.batch_size, "shuffle": True}
    if args.views_from != "ours":
        inputs = {"x": PeerViews(
            x_train, args.batch_size, args.color_strength, args.views_from, seed,
            drop_last=not args.keep_last,
        )}  # fmt: skip
    t0 = time.perf_counter()
    history = model.fit(
        **inputs,
        epochs=args.epochs,
        verbose=0,
        callbacks=callbacks,
        drop_last=not args.keep_last,
    )
    seconds = time.perf_counter() - t0
    if args.precise_bn:
        precise_batch_norm(model.encoder, x_train[:PRECISE_BN_IMAGES])
    trained, trained_rank = read_out(model.encoder, data, args.k)
    return {
        "benchmark": "conventions_cifar10",
        "backend": keras.backend.backend(),
        "seed": seed,
        **{
            k: v
            for k, v in vars(args).items()
            if k not in ("json", "seeds", "data", "keep_last")
        },
        "drop_last": not args.keep_last,
        "precise_bn_random_init": args.precise_bn,
        "knn_random_init": random_init,
        "knn_trained": trained,
        "effective_rank_random_init": random_init_rank,
        "effective_rank_trained": trained_rank,
        "final_loss": float(history.history["loss"][-1]),
        "train_seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--method", choices=("simclr", "moco", "byol"), default="simclr"
    )
    parser.add_argument("--seeds", default="0", help="comma-separated model seeds")
    parser.add_argument(
        "--encoder", choices=("small_cnn", "strided"), default="small_cnn"
    )
    parser.add_argument("--views", choices=("joint", "per_view"), default="per_view")
    parser.add_argument("--head-init", choices=("keras", "torch"), default="keras")
    parser.add_argument("--encoder-init", choices=("keras", "torch"), default="keras")
    parser.add_argument("--encoder-bn", choices=("keras", "torch"), default="keras")
    parser.add_argument("--adam-epsilon", type=float, default=1e-7)
    parser.add_argument("--input-norm", choices=tuple(INPUT_SCALINGS), default="unit")
    parser.add_argument("--momentum", type=float, default=0.99, help="BYOL's start")
    parser.add_argument("--predictor", choices=tuple(PREDICTORS), default="mlp")
    parser.add_argument(
        "--moco-negatives", choices=("batch_and_queue", "queue"),
        default="batch_and_queue", help="MoCo's: the batch's other keys too, or not",
    )  # fmt: skip
    parser.add_argument(
        "--precise-bn",
        action="store_true",
        help="both encoders evaluated with the BN statistics of clean images",
    )
    parser.add_argument("--keep-last", action="store_true")
    parser.add_argument(
        "--views-from", choices=("ours", *SOURCES), default="ours",
        help="views made by lightly's SimCLRTransform, whole or in part",
    )  # fmt: skip
    parser.add_argument("--color-strength", type=float, default=0.5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-images", type=int, default=10_000)
    parser.add_argument("--num-eval", type=int, default=None, help="default: as many")
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 JPEG-npz file")
    parser.add_argument("--json", help="append the results to this file")
    args = parser.parse_args(argv)
    if args.views_from != "ours" and args.method == "moco":
        parser.error("--views-from takes SimCLR or BYOL (MoCo augments in its step)")
    num_eval = args.num_eval or args.num_images
    images, labels, _ = load_jpeg_npz(args.data)
    train, held_out = recipe_split(labels, args.num_images, num_eval, 0)
    data = (images[train], labels[train], images[held_out], labels[held_out])
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        result = run(args, seed, data)
        results.append(result)
        print(
            f"{keras.backend.backend()} {args.method} seed {seed}: kNN "
            f"{result['knn_random_init']:.4f} -> {result['knn_trained']:.4f} "
            f"({result['train_seconds']:.0f} s)",
            flush=True,
        )
        if args.json:
            append_jsonl(args.json, [result])
    trained = np.array([r["knn_trained"] for r in results])
    gains = trained - np.array([r["knn_random_init"] for r in results])
    print(
        f"mean {100 * trained.mean():.2f} +- {100 * trained.std():.2f} "
        f"(gain over random init {100 * gains.mean():+.2f} +- {100 * gains.std():.2f})"
        f" over {len(results)} seed(s)",
        flush=True,
    )
    return results


if __name__ == "__main__":
    main()
