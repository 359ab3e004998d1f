import keras
import numpy as np
import pytest
import scipy.stats

from keras_contrastive.callbacks import STSEvaluator
from keras_contrastive.evaluation import sts_spearman
from tests.evaluation.text_encoder import char_features

SENTENCES1 = [
    "a man plays a guitar",
    "the cat sleeps on the mat",
    "stocks fell sharply today",
    "a woman is slicing onions",
    "the dog runs in the park",
    "two kids are playing chess",
]
SENTENCES2 = [
    "a man is playing the guitar",
    "a cat is asleep on a mat",
    "the weather is sunny",
    "someone cuts an onion",
    "birds fly over the sea",
    "children play a board game",
]
SCORES = np.array([4.8, 4.2, 0.2, 3.6, 0.8, 3.0], "float32")


class DenseTextEncoder:
    """`encode` through a Keras layer: char features -> the model's encoder."""

    def __init__(self, layer):
        self.layer = layer

    def encode(self, texts, batch_size=32, verbose=0):
        return keras.ops.convert_to_numpy(self.layer(char_features(texts)))


def _model():
    encoder = keras.Sequential([keras.Input((48,)), keras.layers.Dense(8)])
    model = keras.Sequential([encoder, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model, encoder


def _reference(layer):
    embeddings = keras.ops.convert_to_numpy(
        layer(char_features(SENTENCES1 + SENTENCES2))
    ).astype(np.float64)
    a, b = embeddings[:6], embeddings[6:]
    cosines = np.sum(a * b, axis=1) / (
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    )
    return 100 * scipy.stats.spearmanr(cosines, SCORES).statistic


def test_writes_sts_spearman_into_history_and_progress_bar(rng, capsys):
    model, encoder = _model()
    evaluator = STSEvaluator(
        SENTENCES1, SENTENCES2, SCORES, encoder=DenseTextEncoder(encoder)
    )
    x = char_features(SENTENCES1 + SENTENCES2)
    y = rng.normal(size=(12, 1)).astype("float32")
    history = model.fit(x, y, epochs=3, batch_size=4, callbacks=[evaluator], verbose=2)
    values = history.history["sts_spearman"]
    assert len(values) == 3 and all(-100 <= v <= 100 for v in values)
    assert [epoch for epoch, _ in evaluator.history] == [0, 1, 2]
    # The last value is that of the trained encoder.
    assert values[-1] == pytest.approx(_reference(encoder), abs=1e-3)
    assert capsys.readouterr().out.count("sts_spearman") == 3


def test_every_log_name_and_the_models_encoder():
    model, encoder = _model()
    model.encoder = DenseTextEncoder(encoder)  # found as `model.encoder`
    evaluator = STSEvaluator(
        SENTENCES1, SENTENCES2, SCORES, every=2, log_name="stsb_dev", verbose=1
    )
    x = char_features(SENTENCES1 + SENTENCES2)
    history = model.fit(
        x, np.zeros((12, 1)), epochs=4, callbacks=[evaluator], verbose=0
    )
    assert len(history.history["stsb_dev"]) == 2
    assert [epoch for epoch, _ in evaluator.history] == [1, 3]
    assert evaluator.evaluate() == pytest.approx(_reference(encoder), abs=1e-3)


def test_plain_callable_encoder_and_config_round_trip():
    evaluator = STSEvaluator(
        SENTENCES1, SENTENCES2, SCORES, encoder=char_features, batch_size=4
    )
    assert evaluator.evaluate() == pytest.approx(
        sts_spearman(char_features, SENTENCES1, SENTENCES2, SCORES)
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(evaluator)
    )
    assert isinstance(restored, STSEvaluator)
    assert restored.sentences2 == SENTENCES2 and restored.batch_size == 4
    np.testing.assert_allclose(restored.scores, SCORES)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`sentences2` must be as long as"):
        STSEvaluator(SENTENCES1, SENTENCES2[:3], SCORES)
    with pytest.raises(ValueError, match=r"`scores.shape` must be \(6,\)"):
        STSEvaluator(SENTENCES1, SENTENCES2, SCORES[:2])
    with pytest.raises(TypeError, match=r"`encoder` must be a text encoder"):
        STSEvaluator(SENTENCES1, SENTENCES2, SCORES, encoder="minilm")
    with pytest.raises(ValueError, match=r"`every` must be an int >= 1"):
        STSEvaluator(SENTENCES1, SENTENCES2, SCORES, every=0)
    with pytest.raises(TypeError, match=r"`log_name` must be a non-empty string"):
        STSEvaluator(SENTENCES1, SENTENCES2, SCORES, log_name=None)
    with pytest.raises(
        ValueError,
        match=r"`encoder` must be given when the evaluator is not attached to a "
        r"model \(pass `encoder=` or use the evaluator in `fit`\). Received: "
        r"encoder=None",
    ):
        STSEvaluator(SENTENCES1, SENTENCES2, SCORES).evaluate()
