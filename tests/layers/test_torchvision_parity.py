"""Colour ops and the crop sampler against torchvision itself, where it is installed.

The NumPy references in test_color.py and test_geometry.py (torchvision's formulas
written out) always run; these compare with the real thing when `torchvision`
imports (it is not a test dependency: its wheels pin their own torch build).
"""

import numpy as np
import pytest

from keras_contrastive.datasets import load_cifar10_sample
from keras_contrastive.layers.augmentation import color, geometry
from tests.layers._util import run
from tests.layers.test_geometry import _ks_statistic

F = pytest.importorskip("torchvision.transforms.v2.functional")
torch = pytest.importorskip("torch")
RandomResizedCrop = pytest.importorskip("torchvision.transforms").RandomResizedCrop

NAMES = ("brightness", "contrast", "saturation", "hue")
TORCHVISION_OPS = {
    "brightness": F.adjust_brightness,
    "contrast": F.adjust_contrast,
    "saturation": F.adjust_saturation,
    "hue": F.adjust_hue,
}


def _real_images(n=128):
    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    return images[:n].astype("float32") / 255.0


def _torchvision(images, order, params, grayscale=None):
    out = []
    for i, image in enumerate(images):
        x = torch.from_numpy(image).permute(2, 0, 1)
        for op in order[i]:
            x = TORCHVISION_OPS[NAMES[op]](x, float(params[NAMES[op]][i]))
        if grayscale is not None and grayscale[i]:
            x = F.rgb_to_grayscale(x, num_output_channels=3)
        out.append(x.permute(1, 2, 0).numpy())
    return np.stack(out)


@pytest.mark.parametrize("name", NAMES)
def test_each_colour_op_equals_torchvisions(rng, name):
    images = _real_images()
    n = len(images)
    params = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
    params = {k: np.full(n, v, "float32") for k, v in params.items()}
    low, high = (-0.5, 0.5) if name == "hue" else (0.2, 1.8)
    params[name] = rng.uniform(low, high, n).astype("float32")
    order = np.tile(np.arange(4, dtype="int32"), (n, 1))
    ours = run(color.color_distort, images, *params.values(), order)
    theirs = _torchvision(images, order, params)
    assert np.abs(ours - theirs).max() <= 1 / 255


def test_random_order_and_grayscale_equal_torchvisions(rng):
    images = _real_images()
    n = len(images)
    params = {k: rng.uniform(0.6, 1.4, n).astype("float32") for k in NAMES[:3]}
    params["hue"] = rng.uniform(-0.1, 0.1, n).astype("float32")
    order = np.stack([rng.permutation(4) for _ in range(n)]).astype("int32")
    grayscale = rng.uniform(0, 1, n) < 0.3
    ours = run(
        lambda x, o, g, *p: color.color_distort(
            x, order=o, grayscale=g, **dict(zip(NAMES, p))
        ),
        images,
        order,
        grayscale,
        *params.values(),
    )
    theirs = _torchvision(images, order, params, grayscale)
    assert np.abs(ours - theirs).max() <= 1 / 255


def test_crop_sampler_matches_torchvisions_get_params(rng):
    n, height, width = 20_000, 480, 640
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    torch.manual_seed(0)
    image = torch.zeros(3, height, width)
    theirs = np.array(
        [RandomResizedCrop.get_params(image, scale, ratio) for _ in range(n)], float
    )
    u = rng.uniform(0, 1, (n, 22)).astype("float32")
    ours = run(lambda u: geometry.sample_crop_boxes(u, height, width, scale, ratio), u)
    ours = np.round(ours)  # whole pixels, as torchvision's boxes
    critical = 1.95 * np.sqrt(2 / n)  # KS at alpha = 0.001
    for column in range(4):
        statistic = _ks_statistic(ours[:, column], theirs[:, column])
        assert statistic < critical, (column, statistic)
