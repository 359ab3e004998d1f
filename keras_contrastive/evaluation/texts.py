"""Sentences in, embeddings out: the text encoder protocol of the evaluation tools.

A text encoder is any of:

- an object with an `encode(texts, batch_size=..., verbose=...)` method returning
  `(len(texts), dim)` embeddings (the sentence-transformers interface, Reimers and
  Gurevych, 2019, "Sentence-BERT", also that of
  `keras_contrastive.text.SentenceEncoder`; the method receives the whole list
  and batches itself). It is used even when the object is a Keras model;
- a `keras.Model` without `encode`, taking strings (it runs through `predict` on
  a NumPy object array of str, in batches of `batch_size`; string tensors exist on the
  TensorFlow backend only, so on JAX and PyTorch wrap tokenizer and model in an
  object with `encode` or in a callable);
- any other callable mapping a list of at most `batch_size` strings to a
  `(batch, dim)` array or backend tensor.
"""

import keras
import numpy as np

from keras_contrastive._validation import (
    check_positive_int,
    check_strings,
    fail,
    shown_as,
    summarize,
)
from keras_contrastive.evaluation.arrays import check_embeddings, to_numpy


def is_text_encoder(value):
    """True for an object with an `encode` method or a callable (not a str)."""
    if isinstance(value, (str, bytes)):
        return False  # str.encode is not a text encoder
    return callable(getattr(value, "encode", None)) or callable(value)


def check_text_encoder(name, value, optional=False):
    """Returns `value` if it is a text encoder (or None when `optional`)."""
    if value is None and optional:
        return None
    if not is_text_encoder(value):
        expectation = (
            "a text encoder (an object with `encode`, a Keras model or a callable)"
        )
        if optional:
            expectation += " or None"
        fail(name, expectation, summarize(value), TypeError)
    return value


def encode_texts(encoder, texts, batch_size=32, name="texts"):
    """Embeds a list of strings with a text encoder; returns float32 `(N, dim)`.

    Args:
        encoder: an object with `encode(texts, batch_size=..., verbose=...)`, a
            `keras.Model` taking strings, or a callable mapping a list of strings
            to a `(batch, dim)` array or tensor (called on batches of
            `batch_size`).
        texts: a non-empty list of str (or one str, a batch of one; see
            `keras_contrastive._validation.check_strings` for what is accepted).
        batch_size: texts per encoder call.
        name: the argument name used in error messages.

    Returns:
        A float32 NumPy array with one row per text.

    Example:

    >>> import numpy as np
    >>> def encoder(batch):  # a toy encoder: string length and vowel count
    ...     return np.array([[len(t), sum(c in "aeiou" for c in t)] for t in batch])
    >>> encode_texts(encoder, ["a cat", "the dog", "xyz"], batch_size=2)
    array([[5., 2.],
           [7., 2.],
           [3., 0.]], dtype=float32)
    """
    texts = check_strings(name, texts)
    batch_size = check_positive_int("batch_size", batch_size)
    check_text_encoder("encoder", encoder)
    method = getattr(encoder, "encode", None)
    if callable(method):
        features = to_numpy(method(texts, batch_size=batch_size, verbose=0))
    elif isinstance(encoder, keras.Model):
        features = to_numpy(
            encoder.predict(
                np.asarray(texts, dtype=object), batch_size=batch_size, verbose=0
            )
        )
    else:
        batches = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            batches.append(to_numpy(encoder(batch)))
            _check_rows(batches[-1], len(batch))
        features = np.concatenate(batches, axis=0)
    _check_rows(features, len(texts))
    return check_embeddings(f"encoder({name})", features)


def _check_rows(features, num_texts):
    if features.ndim != 2 or features.shape[0] != num_texts:
        fail(
            "encoder",
            "a text encoder returning one embedding row per text, "
            "of shape (num_texts, dim)",
            shown_as(
                f"an encoder returning shape {features.shape} for {num_texts} texts"
            ),
        )
