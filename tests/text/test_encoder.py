"""SentenceEncoder with a tiny random BERT: strings -> embeddings, end to end."""

import keras
import numpy as np
import pytest

from keras_contrastive.text import (
    RandomWordDropout,
    SentenceEncoder,
    TokenizedTexts,
)
from tests.conftest import BACKEND
from tests.text._tiny import SENTENCES, tiny_backbone, tiny_encoder, tiny_tokenizer


def np_(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def encoder():
    return tiny_encoder()


def test_strings_and_token_dicts_give_the_same_embeddings(encoder):
    from_strings = np_(encoder(SENTENCES))
    tokens = encoder.tokenize(SENTENCES)
    from_tokens = np_(encoder(tokens))
    assert from_strings.shape == (len(SENTENCES), 16)
    assert from_strings.dtype == np.float32
    np.testing.assert_allclose(from_strings, from_tokens, atol=1e-6)
    np.testing.assert_allclose(
        np_(encoder(np.array(SENTENCES))), from_strings, atol=1e-6
    )
    assert np_(encoder("hello")).shape == (1, 16)
    assert np.isfinite(from_strings).all()


def test_padding_does_not_change_embeddings(encoder):
    short = np_(encoder(encoder.tokenize(["a man is eating"])))
    padded = np_(encoder(encoder.tokenize(["a man is eating"], sequence_length=32)))
    np.testing.assert_allclose(short, padded, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_pooling_modes_and_normalisation(pooling):
    enc = tiny_encoder(pooling=pooling, normalize=True)
    out = np_(enc(SENTENCES))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    tokens = enc.tokenize(SENTENCES)
    sequence = np_(
        enc.backbone({**tokens, "segment_ids": np.zeros_like(tokens["token_ids"])})
    )
    mask = tokens["padding_mask"].astype(bool)
    expected = np.stack(
        [
            {"mean": s[m].mean(0), "cls": s[0], "max": s[m].max(0)}[pooling]
            for s, m in zip(sequence, mask)
        ]
    )
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_encode_order_batching_and_progress(encoder, capsys):
    one_by_one = np.concatenate([np_(encoder([s])) for s in SENTENCES])
    for batch_size in (1, 3, 100):
        out = encoder.encode(SENTENCES, batch_size=batch_size, verbose=0)
        assert out.dtype == np.float32 and out.shape == (len(SENTENCES), 16)
        np.testing.assert_allclose(out, one_by_one, atol=1e-5)
    assert capsys.readouterr().out == ""
    encoder.encode(SENTENCES, batch_size=3, verbose=1)
    assert f"{len(SENTENCES)}/{len(SENTENCES)}" in capsys.readouterr().out
    encoder.encode(SENTENCES, batch_size=3)  # "auto": several batches -> a bar
    assert "sentence" in capsys.readouterr().out
    encoder.encode(SENTENCES[:2], batch_size=3)  # one batch -> silent
    assert capsys.readouterr().out == ""


def test_long_texts_are_truncated_and_empty_strings_embed(encoder):
    long = "the cat sat on the mat " * 20
    tokens = encoder.tokenize([long])
    assert tokens["token_ids"].shape == (1, encoder.sequence_length)
    assert tokens["padding_mask"].sum() == encoder.sequence_length
    assert tokens["token_ids"][0, -1] == encoder.tokenizer.sep_token_id
    out = encoder.encode([long, "", "the cat"], verbose=0)
    assert np.isfinite(out).all()
    empty = np_(encoder(encoder.tokenizer.pack([[]])))  # [CLS] [SEP]
    np.testing.assert_allclose(out[1], empty[0], atol=1e-6)


def test_dropout_only_in_training():
    enc = tiny_encoder(dropout=0.3)
    tokens = enc.tokenize(SENTENCES[:3])
    a, b = np_(enc(tokens, training=True)), np_(enc(tokens, training=True))
    assert not np.allclose(a, b)  # two SimCSE views
    np.testing.assert_allclose(np_(enc(tokens)), np_(enc(tokens)), atol=1e-6)


def test_keras_round_trip_without_the_original_vocabulary(tmp_path):
    enc = tiny_encoder(pooling="max", normalize=True)
    expected = enc.encode(SENTENCES, verbose=0)
    path = str(tmp_path / "encoder.keras")
    enc.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SentenceEncoder)
    assert loaded.pooling == "max" and loaded.normalize is True
    assert loaded.tokenizer.get_config() == enc.tokenizer.get_config()
    np.testing.assert_allclose(loaded.encode(SENTENCES, verbose=0), expected, atol=1e-6)
    clone = SentenceEncoder.from_config(enc.get_config())
    assert clone.sequence_length == enc.sequence_length


def test_fit_inside_another_model_on_tokenized_pipeline():
    """The encoder trains inside a compiled step, fed by a host tokeniser."""
    enc = tiny_encoder(dropout=0.1)
    inputs = {
        "token_ids": keras.Input((None,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((None,), dtype="int32", name="padding_mask"),
    }
    outputs = keras.layers.Dense(1)(enc(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    texts = SENTENCES * 4
    data = TokenizedTexts(
        texts,
        enc,
        labels=np.linspace(-1, 1, len(texts)).astype("float32"),
        batch_size=8,
        shuffle=True,
        augment=RandomWordDropout(0.1, seed=0),
        seed=0,
    )
    x, y = data[0]
    assert x["token_ids"].shape == (8, enc.sequence_length) and y.shape == (8,)
    before = np_(enc.backbone.weights[0]).copy()
    history = model.fit(data, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(before, np_(enc.backbone.weights[0]))


def test_tokenized_texts_columns():
    tok = tiny_tokenizer(sequence_length=16)
    data = TokenizedTexts(
        {"anchor": SENTENCES, "positive": SENTENCES[::-1]}, tok, batch_size=3
    )
    assert len(data) == 3
    batch = data[2]
    assert set(batch) == {"anchor", "positive"}
    assert batch["anchor"]["token_ids"].shape == (2, 16)
    columns = {"anchor": SENTENCES, "positive": SENTENCES[::-1]}
    dropping = TokenizedTexts(columns, tok, batch_size=3, drop_last=True)
    assert len(dropping) == 2 and len(dropping[1]["anchor"]["token_ids"]) == 3
    with pytest.raises(TypeError, match="`drop_last` must be"):
        TokenizedTexts(columns, tok, drop_last="yes")
    with pytest.raises(ValueError, match="`texts` must be columns of equal length"):
        TokenizedTexts({"a": ["x"], "b": ["y", "z"]}, tok)


def test_export(tmp_path):
    enc = tiny_encoder(normalize=True)
    path = str(tmp_path / "saved")
    if BACKEND != "tensorflow":
        with pytest.raises(NotImplementedError, match="needs the TensorFlow backend"):
            enc.export(path)
        return
    import tensorflow as tf

    enc.export(path, verbose=False)
    loaded = tf.saved_model.load(path)  # keep a reference: it owns the variables
    served = loaded.serve(tf.constant(SENTENCES)).numpy()
    np.testing.assert_allclose(served, enc.encode(SENTENCES, verbose=0), atol=1e-5)


def test_tf_data_strings_on_tensorflow():
    """On TensorFlow a traced step may receive raw strings (graph tokenisation)."""
    if BACKEND != "tensorflow":
        pytest.skip("string tensors reach the network only on TensorFlow")
    import tensorflow as tf

    enc = tiny_encoder()

    @tf.function
    def embed(texts):
        return enc(texts)

    np.testing.assert_allclose(
        embed(tf.constant(SENTENCES)).numpy(),
        enc.encode(SENTENCES, verbose=0),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda e: e(None), TypeError, "`inputs` must be a batch of strings or a dict"),
        (lambda e: e([]), ValueError, "`texts` must be a non-empty batch of strings"),
        (lambda e: e(["a", 2]), TypeError, r"`texts\[1\]` must be a string"),
        (lambda e: e({"token_ids": np.zeros((1, 3), "int32")}), ValueError, "Missing"),
        (lambda e: e.encode([]), ValueError, "`sentences` must be a non-empty batch"),
        (lambda e: e.encode(None), TypeError, "Received: sentences=None"),
        (lambda e: e.encode(["ok", None]), TypeError, r"`sentences\[1\]` must be a"),
        (lambda e: e.encode(["ok"], batch_size=0), ValueError, "`batch_size` must be"),
        (lambda e: e.encode(["ok"], verbose=3), ValueError, "`verbose` must be one of"),
        (lambda e: e.tokenize(["ok"], sequence_length=999), ValueError, r"\[2, 32\]"),
    ],
)
def test_bad_input(encoder, call, error, message):
    with pytest.raises(error, match=message):
        call(encoder)


def test_bad_construction():
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        SentenceEncoder(tiny_backbone(), tiny_tokenizer(), pooling="sum")
    with pytest.raises(
        ValueError, match=r"`sequence_length` must be an int in \[2, 64\]"
    ):
        SentenceEncoder(tiny_backbone(), tiny_tokenizer(), sequence_length=100)
    with pytest.raises(TypeError, match="`tokenizer` must be a WordPieceTokenizer"):
        SentenceEncoder(tiny_backbone(), "vocab.txt")
    with pytest.raises(TypeError, match="`backbone` must be a Keras layer"):
        SentenceEncoder(None, tiny_tokenizer())
    with pytest.raises(TypeError, match="`name_or_folder` must be a folder path"):
        SentenceEncoder.from_preset(3)
