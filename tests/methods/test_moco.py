"""MoCo: InfoNCE against keys and queue, momentum update, queue contents, options."""

import keras
import numpy as np
import pytest

from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
from keras_contrastive.models import MoCHi, MoCo
from keras_contrastive.models.batch_norm_groups import encode_in_groups
from tests.methods.helpers import (
    BatchSizeSpy,
    linear_encoder,
    linear_head,
    numpy_info_nce,
    numpy_linear,
    random_images,
    tiny_encoder,
    to_numpy,
    unit,
)


def linear_moco(**kwargs):
    """MoCo on 2x2x1 images with linear networks and identical (identity) views."""
    kwargs.setdefault("queue_size", 10)
    kwargs.setdefault("temperature", 0.5)
    return MoCo(
        linear_encoder(),
        projection_head=linear_head(),
        augmenter=keras.layers.Identity(),
        **kwargs,
    )


def numpy_projection(model, x, key=False):
    encoder = model.key_encoder if key else model.encoder
    head = model.key_head if key else model.projection_head
    return numpy_linear(x, encoder.layers[-1], head.blocks[-1])


def test_loss_is_info_nce_against_keys_and_queue(rng):
    x = rng.normal(size=(6, 2, 2, 1)).astype("float32")
    model = linear_moco()
    model.compile(optimizer="sgd")
    logs = model.evaluate(x, batch_size=6, verbose=0, return_dict=True)
    q = numpy_projection(model, x)
    k = numpy_projection(model, x, key=True)
    np.testing.assert_allclose(q, k, rtol=1e-5)  # the copy starts equal
    loss, accuracy = numpy_info_nce(q, k, to_numpy(model.queue.keys), 0.5)
    np.testing.assert_allclose(logs["loss"], loss, rtol=1e-4)
    assert logs["contrastive_accuracy"] == pytest.approx(accuracy)


def test_symmetric_loss_averages_both_directions(rng):
    x = rng.normal(size=(6, 2, 2, 1)).astype("float32")
    model = linear_moco(symmetric=True)
    model.compile(optimizer="sgd")
    model.build(x.shape)
    # Make the key networks differ from the query ones, so both directions differ.
    for variable in model.key_encoder.weights + model.key_head.weights:
        variable.assign(rng.normal(size=variable.shape))
    model.momentum_state.synced.assign(1)
    logs = model.evaluate(x, batch_size=6, verbose=0, return_dict=True)
    q, k = numpy_projection(model, x), numpy_projection(model, x, key=True)
    queue = to_numpy(model.queue.keys)
    # Identity views: query_b = q and keys_a = k, so both directions coincide.
    expected = numpy_info_nce(q, k, queue, 0.5)[0]
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)


def test_momentum_update_and_queue_after_fit(rng):
    """In the compiled step, with a frozen query side (learning rate 0):

    - after k steps theta_key = m^k theta_key0 + (1 - m^k) theta_query;
    - 14 images in batches of 4, 4, 4, 2 through a queue of 10 for two epochs: the
      queue holds the last 10 keys in FIFO order.
    """
    x = rng.normal(size=(14, 2, 2, 1)).astype("float32")
    model = linear_moco(queue_size=10, momentum=0.8)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    model.build(x.shape)
    initial = to_numpy(model.queue.keys)
    # drop_last=False: the partial batch of 2 is a step and enqueues its keys.
    model.fit(x, batch_size=4, epochs=2, shuffle=False, verbose=0, drop_last=False)
    keys = unit(numpy_projection(model, x, key=True))  # lr 0: keys never change
    seen = np.concatenate([keys, keys])  # 28 keys, in order
    ring, pointer = initial.astype(np.float64).copy(), 0
    for key in seen:
        ring[pointer] = key
        pointer = (pointer + 1) % 10
    np.testing.assert_allclose(to_numpy(model.queue.keys), ring, rtol=1e-5, atol=1e-6)
    assert int(to_numpy(model.queue.pointer)) == 28 % 10
    order = (pointer + np.arange(10)) % 10
    np.testing.assert_allclose(to_numpy(model.queue.keys)[order], seen[-10:], atol=1e-6)

    key_vars = model.key_encoder.weights + model.key_head.weights
    query_vars = model.encoder.weights + model.projection_head.weights
    starts = [rng.normal(size=v.shape) for v in key_vars]
    for variable, value in zip(key_vars, starts):
        variable.assign(value)
    model.fit(x[:8], batch_size=4, epochs=2, shuffle=False, verbose=0)  # k = 4
    for key, query, start in zip(key_vars, query_vars, starts):
        expected = 0.8**4 * start + (1 - 0.8**4) * to_numpy(query)
        np.testing.assert_allclose(to_numpy(key), expected, rtol=1e-5, atol=1e-6)
    assert int(to_numpy(model.momentum_state.step)) == 12


