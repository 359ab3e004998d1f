"""The memory bank model: loss, negatives, proximal update, refresh, id errors."""

import math

import keras
import numpy as np
import pytest

from keras_contrastive.callbacks.memory_bank_refresh import MemoryBankRefresh
from keras_contrastive.models import MemoryBank, MemoryBankModel
from tests.methods.helpers import (
    linear_encoder,
    linear_head,
    numpy_linear,
    random_images,
    tiny_encoder,
    to_numpy,
    unit,
)


def linear_bank_model(num_examples=6, **kwargs):
    kwargs.setdefault("num_negatives", 32)
    kwargs.setdefault("temperature", 0.5)
    return MemoryBankModel(
        linear_encoder(),
        num_examples,
        projection_head=linear_head(3),
        augmenter=keras.layers.Identity(),
        **kwargs,
    )


def numpy_features(model, x):
    return unit(
        numpy_linear(x, model.encoder.layers[-1], model.projection_head.blocks[-1])
    )


def numpy_bank_loss(f, bank, ids, negative_ids, tau, kind, n):
    """Per-anchor losses with every draw equal to the anchor's own id left out."""
    pos = np.sum(f * bank[ids], axis=1) / tau
    neg = f @ bank[negative_ids].T / tau
    valid = negative_ids[None, :] != ids[:, None]
    if kind == "info_nce":
        losses = []
        for i in range(len(f)):
            logits = np.concatenate([[pos[i]], neg[i][valid[i]]])
            losses.append(np.log(np.sum(np.exp(logits))) - pos[i])
        return float(np.mean(losses))
    z = n * np.mean(np.exp(neg[valid]))
    noise = len(negative_ids) / n
    p_pos, p_neg = np.exp(pos) / z, np.exp(neg) / z
    losses = -np.log(p_pos / (p_pos + noise))
    losses -= np.sum(np.where(valid, np.log(noise / (p_neg + noise)), 0.0), axis=1)
    return float(np.mean(losses))


@pytest.mark.parametrize("kind", ["info_nce", "nce"])
def test_loss_and_negatives_never_the_anchor(kind, rng):
    """4 bank entries and 32 draws: every anchor's own entry is drawn and left out."""
    x = rng.normal(size=(4, 2, 2, 1)).astype("float32")
    ids = np.array([2, 0, 3, 1])
    model = linear_bank_model(num_examples=4, loss=kind)
    model.build(((None,), x.shape))
    outputs = model.forward_pass((ids, x), training=False)
    negative_ids = to_numpy(outputs["negative_ids"])
    mask = to_numpy(outputs["negative_mask"])
    assert negative_ids.shape == (32,) and set(negative_ids) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(mask, negative_ids[None, :] != ids[:, None])
    assert np.all(~mask.any(axis=0) | (negative_ids != ids[:, None]).any(axis=0))
    for i in range(4):  # the anchor's own id was drawn, and masked
        assert (negative_ids == ids[i]).any() and not mask[i][
            negative_ids == ids[i]
        ].any()
    bank = to_numpy(model.memory_bank.entries).astype(np.float64)
    f = numpy_features(model, x)
    expected = numpy_bank_loss(f, bank, ids, negative_ids, 0.5, kind, 4)
    loss = float(to_numpy(model.compute_contrastive_loss(outputs)))
    np.testing.assert_allclose(loss, expected, rtol=1e-4)


def test_proximal_update_of_the_batch_entries(rng):
    x = rng.normal(size=(8, 2, 2, 1)).astype("float32")
    ids = np.array([5, 1, 7, 3, 0, 2, 6, 4])
    model = linear_bank_model(num_examples=10, bank_momentum=0.25)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
    model.build(((None,), x.shape))
    bank = to_numpy(model.memory_bank.entries).astype(np.float64)
    model.fit((ids, x), batch_size=4, epochs=1, shuffle=False, verbose=0)
    f = numpy_features(model, x)  # lr 0: the features never change
    expected = bank.copy()
    expected[ids] = unit(0.25 * bank[ids] + 0.75 * f)
    np.testing.assert_allclose(
        to_numpy(model.memory_bank.entries), expected, rtol=1e-5, atol=1e-6
    )


