"""SBERT (Reimers & Gurevych 2019): each objective against NumPy, training end to
end on a tiny random BERT, every input kind, gradient caching, and bad input.

The losses are checked on fixed embeddings: `TableEncoder` maps the first token
id of each row to a row of a fixed table, so `forward_pass` and the loss of the
model run on embeddings whose NumPy reference is exact.
"""

import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_contrastive.datasets import load_stsb
from keras_contrastive.models import SBERT, GradientCache
from keras_contrastive.models.sbert import bucket_length, ranking_accuracy
from keras_contrastive.text import TokenizedTexts
from tests.backend_grad import assert_gradients_close
from tests.conftest import BACKEND, SHARED_DATA
from tests.text._tiny import tiny_encoder

DIM = 6


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


@keras.saving.register_keras_serializable(package="tests_sbert")
class TableEncoder(keras.layers.Layer):
    """Token dicts -> row `token_ids[:, 0]` of a trainable table (N, DIM)."""

    def __init__(self, rows=16, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.seed = rows, seed
        values = np.random.default_rng(seed).normal(size=(rows, DIM))
        self.table = self.add_weight(
            shape=(rows, DIM),
            initializer=keras.initializers.Constant(values.astype("float32")),
        )

    def call(self, inputs, training=None):
        return ops.take(self.table, ops.cast(inputs["token_ids"][:, 0], "int32"), 0)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "seed": self.seed}


def ids(rows):
    rows = np.asarray(rows, "int32")[:, None]
    return {"token_ids": rows, "padding_mask": np.ones_like(rows)}


def table(model):
    return np_(model.encoder.table).astype("float64")


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_of(model, x):
    model.build_for(x[0] if model.uses_labels else x)
    outputs = model.forward_pass(x, training=False)
    return float(np_(model.compute_contrastive_loss(outputs)))


A, B, C = [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]


# ----------------------------------------------------------------- the objectives


def test_classification_loss_is_softmax_of_u_v_and_their_difference():
    model = SBERT(TableEncoder(), objective="classification", num_labels=3)
    labels = np.array([0, 2, 1, 2])
    loss = loss_of(model, ((ids(A), ids(B)), labels))
    t = table(model)
    u, v = t[A], t[B]
    kernel, bias = (np_(w).astype("float64") for w in model.classifier.weights)
    logits = np.concatenate([u, v, np.abs(u - v)], axis=1) @ kernel + bias
    expected = -log_softmax(logits)[np.arange(4), labels].mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert kernel.shape == (3 * DIM, 3)


