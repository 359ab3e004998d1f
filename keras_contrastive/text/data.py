"""Feeding strings to `model.fit` on every backend: tokenise in the data pipeline."""

import keras
import numpy as np

from keras_contrastive import _validation as v
from keras_contrastive.models.fit_data import batch_count
from keras_contrastive.text.tokenizer import WordPieceTokenizer


class TokenizedTexts(keras.utils.PyDataset):
    """Batches of texts, tokenised on the host: a dataset for `fit` on any backend.

    JAX and PyTorch have no string tensors, so a compiled training step cannot
    take strings. This `PyDataset` tokenises each batch in the data pipeline
    (optionally in worker processes: `workers`, `use_multiprocessing`) and yields
    int32 arrays padded to one fixed length, so `jax.jit` compiles the step once.

    Args:
        texts: a list of strings, or a dict of equally long lists (columns, e.g.
            `{"anchor": [...], "positive": [...]}` for sentence pairs).
        tokenizer: a `WordPieceTokenizer`, or a `SentenceEncoder` (its tokenizer).
        labels: optional array of per-text targets (`y`), or None (no `y`).
        batch_size: texts per batch (the last batch may be smaller).
        drop_last: leave out a last batch smaller than `batch_size` (the rows
            left out change with each epoch's shuffle), as PyTorch's
            `DataLoader(drop_last=True)` does.
        sequence_length: the fixed padded length (default: the tokenizer's, or
            the encoder's `sequence_length`).
        shuffle: reshuffle the order at every epoch (seeded by `seed`).
        augment: optional callable applied to each batch's list of strings before
            tokenising, for instance a text augmentation layer, or a dict of them
            per column (`{"positive": RandomWordDropout(0.1)}`).
        seed: int or None, for shuffling.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Each item is `x` (the tokenised dict `{"token_ids", "padding_mask"}`, or a
    dict of those per column) or `(x, y)` with labels.
    """

    def __init__(
        self,
        texts,
        tokenizer,
        labels=None,
        batch_size=32,
        sequence_length=None,
        shuffle=False,
        augment=None,
        seed=None,
        drop_last=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(texts, dict):
            if not texts:
                v.fail("texts", "a list of strings or a non-empty dict of them", texts)
            self.columns = {
                name: v.check_strings(f"texts[{name!r}]", column)
                for name, column in texts.items()
            }
            sizes = {name: len(column) for name, column in self.columns.items()}
            if len(set(sizes.values())) != 1:
                v.fail("texts", "columns of equal length", sizes)
        else:
            self.columns = {None: v.check_strings("texts", texts)}
        self.size = len(next(iter(self.columns.values())))
        encoder_length = getattr(tokenizer, "sequence_length", None)
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        self.tokenizer = v.check_instance(
            "tokenizer",
            tokenizer,
            WordPieceTokenizer,
            "a WordPieceTokenizer or a SentenceEncoder",
        )
        if sequence_length is None:
            sequence_length = encoder_length or tokenizer.sequence_length
        self.sequence_length = v.check_int("sequence_length", sequence_length, 2)
        if labels is not None:
            labels = np.asarray(labels)
            if len(labels) != self.size:
                v.fail(
                    "labels",
                    f"one label per text ({self.size})",
                    labels.shape,
                    received_as="labels.shape",
                )
        self.labels = labels
        self.batch_size = v.check_positive_int("batch_size", batch_size)
        self.shuffle = v.check_bool("shuffle", shuffle)
        self.drop_last = v.check_bool("drop_last", drop_last)
        self.augment = augment
        self._rng = np.random.default_rng(v.check_seed("seed", seed))
        self.order = np.arange(self.size)
        if self.shuffle:
            self._rng.shuffle(self.order)

    def __len__(self):
        return batch_count(self.size, self.batch_size, self.drop_last)

    def _augment(self, name, texts):
        augment = self.augment
        if isinstance(augment, dict):
            augment = augment.get(name)
        return list(augment(texts)) if augment is not None else texts

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x = {}
        for name, column in self.columns.items():
            texts = self._augment(name, [column[i] for i in rows])
            x[name] = self.tokenizer(texts, sequence_length=self.sequence_length)
        if None in x:
            x = x[None]
        if self.labels is None:
            return x
        return x, self.labels[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self.order)
