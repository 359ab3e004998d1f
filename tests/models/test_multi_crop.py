"""Multi-crop views (Caron et al. 2020) and SimCLR / BYOL on more than two views."""

import keras
import numpy as np
import pytest

from keras_contrastive.layers import MultiCrop, PredictionHead, ProjectionHead
from keras_contrastive.models import BYOL, MoCo, SimCLR
from keras_contrastive.models.image_model import global_view_pairs, map_views
from tests.losses.reference import byol_rows, nt_xent_rows


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), np.float64)


def _images(rng, n=8, size=16):
    return rng.integers(0, 256, (n, size, size, 3)).astype("uint8")


def _encoder():
    # Convolutions and global pooling: any input size (global and local views).
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


# ------------------------------------------------------------------ the layer


def test_views_have_the_sizes_and_order_asked_for(rng):
    crop = MultiCrop(16, 8, num_global=2, num_local=3, blur=False, seed=0)
    views = crop(_images(rng))
    assert [tuple(v.shape) for v in views] == [(8, 16, 16, 3)] * 2 + [(8, 8, 8, 3)] * 3
    assert crop.num_views == 5 and crop.num_global == 2
    for view in views:
        v = _np(view)
        assert v.min() >= 0.0 and v.max() <= 255.0
    # Every view draws its own randomness: no two views are equal.
    flat = [_np(v).ravel() for v in views]
    assert not np.allclose(flat[0], flat[1]) and not np.allclose(flat[2], flat[3])


@pytest.mark.parametrize("kind", ["global", "local"])
def test_crop_widths_follow_the_scales(kind):
    """On a horizontal ramp (pixel value = column), a view's value span is its
    crop's width. Area fractions in [lo, hi] with aspect ratios in [3/4, 4/3]
    bound the width fraction of a square image to [sqrt(3 lo / 4), sqrt(4 hi / 3)]
    (Caron et al. 2020's scales, torchvision's aspect ratios)."""
    size = 64
    ramp = np.broadcast_to(
        np.arange(size, dtype="float32")[None, :, None] * 4.0, (size, size, 3)
    )
    images = np.repeat(ramp[None], 64, axis=0).copy()
    crop = MultiCrop(
        16, 8, num_global=2, num_local=2, color_strength=0.0, blur=False, seed=3
    )
    views = crop(images)
    picked = views[:2] if kind == "global" else views[2:]
    lo, hi = crop.scales[0 if kind == "global" else 1]
    out_size = 16 if kind == "global" else 8
    for view in picked:
        v = _np(view)[..., 0] / 4.0  # columns of the source
        span = v.max(axis=(1, 2)) - v.min(axis=(1, 2))
        # The output samples pixel centres: the span misses about one output
        # pixel's worth of the crop, plus one source pixel of interpolation.
        width = span * out_size / (out_size - 1) / size
        assert width.min() >= np.sqrt(0.75 * lo) - 2.0 / size, width.min()
        assert width.max() <= min(1.0, np.sqrt(hi * 4 / 3)) + 2.0 / size, width.max()
    if kind == "local":
        assert width.max() < 0.5  # small crops indeed