def test_a_skipped_float16_step_enqueues_nothing(rng):
    # A non-finite image makes that step's keys and gradients non-finite; the
    # LossScaleOptimizer skips the step and the queue must not take the keys.
    x = rng.normal(size=(8, 2, 2, 1)).astype("float32")
    x[0, 0, 0, 0] = np.inf
    model = linear_moco(queue_size=10)
    # Learning rate 0: the key encoder stays the query encoder, keys are exact.
    model.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.0))
    )
    model.build(x.shape)
    initial = to_numpy(model.queue.keys)
    model.fit(x, batch_size=4, epochs=1, shuffle=False, verbose=0)
    queue = to_numpy(model.queue.keys)
    assert np.isfinite(queue).all()
    # Only the second batch's 4 keys went in, at the front.
    keys = unit(numpy_projection(model, x[4:], key=True))
    np.testing.assert_allclose(queue[:4], keys, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(queue[4:], initial[4:])
    assert int(to_numpy(model.queue.pointer)) == 4


def test_grouped_batch_norm_is_per_chunk_and_unshuffled(rng):
    x = rng.normal(size=(8, 3)).astype("float32")
    norm = keras.layers.BatchNormalization(center=False, scale=False, epsilon=1e-3)
    permutation = np.array([3, 0, 6, 1, 7, 2, 5, 4])
    out = to_numpy(
        encode_in_groups(norm, x, groups=2, training=True, permutation=permutation)
    )
    shuffled = x[permutation].astype(np.float64)
    expected = np.empty_like(shuffled)
    for rows in (slice(0, 4), slice(4, 8)):
        chunk = shuffled[rows]
        expected[rows] = (chunk - chunk.mean(0)) / np.sqrt(chunk.var(0) + 1e-3)
    unshuffled = np.empty_like(expected)
    unshuffled[permutation] = expected
    np.testing.assert_allclose(out, unshuffled, rtol=1e-4, atol=1e-5)


def test_defaults_are_sized_to_the_data(rng):
    model = MoCo(tiny_encoder(filters=4), queue_size=32)
    model.build((None, 8, 8, 3))
    assert isinstance(model.augmenter, SimCLRAugmenter)
    assert isinstance(model.projection_head, ProjectionHead)
    assert model.projection_head.hidden_dims == (4,)
    assert tuple(model.queue.keys.shape) == (32, 128)
    assert model.momentum == 0.999 and model.temperature == 0.2


def test_options_train_on_images(rng):
    """Split batch norm, symmetric loss and MoCHi in the compiled step."""
    x = random_images(rng, n=16)
    BatchSizeSpy.seen = []
    model = MoCo(
        tiny_encoder(spy=True),
        projection_head=ProjectionHead(hidden_dims=(8,), output_dim=4),
        augmenter=keras.layers.RandomFlip(),
        queue_size=32,
        momentum=0.9,
        symmetric=True,
        batch_norm_groups=2,
        hard_negative_mixing=MoCHi(num_hard=8, num_synthetic=4, num_query_mixes=2),
    )
    model.compile(optimizer="adam")
    history = model.fit(x, batch_size=8, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert 4 in BatchSizeSpy.seen  # batches of 8 encoded in two groups of 4
    assert model.predict(x, verbose=0).shape == (16, 4)
    config = model.get_config()
    restored = MoCo.from_config(config)
    assert (
        restored.get_config()["hard_negative_mixing"]
        == (config["hard_negative_mixing"])
    )
    assert restored.symmetric and restored.batch_norm_groups == 2


def test_bad_arguments_raise_clear_errors(rng):
    with pytest.raises(ValueError, match="queue_size"):
        MoCo(tiny_encoder(), queue_size=0)
    with pytest.raises(ValueError, match="temperature"):
        MoCo(tiny_encoder(), temperature=0.0)
    with pytest.raises(ValueError, match="momentum"):
        MoCo(tiny_encoder(), momentum=1.5)
    with pytest.raises(TypeError, match="MoCHi"):
        MoCo(tiny_encoder(), hard_negative_mixing={"num_hard": 4})
    with pytest.raises(ValueError, match="num_hard"):
        MoCo(tiny_encoder(), queue_size=8, hard_negative_mixing=MoCHi(num_hard=16))
    model = MoCo(tiny_encoder(), queue_size=8, batch_norm_groups=4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="at least 8"):
        model.fit(random_images(rng, n=16), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=r"shape \(batch, height, width, channels\)"):
        MoCo(tiny_encoder(), queue_size=8).fit(
            rng.integers(0, 255, (8, 8, 8), dtype=np.uint8), verbose=0
        )


def test_loading_a_queue_of_another_size_raises(tmp_path, rng):
    x = rng.normal(size=(4, 2, 2, 1)).astype("float32")
    saved = linear_moco(queue_size=10)
    saved.build(x.shape)
    path = str(tmp_path / "moco.weights.h5")
    saved.save_weights(path)
    other = linear_moco(queue_size=12)
    other.build(x.shape)
    with pytest.raises(
        ValueError, match=r"FeatureQueue 'queue' has shape \(10, 3\).*\(12, 3\)"
    ):
        other.load_weights(path)
