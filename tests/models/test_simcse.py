"""SimCSE (Gao et al. 2021): the loss against NumPy, dropout views, training end to
end on a tiny random BERT, text augmentation of the second view, gradient caching
(dropout replayed) and bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.models import GradientCache, SimCSE
from keras_contrastive.text import RandomWordDropout, TokenizedTexts
from tests.backend_grad import assert_gradients_close
from tests.text._tiny import tiny_encoder

SENTENCES = [
    f"{subject} {action}"
    for subject in ("the man", "a woman", "the dog", "a cat", "the quick brown fox")
    for action in ("is playing guitar", "is eating", "sat on the mat", "jumps")
]  # 20 distinct sentences


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_loss_is_info_nce_of_the_two_dropout_views():
    model = SimCSE(tiny_encoder(dropout=0.1), temperature=0.05)
    tokens = model.encoder.tokenize(SENTENCES[:8], 16)
    model.build_for(tokens)
    outputs = model.forward_pass(tokens, training=True)
    z_a, z_b = np_(outputs["z_a"]), np_(outputs["z_b"])
    # Two calls, two dropout masks: the views differ, yet stay close.
    assert not np.allclose(z_a, z_b)
    assert np.all(np.sum(unit(z_a) * unit(z_b), axis=1) > 0.5)
    logits = unit(z_a.astype("float64")) @ unit(z_b.astype("float64")).T / 0.05
    expected = -np.mean(np.diag(log_softmax(logits)))
    loss = float(np_(model.compute_contrastive_loss(outputs)))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # In inference mode there is no dropout: both views are the same embedding.
    same = model.forward_pass(tokens, training=False)
    np.testing.assert_allclose(np_(same["z_a"]), np_(same["z_b"]), atol=1e-6)


def test_trains_on_a_list_of_strings_and_the_loss_falls():
    model = SimCSE(tiny_encoder(dropout=0.1))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(SENTENCES, batch_size=10, epochs=6, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]
    assert history["contrastive_accuracy"][-1] > 0.5
    embeddings = model.encode(SENTENCES[:3])
    assert embeddings.shape == (3, 16)
    np.testing.assert_allclose(
        model.predict(SENTENCES[:3], verbose=0), embeddings, atol=1e-6
    )


def test_augmenter_edits_the_second_view_on_the_host_and_in_tf_data():
    import tensorflow as tf

    model = SimCSE(tiny_encoder(dropout=0.1), augmenter=RandomWordDropout(0.3, seed=1))
    data, _, _ = model._texts_dataset(SENTENCES, None, 10, False, "x")
    batch = data[0] if isinstance(data, keras.utils.PyDataset) else next(iter(data))
    batch = keras.tree.map_structure(np.asarray, batch)
    assert set(batch) == {"anchor", "positive"}
    dropped = batch["positive"]["padding_mask"].sum(1) < batch["anchor"][
        "padding_mask"
    ].sum(1)
    assert dropped.any()  # some words were deleted from the second view
    model.compile(optimizer="adam", run_eagerly=True)
    model.fit(SENTENCES, batch_size=10, epochs=1, verbose=0)
    strings = tf.data.Dataset.from_tensor_slices(SENTENCES).batch(10)
    history = model.fit(strings, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    # An explicit second view: a dict of two token batches.
    second = [f"{sentence}!" for sentence in SENTENCES]
    pairs = TokenizedTexts(
        {"anchor": SENTENCES, "positive": second}, model.encoder, batch_size=10
    )
    assert np.isfinite(model.evaluate(pairs, verbose=0, return_dict=True)["loss"])


class GradientProbe(keras.optimizers.Optimizer):
    """Sets every trainable variable to its gradient: one step reads them out."""

    def __init__(self):
        super().__init__(learning_rate=1.0)

    def update_step(self, gradient, variable, learning_rate):
        if hasattr(gradient, "indices"):
            # TensorFlow's embedding gradients are IndexedSlices, which `assign`
            # would scatter (a repeated row keeps one term): densify (summed).
            import tensorflow as tf

            gradient = tf.convert_to_tensor(gradient)
        self.assign(variable, gradient)


class ChunkedSimCSE(SimCSE):
    """Reference: a forward pass over row chunks of 4 one after the other, i.e.
    exactly the dropout draws gradient caching makes and must replay."""

    def forward_pass(self, x, training=False):
        rows = x["token_ids"].shape[0]
        parts = [
            super(ChunkedSimCSE, self).forward_pass(
                {k: t[i : i + 4] for k, t in x.items()}, training
            )
            for i in range(0, rows, 4)
        ]
        return {k: ops.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def test_gradient_cache_replays_the_dropout_masks():
    tokens = tiny_encoder().tokenize(SENTENCES[:12], 16)
    results = []
    for model in (
        ChunkedSimCSE(tiny_encoder(dropout=0.2)),
        SimCSE(tiny_encoder(dropout=0.2), gradient_cache=GradientCache(4)),
    ):
        model.build_for(tokens)
        if results:  # the same weights and seed-generator states
            for variable, value in zip(model.variables, results[0][2]):
                variable.assign(value)
        start = [np_(v) for v in model.variables]
        model.compile(optimizer=GradientProbe(), run_eagerly=True)
        logs = model.train_on_batch(tokens, return_dict=True)
        results.append(
            (logs["loss"], [np_(v) for v in model.trainable_variables], start)
        )
    (loss, grads, _), (cached_loss, cached_grads, _) = results
    np.testing.assert_allclose(cached_loss, loss, rtol=1e-5)
    assert_gradients_close(grads, cached_grads)


def test_keras_round_trip(tmp_path):
    model = SimCSE(
        tiny_encoder(dropout=0.1), temperature=0.1, augmenter=RandomWordDropout(0.1)
    )
    model.build_for(model.encoder.tokenize(SENTENCES[:2], 16))
    path = str(tmp_path / "simcse.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SimCSE) and loaded.temperature == 0.1
    assert isinstance(loaded.augmenter, RandomWordDropout)
    np.testing.assert_allclose(
        loaded.encode(SENTENCES[:4]), model.encode(SENTENCES[:4]), atol=1e-6
    )


def test_bad_input_gets_clear_errors():
    model = SimCSE(tiny_encoder(dropout=0.1))
    model.compile(optimizer="adam")
    fit = {"batch_size": 4, "epochs": 1, "verbose": 0}
    with pytest.raises(ValueError, match="`x` must be a non-empty batch of strings"):
        model.fit([], **fit)
    with pytest.raises(ValueError, match=r"`x\[1\]` must be a non-empty text"):
        model.fit(["a man", "", "a dog", "a cat"], **fit)
    with pytest.raises(TypeError, match=r"`x\[2\]` must be a string"):
        model.fit(["a man", "a dog", None, "a cat"], **fit)
    with pytest.raises(TypeError, match="`x` must be a batch of texts"):
        model.fit(np.arange(8.0), **fit)
    with pytest.raises(ValueError, match=r"dict with the keys \('anchor', 'pos"):
        model.fit({"first": SENTENCES, "second": SENTENCES}, **fit)
    with pytest.raises(ValueError, match="`batch_size` must be at least 2"):
        model.fit(SENTENCES, batch_size=1, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`temperature` must be a positive number"):
        SimCSE(tiny_encoder(), temperature=-1)
    with pytest.raises(TypeError, match="`augmenter` must be callable"):
        SimCSE(tiny_encoder(), augmenter="word dropout")
    with pytest.raises(TypeError, match="`encoder` must be a Keras layer"):
        SimCSE(None)
    assert not model.built