def test_regression_loss_is_mse_of_cosine_and_scaled_scores():
    scores = np.array([5.0, 0.0, 2.5, 4.0])
    model = SBERT(TableEncoder(), objective="regression", score_range=(0, 5))
    loss = loss_of(model, ((ids(A), ids(B)), scores))
    t = table(model)
    cosine = np.sum(unit(t[A]) * unit(t[B]), axis=1)
    np.testing.assert_allclose(loss, np.mean((cosine - scores / 5) ** 2), rtol=1e-5)
    # Labels already in [-1, 1] are taken as they are.
    plain = SBERT(TableEncoder(), objective="regression")
    loss = loss_of(plain, ((ids(A), ids(B)), scores / 5))
    np.testing.assert_allclose(loss, np.mean((cosine - scores / 5) ** 2), rtol=1e-5)


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_triplet_loss_is_the_margin_on_distances(distance):
    model = SBERT(
        TableEncoder(), objective="triplet", margin=1.0, triplet_distance=distance
    )
    loss = loss_of(model, (ids(A), ids(B), ids(C)))
    t = table(model)
    a, p, n = t[A], t[B], t[C]
    if distance == "euclidean":  # the paper's: ||a - p|| - ||a - n|| + 1
        d_ap, d_an = np.linalg.norm(a - p, axis=1), np.linalg.norm(a - n, axis=1)
    elif distance == "squared_euclidean":
        d_ap, d_an = np.sum((a - p) ** 2, 1), np.sum((a - n) ** 2, 1)
    else:
        d_ap = 1 - np.sum(unit(a) * unit(p), 1)
        d_an = 1 - np.sum(unit(a) * unit(n), 1)
    expected = np.maximum(d_ap - d_an + 1.0, 0).mean()
    assert expected > 0
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("negatives", [False, True])
def test_multiple_negatives_loss_is_in_batch_info_nce(negatives):
    model = SBERT(TableEncoder(), objective="multiple_negatives", temperature=0.05)
    x = (ids(A), ids(B), ids(C)) if negatives else (ids(A), ids(B))
    loss = loss_of(model, x)
    t = table(model)
    candidates = unit(np.concatenate([t[B], t[C]] if negatives else [t[B]]))
    logits = unit(t[A]) @ candidates.T * 20.0  # scale 20 = 1 / 0.05
    expected = -log_softmax(logits)[np.arange(4), np.arange(4)].mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_dict_columns_equal_tuple_columns():
    model = SBERT(TableEncoder(), objective="multiple_negatives")
    as_tuple = loss_of(model, (ids(A), ids(B), ids(C)))
    as_dict = loss_of(model, {"negative": ids(C), "anchor": ids(A), "positive": ids(B)})
    assert as_dict == pytest.approx(as_tuple, rel=1e-6)
    named = SBERT(TableEncoder(), objective="regression", columns=("q", "d"))
    value = loss_of(named, ({"d": ids(B), "q": ids(A)}, np.ones(4)))
    t = table(named)
    expected = np.mean((np.sum(unit(t[A]) * unit(t[B]), 1) - 1) ** 2)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_stats_per_objective():
    # Regression: the pairwise ranking accuracy, against a direct count.
    rng = np.random.default_rng(0)
    predicted, gold = rng.normal(size=12), rng.integers(0, 4, 12).astype(float)
    agree = total = 0
    for i in range(12):
        for j in range(12):
            if gold[i] > gold[j]:
                total += 1
                agree += (predicted[i] > predicted[j]) + 0.5 * (
                    predicted[i] == predicted[j]
                )
    value = float(np_(ranking_accuracy(predicted, gold)))
    assert value == pytest.approx(agree / total, rel=1e-6)
    assert float(np_(ranking_accuracy(predicted, np.ones(12)))) == 0.5
    # Multiple negatives: top-1 retrieval of the own positive.
    model = SBERT(TableEncoder(), objective="multiple_negatives")
    x = (ids(A), ids(A))  # each anchor is its own positive
    model.build_for(x)
    stats = model.compute_contrastive_stats(model.forward_pass(x))
    assert float(np_(stats["contrastive_accuracy"])) == 1.0
    assert 0 < float(np_(stats["embedding_std"])) < 1


# ------------------------------------------------------------- training on texts

SUBJECTS = ["the man", "a woman", "the dog", "a cat", "the quick brown fox", "hello"]
ACTIONS = ["is playing guitar", "is eating", "sat on the mat", "jumps over the mat"]


def texts(n=32, seed=0):
    """Anchors, paraphrases, unrelated negatives, 0-5 scores and 3-way labels."""
    rng = np.random.default_rng(seed)
    subject = rng.integers(0, len(SUBJECTS), n)
    action = rng.integers(0, len(ACTIONS), n)
    kind = rng.integers(0, 3, n)  # 0 paraphrase, 1 same subject, 2 unrelated
    anchors, others, negatives, scores = [], [], [], []
    for s, a, k in zip(subject, action, kind):
        anchors.append(f"{SUBJECTS[s]} {ACTIONS[a]}")
        shift = (s + 1 + k) % len(SUBJECTS)
        if k == 0:
            others.append(f"{SUBJECTS[s].replace('the', 'a')} {ACTIONS[a]}!")
        elif k == 1:
            others.append(f"{SUBJECTS[s]} {ACTIONS[(a + 1) % len(ACTIONS)]}")
        else:
            others.append(f"{SUBJECTS[shift]} {ACTIONS[(a + 2) % len(ACTIONS)]}")
        negatives.append(f"{SUBJECTS[shift]} {ACTIONS[(a + 1) % len(ACTIONS)]}")
        scores.append([5.0, 2.5, 0.0][k])
    return anchors, others, negatives, np.array(scores, "float32"), kind


def paraphrases(n=32, seed=0):
    anchors, _, negatives, _, _ = texts(n, seed)
    positives = [f"{t.replace('the', 'a')}!" for t in anchors]
    return anchors, positives, negatives


OBJECTIVE_DATA = {
    "classification": lambda: (texts()[:2], texts()[4], {"num_labels": 3}),
    "regression": lambda: (texts()[:2], texts()[3], {"score_range": (0, 5)}),
    "triplet": lambda: (paraphrases(), None, {}),
    "multiple_negatives": lambda: (paraphrases()[:2], None, {}),
}


