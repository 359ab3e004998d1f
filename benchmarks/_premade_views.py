"""Training on views made outside the model.

- `PremadeViews`: a mixin for a contrastive model whose inputs are its two
  views stacked on the channels, (batch, H, W, 6): `augment` only splits them.
  The lock-step scripts feed it the same views on both sides.
- `PeerViews`: a `PyDataset` of such batches made from CIFAR-10 images by
  lightly's `SimCLRTransform` (torchvision's PIL ops; Chen et al. 2020's recipe
  as lightly builds it), whole or in part: the crop and flip from one library
  and the colour distortion from the other, which tells where a difference that
  lies in the views comes from.
"""

import keras
import numpy as np

from keras_contrastive.layers import SimCLRAugmenter
from keras_contrastive.models.fit_data import batch_count

#: --views-from: where each view's crop and flip, and its colour distortion
#: (jitter, grayscale), come from.
SOURCES = {
    "lightly": ("lightly", "lightly"),
    "lightly-crop": ("lightly", "ours"),
    "lightly-colour": ("ours", "lightly"),
}


class FirstView(keras.layers.Layer):
    """Stands in for the augmenter when building: the first view's channels."""

    def call(self, x):
        return x[..., :3]


class PremadeViews:
    """Mixin for a contrastive model whose inputs are both views stacked on the
    channels: `augment` only splits them, `call` encodes the first."""

    def augment(self, images):
        return [images[..., :3], images[..., 3:]]

    def call(self, inputs, training=False):
        return self.encoder(inputs[..., :3], training=training)


def lightly_parts(color_strength):
    """lightly's SimCLRTransform for CIFAR-10 (32 px, crop scale (0.08, 1), no
    blur, no normalisation), split into its PIL crop-and-flip and colour ops
    (what follows them, a blur of probability 0 and the conversion to a tensor,
    is left out: the views stay uint8 images)."""
    from lightly.transforms import SimCLRTransform
    from torchvision.transforms import Compose

    transform = SimCLRTransform(
        input_size=32,
        cj_strength=color_strength,
        gaussian_blur=0.0,
        min_scale=0.08,
        normalize=None,
    )
    ops = transform.transforms[0].transform.transforms
    # RandomApply(ColorJitter) and RandomGrayscale (torchvision v1 or v2).
    colour = [
        i for i, op in enumerate(ops)
        if type(op).__name__ in ("RandomApply", "RandomGrayscale")
    ]  # fmt: skip
    first_colour, last_colour = colour[0], colour[-1]
    return Compose(ops[:first_colour]), Compose(ops[first_colour : last_colour + 1])


class PeerViews(keras.utils.PyDataset):
    """Batches of two views of `images` (uint8, (N, 32, 32, 3)), stacked on the
    channels, float32 in [0, 255]; a new order and new views every epoch; the
    partial last batch left out unless `drop_last=False` (lightly's
    `DataLoader(drop_last=True)`; `fit`'s `drop_last` acts on arrays only).

    `source` (a key of `SOURCES`) picks lightly's or our (`SimCLRAugmenter`)
    crop-and-flip and colour distortion. torchvision draws from torch's global
    generator, which `keras.utils.set_random_seed` seeds; our half draws from
    Keras' global seed. One worker, so the draws follow the batches in order."""

    def __init__(
        self, images, batch_size, color_strength, source, seed, drop_last=True
    ):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
        self.images, self.batch_size, self.drop_last = images, batch_size, drop_last
        self.crop_from, self.colour_from = SOURCES[source]
        self.lightly_crop, self.lightly_colour = lightly_parts(color_strength)
        # Our halves: colour off (rates 0), or crop off (the whole image, no flip).
        self.our_crop = SimCLRAugmenter(
            32, blur=False, jitter_rate=0.0, grayscale_rate=0.0
        )
        self.our_colour = SimCLRAugmenter(
            32, crop_scale=(1.0, 1.0), color_strength=color_strength, blur=False,
            flip=False,
        )  # fmt: skip
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self):
        return batch_count(len(self.images), self.batch_size, self.drop_last)

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.images))

    def __getitem__(self, index):
        batch = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        views = [self._view(self.images[batch]) for _ in range(2)]
        return np.concatenate(views, axis=-1)

    def _view(self, images):
        from PIL import Image

        if self.crop_from == "lightly":
            crops = [self.lightly_crop(Image.fromarray(image)) for image in images]
            x = np.stack([np.asarray(crop) for crop in crops])
        else:
            x = keras.ops.convert_to_numpy(self.our_crop(images))
            x = np.round(x).clip(0, 255).astype("uint8")  # PIL's colour ops take uint8
        if self.colour_from == "ours":
            return keras.ops.convert_to_numpy(self.our_colour(x)).astype("float32")
        out = [np.asarray(self.lightly_colour(Image.fromarray(i))) for i in x]
        return np.stack(out).astype("float32")