def test_config_round_trip(rng):
    crop = MultiCrop(
        (16, 12),
        8,
        num_global=3,
        num_local=1,
        scales=((0.3, 1.0), (0.1, 0.3)),
        color_strength=1.0,
        blur=False,
        seed=5,
    )
    again = MultiCrop.from_config(crop.get_config())
    assert again.get_config() == crop.get_config()
    assert again.scales == ((0.3, 1.0), (0.1, 0.3))
    assert [tuple(v.shape) for v in again(_images(rng))] == (
        [(8, 16, 12, 3)] * 3 + [(8, 8, 8, 3)]
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_global": 1}, "num_global"),
        ({"num_local": -1}, "num_local"),
        ({"scales": (0.1, 1.0)}, "scales"),
        ({"scales": ((0.1, 1.0), (0.0, 0.1))}, "scales[1]"),
        ({"local_size": 0}, "image_size"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    args = {"global_size": 16, "local_size": 8, **kwargs}
    with pytest.raises(ValueError, match=name.replace("[", r"\[")):
        MultiCrop(**args)


# ------------------------------------------------------------------ pairing


def test_global_view_pairs():
    assert global_view_pairs(2, 2) == [(0, 1)]
    assert global_view_pairs(4, 2) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    # 2 global + 6 local views: 1 global-global pair, 12 global-local, no local-local.
    assert len(global_view_pairs(8, 2)) == 13


def test_joint_batch_norm_groups_views_of_one_size(rng):
    """Joint mode concatenates consecutive views of equal size (DINO's forward):
    the two large views share batch statistics, the two small ones theirs."""

    def network(x):
        mean = keras.ops.mean(x, axis=(0, 1, 2), keepdims=True)
        return keras.ops.mean(x - mean, axis=(1, 2))  # per-image, after centring

    views = [
        rng.normal(m, 1.0, (3, s, s, 2)).astype("float32")
        for m, s in ((0.0, 4), (5.0, 4), (-3.0, 2), (9.0, 2))
    ]
    got = [_np(t) for t in map_views(network, views, "joint")]
    for pair in ((0, 1), (2, 3)):
        joint_mean = np.concatenate([views[i] for i in pair]).mean(axis=(0, 1, 2))
        for i in pair:
            expected = (views[i] - joint_mean).mean(axis=(1, 2))
            np.testing.assert_allclose(got[i], expected, atol=1e-4)


# ------------------------------------------------------------------ the methods


def _simclr(**kwargs):
    crop = MultiCrop(16, 8, num_global=2, num_local=2, blur=False, seed=1)
    head = ProjectionHead(hidden_dims=(8,), output_dim=4)
    return SimCLR(_encoder(), head, crop, temperature=0.3, **kwargs)


@pytest.mark.parametrize("mode", ["per_view", "joint"])
def test_simclr_loss_averages_nt_xent_over_global_pairs(rng, mode):
    model = _simclr(batch_norm_views=mode)
    x = _images(rng)
    model.build_for(x)
    outputs = model.forward_pass(x, training=True)
    z = [outputs["z_a"], outputs["z_b"], *outputs["z_more"]]
    assert len(z) == 4 and tuple(_np(z[3]).shape) == (8, 4)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)]
    expected = np.mean(
        [nt_xent_rows(_np(z[i]), _np(z[j]), 0.3).mean() for i, j in pairs]
    )
    got = float(_np(model.compute_contrastive_loss(outputs)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # The features are the global views' (2N rows), as with two views.
    assert _np(outputs["features"]).shape == (16, 8)


def test_byol_loss_regresses_every_other_global_target(rng):
    crop = MultiCrop(16, 8, num_global=2, num_local=2, blur=False, seed=2)
    model = BYOL(
        _encoder(),
        ProjectionHead(hidden_dims=(8,), output_dim=4),
        PredictionHead(hidden_dims=(8,), output_dim=4),
        crop,
    )
    x = _images(rng)
    model.build_for(x)
    outputs = model.forward_pass(x, training=True)
    p = [_np(t) for t in outputs["predictions"]]
    t = [_np(t) for t in outputs["targets"]]
    assert len(p) == 4 and len(t) == 2  # local views have no target
    # Each target i against each other view's prediction j.
    pairs = [(i, j) for i in range(2) for j in range(4) if j != i]
    expected = np.mean([byol_rows(p[j], t[i]).mean() for i, j in pairs])
    got = float(_np(model.compute_contrastive_loss(outputs)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("cls", [SimCLR, BYOL])
def test_fit_and_save_with_multi_crop(rng, tmp_path, cls):
    crop = MultiCrop(16, 8, num_global=2, num_local=2, blur=False, seed=4)
    model = cls(_encoder(), augmenter=crop)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(_images(rng, n=16), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.augmenter, MultiCrop)
    assert loaded.augmenter.get_config() == crop.get_config()
    x = _images(rng, n=4)
    np.testing.assert_allclose(_np(loaded.encoder(x)), _np(model.encoder(x)), atol=1e-6)


def test_two_view_methods_refuse_more_views():
    crop = MultiCrop(16, 8, num_local=2, blur=False)
    model = MoCo(_encoder(), augmenter=crop)
    with pytest.raises(ValueError, match="augmenter"):
        model.build_for(np.zeros((4, 16, 16, 3), "uint8"))


def test_deep_infomax_refuses_several_views():
    from keras_contrastive.models import DeepInfoMax

    encoder = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, name="local"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    model = DeepInfoMax(encoder, "local", augmenter=MultiCrop(16, 8, blur=False))
    with pytest.raises(ValueError, match="augmenter"):
        model.build_for(np.zeros((4, 16, 16, 3), "uint8"))