def test_refresh_writes_every_index(rng):
    x = random_images(rng, n=12)
    ids = rng.permutation(12)
    model = MemoryBankModel(
        tiny_encoder(), 12, augmenter=keras.layers.Identity(), num_negatives=8
    )
    model.compile(optimizer="adam")
    refresh = MemoryBankRefresh((ids, x), every=2, batch_size=5, verbose=0)
    model.fit((ids, x), batch_size=6, epochs=3, verbose=0, callbacks=[refresh])
    assert refresh.refreshed_epochs == [1]
    written = model.refresh_memory_bank(
        {"ids": ids, "images": x}, batch_size=5, verbose=0
    )
    assert sorted(written.tolist()) == list(range(12))
    features = model.encoder.predict(x, verbose=0)
    projected = to_numpy(model.projection_head(features, training=False))
    expected = np.empty((12, projected.shape[1]))
    expected[ids] = unit(projected)
    np.testing.assert_allclose(
        to_numpy(model.memory_bank.entries), expected, rtol=1e-4, atol=1e-5
    )


def test_out_of_range_ids_raise(rng):
    import tensorflow as tf

    x = rng.normal(size=(8, 2, 2, 1)).astype("float32")
    model = linear_bank_model(num_examples=8)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"\[0, 7\].*out-of-range id"):
        model.fit((np.arange(8) + 1, x), batch_size=4, verbose=0)
    bad_first = tf.data.Dataset.from_tensor_slices(
        {"ids": np.arange(8) - 1, "images": x}
    )
    with pytest.raises(ValueError, match="first batch"):
        model.fit(bad_first.batch(4), verbose=0)
    with pytest.raises(ValueError, match=r"\(x, y\)"):
        model.fit(
            tf.data.Dataset.from_tensor_slices((np.arange(8), x)).batch(4), verbose=0
        )

    def generator():  # cannot be inspected: caught by the step at the epoch end
        while True:
            yield ({"ids": np.array([0, 1, 9, 2]), "images": x[:4]},)

    with pytest.raises(ValueError, match="1 example id"):
        model.fit(generator(), steps_per_epoch=1, verbose=0)
    with pytest.raises(ValueError, match="out-of-range"):
        model.refresh_memory_bank((np.arange(8) + 4, x), verbose=0)


def test_inputs_and_arguments_are_checked(rng):
    x = rng.normal(size=(8, 2, 2, 1)).astype("float32")
    model = linear_bank_model(num_examples=8)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="example ids with the images"):
        model.fit(x, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="'ids' and 'images'"):
        model.fit({"id": np.arange(8), "image": x}, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="num_examples"):
        MemoryBankModel(linear_encoder(), 1)
    with pytest.raises(ValueError, match="loss"):
        MemoryBankModel(linear_encoder(), 8, loss="triplet")
    with pytest.raises(ValueError, match="bank_momentum"):
        MemoryBankModel(linear_encoder(), 8, bank_momentum=1.0)
    with pytest.raises(ValueError, match="every"):
        MemoryBankRefresh((np.arange(8), x), every=0)


def test_dict_inputs_train_and_predict(rng):
    x = rng.normal(size=(8, 2, 2, 1)).astype("float32")
    model = linear_bank_model(num_examples=8, loss="nce")
    model.compile(optimizer="adam")
    history = model.fit({"ids": np.arange(8), "images": x}, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x, verbose=0).shape == (8, 3)
    config = model.get_config()
    assert MemoryBankModel.from_config(config).get_config()["loss"] == "nce"
    assert math.isclose(config["temperature"], 0.5)


def test_loading_a_bank_of_another_shape_raises(tmp_path, rng):
    saved = linear_bank_model(num_examples=8)
    saved.build(((None,), (None, 2, 2, 1)))
    path = str(tmp_path / "bank.weights.h5")
    saved.save_weights(path)
    other = linear_bank_model(num_examples=9)
    other.build(((None,), (None, 2, 2, 1)))
    with pytest.raises(
        ValueError, match=r"MemoryBank 'memory_bank' has shape \(8, 3\).*\(9, 3\)"
    ):
        other.load_weights(path)
    with pytest.raises(ValueError, match="num_examples"):
        MemoryBank(0, 3)
