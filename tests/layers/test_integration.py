"""The augmentation layers in their habitats: tf.data on every backend, compiled
functions, model.fit, .keras files, mixed precision, MultiView."""

import json

import keras
import numpy as np
import pytest

from keras_contrastive.layers import (
    MultiView,
    RandomApply,
    RandomColorDistortion,
    RandomResizedCrop,
    SimCLRAugmenter,
)
from tests.layers._util import (
    OUTPUT_SIZE,
    distinct_samples,
    image_batch,
    layer_factories,
    to_numpy,
)

tf = pytest.importorskip("tensorflow")

FACTORIES = {
    **layer_factories(),
    "apply_keras": lambda **kw: RandomApply(keras.layers.RandomGrayscale(1.0), **kw),
}


def images(rng, n=8, size=16):
    return image_batch(rng, n, size)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_inside_tf_data(rng, name):
    x = images(rng, 16)
    layer = FACTORIES[name](seed=1)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(8).map(layer)
    batches = [np.asarray(batch) for batch in dataset]
    assert len(batches) == 2
    size = OUTPUT_SIZE.get(name, 16)
    for batch in batches:
        assert batch.shape == (8, size, size, 3) and batch.dtype == np.float32
        assert batch.min() >= -1e-3 and batch.max() <= 255 + 1e-3
    assert distinct_samples(batches[0]) >= 2
    if not name.startswith("apply"):
        assert distinct_samples(batches[0]) == 8


def test_tf_data_per_image_then_batch_then_views(rng):
    x = images(rng)
    dataset = (
        tf.data.Dataset.from_tensor_slices(x)
        .map(RandomResizedCrop(10, 10, seed=0))  # rank-3 single images
        .batch(4)
        .map(MultiView(RandomColorDistortion(seed=0), num_views=3))
    )
    views = next(iter(dataset))
    assert isinstance(views, tuple) and len(views) == 3
    assert all(tuple(v.shape) == (4, 10, 10, 3) for v in views)
    assert not np.allclose(np.asarray(views[0]), np.asarray(views[1]))


def compiled_call(layer, x):
    """Calls `layer(x, training=True)` inside the backend's compiled function."""
    backend = keras.backend.backend()
    x = keras.ops.convert_to_tensor(x)
    if backend == "jax":
        import jax

        layer.build(x.shape)

        @jax.jit
        def step(non_trainable, x):
            return layer.stateless_call([], non_trainable, x, training=True)

        state = [v.value for v in layer.non_trainable_variables]
        first, state = step(state, x)
        second, state = step(state, x)
        return first, second
    if backend == "tensorflow":
        step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
        return step(x), step(x)
    return layer(x, training=True), layer(x, training=True)


def test_inside_a_compiled_function(rng):
    x = images(rng, 8)
    # (model.fit below runs the whole SimCLR recipe compiled; a crop is enough
    # here to see per-sample draws and the seed state advancing.)
    first, second = compiled_call(RandomResizedCrop(12, 12, seed=0), x)
    first, second = to_numpy(first), to_numpy(second)
    assert first.shape == (8, 12, 12, 3)
    assert distinct_samples(first) == 8
    assert not np.allclose(first, second)  # the seed state advances between calls
    assert first.min() >= -1e-3 and first.max() <= 255 + 1e-3


def test_fit_with_the_augmenter_inside_the_model(rng):
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            SimCLRAugmenter(8, seed=0),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    x = images(rng, 16).astype("float32") / 255.0
    history = model.fit(x, np.zeros((16, 1)), batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x, verbose=0).shape == (16, 1)


def test_saved_model_round_trip(tmp_path, rng):
    # Every layer in one model: one save and load, then the same inference.
    augmenters = [FACTORIES[name](seed=1) for name in FACTORIES]
    model = keras.Sequential([keras.Input((16, 16, 3)), *augmenters])
    x = images(rng).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    expected = model.predict(x, verbose=0)
    assert expected.shape == (8, 12, 12, 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-4)
    for original, restored in zip(augmenters, loaded.layers):
        assert type(restored) is type(original)
        assert as_json(restored.get_config()) == as_json(original.get_config())


def as_json(config):
    """Configs compare equal up to tuples vs lists (what a .keras file stores)."""
    return json.loads(json.dumps(config))


@pytest.mark.parametrize("name", list(FACTORIES))
def test_config_round_trip_keeps_the_random_stream(rng, name):
    original = FACTORIES[name](seed=5)
    clone = original.__class__.from_config(original.get_config())
    assert clone.get_config() == original.get_config()
    x = images(rng)
    np.testing.assert_allclose(to_numpy(clone(x)), to_numpy(original(x)), atol=1e-4)


def test_multi_view_draws_fresh_views_and_serialises(tmp_path, rng):
    multi = MultiView(SimCLRAugmenter(12, seed=0), num_views=2)
    x = images(rng)
    a, b = (to_numpy(v) for v in multi(x))
    c, _ = (to_numpy(v) for v in multi(x))
    assert a.shape == b.shape == (8, 12, 12, 3)
    assert not np.allclose(a, b) and not np.allclose(a, c)

    inputs = keras.Input((16, 16, 3))
    views = MultiView(SimCLRAugmenter(12, seed=0), num_views=3)(inputs)
    model = keras.Model(inputs, list(views))
    path = tmp_path / "views.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    outputs = loaded.predict(x.astype("float32"), verbose=0)
    assert len(outputs) == 3 and outputs[0].shape == (8, 12, 12, 3)
    config = multi.get_config()
    assert MultiView.from_config(config).get_config() == config


def test_multi_view_bad_arguments():
    with pytest.raises(ValueError, match="`num_views` must be an int >= 1"):
        MultiView(SimCLRAugmenter(8), num_views=0)
    with pytest.raises(TypeError, match="`augmenter` must be a Keras layer"):
        MultiView(lambda x: x)


def test_mixed_bfloat16_augmenter(rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    out = SimCLRAugmenter(12, seed=0)(images(rng))
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    values = to_numpy(keras.ops.cast(out, "float32"))
    assert values.min() >= 0.0 and values.max() <= 256.0  # 255 rounds up in bf16


def test_simclr_augmenter_presets_are_the_papers_recipes():
    # Chen et al. 2020: CIFAR-10 colour strength 0.5 without blur (appendix B.9),
    # ImageNet 1.0 with blur (appendix A); the rest are the common defaults.
    from keras_contrastive.layers import SimCLRAugmenter

    cifar = SimCLRAugmenter.cifar10()
    assert (cifar.image_size, cifar.color_strength, cifar.blur) == (
        (32, 32),
        0.5,
        False,
    )
    imagenet = SimCLRAugmenter.imagenet(seed=3, name="a")
    explicit = SimCLRAugmenter(224, color_strength=1.0, blur=True, seed=3, name="a")
    assert imagenet.get_config() == explicit.get_config()
    # Any argument can still be overridden.
    assert SimCLRAugmenter.cifar10(16, blur=True).blur is True