@pytest.mark.parametrize("objective", sorted(OBJECTIVE_DATA))
def test_each_objective_trains_end_to_end(objective):
    x, y, kwargs = OBJECTIVE_DATA[objective]()
    model = SBERT(tiny_encoder(), objective=objective, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(x, y, batch_size=8, epochs=6, verbose=0).history
    losses = history["loss"]
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.7 * losses[0], losses
    for name in ("contrastive_accuracy", "embedding_std"):
        assert np.isfinite(history[name][-1])
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert {"loss", "contrastive_accuracy", "embedding_std"} <= set(logs)


@pytest.mark.parametrize("drop_last", [None, True])
def test_the_partial_last_batch_trains_unless_dropped(drop_last):
    # sentence-transformers keeps the last batch; drop_last=True leaves it out.
    x = paraphrases(n=20)[:2]
    model = SBERT(tiny_encoder(), objective="multiple_negatives")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, batch_size=8, epochs=2, verbose=0, drop_last=drop_last)
    steps = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    assert steps == (2 * 2 if drop_last else 2 * 3)


STSB = os.path.join(SHARED_DATA, "stsb")


def binned_stsb(count=48):
    """STS-B train pairs with 3-way labels binned from the 0-5 scores: a stand-in
    for NLI (no NLI corpus ships with the project): 0 ("entailment") for scores
    >= 4, 1 ("neutral") for [2, 4), 2 ("contradiction") below 2."""
    first, second, scores = load_stsb(STSB, "train")
    labels = np.where(scores >= 4, 0, np.where(scores >= 2, 1, 2)).astype("int32")
    # Balanced: the first count / 3 pairs of each class.
    rows = np.concatenate([np.flatnonzero(labels == k)[: count // 3] for k in range(3)])
    rows = np.sort(rows)
    return [first[i] for i in rows], [second[i] for i in rows], labels[rows]


@pytest.mark.skipif(not os.path.isdir(STSB), reason="needs ../shared/data/stsb")
def test_classification_on_stsb_pairs_binned_into_three_classes():
    first, second, labels = binned_stsb()
    model = SBERT(
        tiny_encoder(sequence_length=64), objective="classification", num_labels=3
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(
        {"premise": first, "hypothesis": second},
        labels,
        batch_size=16,
        epochs=8,
        verbose=0,
    ).history
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]
    # Memorising 48 pairs: well above the chance accuracy of 1/3.
    assert history["contrastive_accuracy"][-1] > 0.6, history["contrastive_accuracy"]


class StepLosses(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.means = []

    def on_train_batch_end(self, batch, logs=None):
        self.means.append(float(logs["loss"]))

    def losses(self):
        sums = np.asarray(self.means) * np.arange(1, len(self.means) + 1)
        return np.diff(np.concatenate([[0.0], sums]))


def step_losses(data, y=None, **fit_kwargs):
    keras.utils.set_random_seed(0)
    model = SBERT(tiny_encoder(), objective="regression", score_range=(0, 5))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    recorder = StepLosses()
    model.fit(data, y, epochs=1, verbose=0, callbacks=[recorder], **fit_kwargs)
    return recorder.losses()


def test_every_input_kind_trains_alike():
    """Lists (tuple or dict), TokenizedTexts, token arrays, tf.data of strings and
    of token dicts: the same batches give the same losses (padding lengths differ:
    bucketed, fixed, graph-tokenised; masking makes them irrelevant)."""
    import tensorflow as tf

    s1, s2, _, scores, _ = texts(24)
    encoder = tiny_encoder()
    fit = {"batch_size": 8, "shuffle": False}
    reference = step_losses((s1, s2), scores, **fit)
    assert len(reference) == 3 and np.all(np.isfinite(reference))
    columns = {"sentence1": s1, "sentence2": s2}
    tokens = {key: encoder.tokenize(value, 32) for key, value in columns.items()}
    kinds = {
        "dict of lists": step_losses(columns, scores, **fit),
        "TokenizedTexts": step_losses(
            TokenizedTexts(columns, encoder, labels=scores, batch_size=8)
        ),
        "token arrays": step_losses(tokens, scores, **fit),
        "tf.data strings": step_losses(
            tf.data.Dataset.from_tensor_slices((columns, scores)).batch(8)
        ),
        "tf.data tokens": step_losses(
            tf.data.Dataset.from_tensor_slices((tokens, scores)).batch(8)
        ),
    }
    for kind, losses in kinds.items():
        np.testing.assert_allclose(losses, reference, rtol=1e-4, err_msg=kind)


def test_lists_are_padded_to_length_buckets():
    assert [bucket_length(n, 256) for n in (3, 16, 17, 40, 300)] == [
        16,
        16,
        32,
        64,
        256,
    ]
    model = SBERT(tiny_encoder(), objective="multiple_negatives")
    a, p, _ = paraphrases(16)
    data, _, _ = model._texts_dataset((a, p), None, 8, False, "x")
    if BACKEND == "tensorflow":  # a tf.data over the same batches
        batch = next(iter(data))
        batch = keras.tree.map_structure(lambda t: t.numpy(), batch)
    else:
        batch = data[0]
    assert set(batch) == {"anchor", "positive"}
    assert batch["anchor"]["token_ids"].shape == (8, 16)
    assert batch["positive"]["token_ids"].shape == (8, 16)


def test_validation_data_and_split_take_texts():
    s1, s2, _, scores, _ = texts(24)
    model = SBERT(tiny_encoder(), objective="regression", score_range=(0, 5))
    model.compile(optimizer="adam", run_eagerly=True)
    history = model.fit(
        (s1[:16], s2[:16]),
        scores[:16],
        batch_size=8,
        epochs=1,
        verbose=0,
        validation_data=((s1[16:], s2[16:]), scores[16:]),
    ).history
    assert np.isfinite(history["val_loss"][0])
    history = model.fit(
        (s1, s2), scores, batch_size=8, epochs=1, verbose=0, validation_split=0.25
    ).history
    assert np.isfinite(history["val_contrastive_accuracy"][0])


def test_call_predict_and_encode_return_sentence_embeddings():
    encoder = tiny_encoder()
    model = SBERT(encoder, objective="multiple_negatives")
    sentences = paraphrases(5)[0]
    expected = encoder.encode(sentences)
    np.testing.assert_allclose(model.predict(sentences, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(model.encode(sentences), expected, atol=1e-5)
    np.testing.assert_allclose(np_(model(sentences)), expected, atol=1e-5)
    tokens = encoder.tokenize(sentences, 32)
    np.testing.assert_allclose(np_(model(tokens)), expected, atol=1e-5)


def test_keras_round_trip_keeps_objective_classifier_and_weights(tmp_path):
    (s1, s2), labels, _ = OBJECTIVE_DATA["classification"]()
    model = SBERT(tiny_encoder(), objective="classification", num_labels=3)
    model.compile(optimizer="adam", run_eagerly=True)
    model.fit((s1, s2), labels, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "sbert.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SBERT)
    assert (loaded.objective, loaded.num_labels) == ("classification", 3)
    np.testing.assert_allclose(
        loaded.predict(s1[:4], verbose=0), model.predict(s1[:4], verbose=0), atol=1e-6
    )
    for a, b in zip(loaded.classifier.weights, model.classifier.weights):
        np.testing.assert_array_equal(np_(a), np_(b))
    regression = SBERT(
        TableEncoder(), objective="regression", score_range=(1, 5), columns=("q", "d")
    )
    config = SBERT.from_config(regression.get_config()).get_config()
    assert config["score_range"] == [1.0, 5.0] and config["columns"] == ["q", "d"]


# ----------------------------------------------------------------- gradient cache


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


def test_gradient_cache_equals_the_plain_multiple_negatives_step():
    a, p, n = paraphrases(12)
    encoder = tiny_encoder()  # no dropout: both passes are deterministic
    x = {
        "anchor": encoder.tokenize(a, 16),
        "positive": encoder.tokenize(p, 16),
        "negative": encoder.tokenize(n, 16),
    }
    results = []
    for cache in (None, GradientCache(5)):  # chunks of 5, 5, 2 rows
        model = SBERT(tiny_encoder(), gradient_cache=cache)
        # Eager: the same step functions without minutes of XLA compilation.
        model.compile(optimizer=GradientProbe(), run_eagerly=True)
        logs = model.train_on_batch(x, return_dict=True)
        grads = [np_(v) for v in model.trainable_variables]
        results.append((logs["loss"], grads))
    (loss, grads), (cached_loss, cached_grads) = results
    np.testing.assert_allclose(cached_loss, loss, rtol=1e-5)
    assert_gradients_close(grads, cached_grads)
    assert sum(np.linalg.norm(g) > 0 for g in grads) > len(grads) // 2


# ----------------------------------------------------------------- bad input


def make(objective="multiple_negatives", **kwargs):
    model = SBERT(tiny_encoder(), objective=objective, **kwargs)
    model.compile(optimizer="adam")
    return model


def test_constructor_errors():
    with pytest.raises(ValueError, match="`objective` must be one of"):
        SBERT(tiny_encoder(), objective="contrastive")
    with pytest.raises(TypeError, match="`encoder` must be a Keras layer"):
        SBERT("all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="`num_labels` must be an int >= 2"):
        SBERT(tiny_encoder(), objective="classification", num_labels=1)
    with pytest.raises(ValueError, match="`score_range` must be a pair"):
        SBERT(tiny_encoder(), objective="regression", score_range=(5, 0))
    with pytest.raises(ValueError, match="`temperature` must be a positive"):
        SBERT(tiny_encoder(), temperature=0)
    with pytest.raises(ValueError, match="`margin` must be a number"):
        SBERT(tiny_encoder(), objective="triplet", margin=-1)
    with pytest.raises(ValueError, match="`triplet_distance` must be one of"):
        SBERT(tiny_encoder(), objective="triplet", triplet_distance="manhattan")
    with pytest.raises(ValueError, match="`gradient_cache` must be None for obj"):
        SBERT(tiny_encoder(), objective="regression", gradient_cache=4)
    with pytest.raises(TypeError, match="`columns` must be a tuple"):
        SBERT(tiny_encoder(), columns="anchor")


def test_bad_texts_get_clear_errors():
    a, p, _ = paraphrases(8)
    model = make()
    fit = {"batch_size": 4, "epochs": 1, "verbose": 0}
    with pytest.raises(ValueError, match=r"`x\['anchor'\]` must be a non-empty batch"):
        model.fit(([], []), **fit)
    with pytest.raises(ValueError, match=r"`x\['positive'\]\[2\]` must be a non-empty"):
        model.fit((a, p[:2] + ["  "] + p[3:]), **fit)
    with pytest.raises(ValueError, match="`x` must be columns with one text per row"):
        model.fit((a, p[:-1]), **fit)
    with pytest.raises(TypeError, match=r"`x\['anchor'\]\[1\]` must be a string"):
        model.fit(([a[0], 7] + a[2:], p), **fit)
    with pytest.raises(TypeError, match=r"`x\['anchor'\]` must be a string or a seq"):
        model.fit((np.arange(8), p), **fit)
    with pytest.raises(ValueError, match="`x` must be 2 or 3 columns"):
        model.fit(a, **fit)
    with pytest.raises(ValueError, match=r"`x` must be 2 or 3 col.*len\(x\)=4"):
        model.fit((a, p, a, p), **fit)
    with pytest.raises(ValueError, match=r"dict with the keys \('anchor', 'posi"):
        model.fit({"query": a, "document": p}, **fit)
    with pytest.raises(ValueError, match="`batch_size` must be at least 2"):
        model.fit((a, p), batch_size=1, epochs=1, verbose=0)
    assert not model.built  # nothing was compiled or built by a bad call


def test_bad_labels_get_clear_errors():
    (s1, s2), labels, _ = OBJECTIVE_DATA["classification"]()
    fit = {"batch_size": 8, "epochs": 1, "verbose": 0}
    classifier = make("classification")
    with pytest.raises(ValueError, match="`y` must be the labels of each pair"):
        classifier.fit((s1, s2), **fit)
    with pytest.raises(ValueError, match=r"`y` must be class labels in \[0, 3\)"):
        classifier.fit((s1, s2), labels + 1, **fit)
    with pytest.raises(ValueError, match="`y` must be one label per pair"):
        classifier.fit((s1, s2), labels[:-1], **fit)
    with pytest.raises(TypeError, match="`y` must be integer class labels"):
        classifier.fit((s1, s2), labels + 0.5, **fit)
    regression = make("regression")
    with pytest.raises(ValueError, match=r"score_range=\(0, 5\)"):
        regression.fit((s1, s2), np.full(len(s1), 4.0), **fit)
    unlabelled = TokenizedTexts({"sentence1": s1, "sentence2": s2}, regression.encoder)
    with pytest.raises(ValueError, match="`x.labels` must be the labels of each"):
        regression.fit(unlabelled)
    import tensorflow as tf

    strings = tf.data.Dataset.from_tensor_slices({"sentence1": s1, "sentence2": s2})
    with pytest.raises(ValueError, match="`y` must be the labels of each pair"):
        regression.fit(strings.batch(8), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"read by Keras as \(x, y\)"):
        make().fit(tf.data.Dataset.from_tensor_slices((s1, s2)).batch(8))
