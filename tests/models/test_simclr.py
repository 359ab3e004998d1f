"""SimCLR: wiring against a NumPy NT-Xent, inputs, errors, saving, mixed precision."""

import os

import keras
import numpy as np
import pytest

from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import SimCLR


def small_encoder(size=16, channels=3):
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


def random_images(rng, n=16, size=16, channels=3):
    return rng.integers(0, 256, size=(n, size, size, channels), dtype=np.uint8)


def numpy_nt_xent(z_a, z_b, tau):
    z = np.concatenate([z_a, z_b]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z_a)
    losses = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        logits = np.array([z[i] @ z[k] / tau for k in range(2 * n) if k != i])
        positive = z[i] @ z[j] / tau
        losses.append(np.log(np.sum(np.exp(logits))) - positive)
    return np.mean(losses)


def test_defaults_and_fit_logs(rng):
    x = random_images(rng)
    model = SimCLR(small_encoder())
    model.compile(optimizer="adam")
    history = model.fit(x, batch_size=8, epochs=2, verbose=0)
    assert isinstance(model.augmenter, SimCLRAugmenter)
    assert isinstance(model.projection_head, ProjectionHead)
    for name in ("loss", "contrastive_accuracy", "embedding_std"):
        assert len(history.history[name]) == 2
        assert np.all(np.isfinite(history.history[name]))
    features = model.predict(x, verbose=0)
    assert features.shape == (16, 8)
    np.testing.assert_allclose(
        features, model.encoder.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )


def test_loss_is_nt_xent_of_the_projections(rng):
    """With identity views the evaluated loss is NT-Xent of head(encoder(x))."""
    x = random_images(rng, n=6)
    model = SimCLR(
        small_encoder(),
        projection_head=ProjectionHead(hidden_dims=(8,), output_dim=4),
        augmenter=keras.layers.Identity(),
        temperature=0.3,
    )
    model.compile(optimizer="sgd")
    logs = model.evaluate(x, batch_size=6, verbose=0, return_dict=True)
    z = model.projection_head(model.encoder(x.astype("float32"), training=False))
    z = keras.ops.convert_to_numpy(z)
    np.testing.assert_allclose(logs["loss"], numpy_nt_xent(z, z, 0.3), rtol=1e-4)
    # Identical views: every row finds its twin (accuracy 1) unless rows coincide.
    assert logs["contrastive_accuracy"] == pytest.approx(1.0)


def test_tf_data_and_pydataset_inputs(rng):
    import tensorflow as tf

    x = random_images(rng)
    model = SimCLR(small_encoder())
    model.compile(optimizer="adam")
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(8)
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    class Images(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return x[index * 8 : (index + 1) * 8]

    history = model.fit(Images(), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    logs = model.evaluate(dataset, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])


def test_save_and_load_round_trip(rng, tmp_path):
    x = random_images(rng)
    model = SimCLR(small_encoder(), temperature=0.2)
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "simclr.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SimCLR)
    assert loaded.temperature == 0.2
    np.testing.assert_allclose(
        loaded.encoder.predict(x, verbose=0),
        model.encoder.predict(x, verbose=0),
        rtol=1e-5,
        atol=1e-5,
    )
    for saved, restored in zip(
        model.projection_head.weights, loaded.projection_head.weights
    ):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored)
        )
    history = loaded.fit(x, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_mixed_bfloat16_trains(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = random_images(rng)
    model = SimCLR(small_encoder())
    model.compile(optimizer="adam")
    history = model.fit(x, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_bad_inputs_raise_clear_errors(rng):
    model = SimCLR(small_encoder())
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"shape \(batch, height, width, channels\)"):
        model.fit(rng.integers(0, 255, (8, 16, 16), dtype=np.uint8), verbose=0)
    gray = SimCLR(small_encoder(channels=1))
    gray.compile(optimizer="adam")
    with pytest.raises(ValueError, match="3 channels"):
        gray.fit(random_images(rng, channels=1), verbose=0)
    with pytest.raises(ValueError, match="at least 2"):
        model.fit(random_images(rng, n=1), verbose=0)
    flat = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3)])
    bad = SimCLR(flat, projection_head=ProjectionHead(hidden_dims=(8,), output_dim=4))
    bad.compile(optimizer="adam")
    with pytest.raises(ValueError, match="2-D"):
        bad.fit(random_images(rng), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="temperature"):
        SimCLR(small_encoder(), temperature=0.0)
    with pytest.raises(TypeError, match="encoder"):
        SimCLR("resnet")
