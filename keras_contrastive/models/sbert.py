"""Sentence-BERT (Reimers & Gurevych 2019): siamese fine-tuning of a sentence encoder.

`SBERT` trains one `keras_contrastive.text.SentenceEncoder` (tied weights) on
pairs or triplets of texts with `model.fit`, on TensorFlow, JAX and PyTorch.
`_SentenceModel`, the private base it shares with `SimCSE`, turns texts into
what a compiled step can take:

- Python lists (tuples, NumPy arrays) of strings are tokenised on the host, batch
  by batch, in a `keras.utils.PyDataset` (Hugging Face's Rust tokenizer), padded
  to a length bucket (16, 32, 64, ... up to the encoder's `sequence_length`), so
  that `jax.jit` compiles a handful of shapes and short sentences are not padded
  to 256 tokens;
- a `tf.data.Dataset` yielding string tensors is mapped through the encoder's
  `tokenize_graph` (TensorFlow ops, any backend), then trimmed to the same
  buckets;
- `keras_contrastive.text.TokenizedTexts`, token-id arrays (dicts of
  `token_ids` / `padding_mask`) and `tf.data` of token dicts go in as they are.

Strings therefore never reach the step on any backend (on TensorFlow a string
tensor that does reach it is tokenised by the encoder in the graph).
"""

import math
import random
import warnings

import keras
import numpy as np
from keras import ops

from keras_contrastive import _validation as v
from keras_contrastive import distribute
from keras_contrastive.losses import info_nce, pairwise_distances, triplet_margin
from keras_contrastive.losses._common import l2_normalize, safe_sqrt, to_float32
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.monitoring import embedding_std, top1_accuracy
from keras_contrastive.text.data import TokenizedTexts

OBJECTIVES = ("classification", "regression", "triplet", "multiple_negatives")
#: Objectives whose batches carry labels (`y`).
LABELLED = ("classification", "regression")
TRIPLET_DISTANCES = ("euclidean", "squared_euclidean", "cosine")
#: Dict keys recognised as the columns of a pair or triplet, in order.
COLUMN_FAMILIES = (
    ("sentence1", "sentence2"),
    ("anchor", "positive", "negative"),
    ("premise", "hypothesis"),
)
_TOKEN_KEYS = ("token_ids", "padding_mask")
#: Shortest padded length of the host and tf.data pipelines (then doubled).
_MIN_BUCKET = 16


def bucket_length(longest, limit):
    """The padded length for a batch whose longest text has `longest` tokens:
    the next power of two from 16, at most `limit`."""
    length = _MIN_BUCKET
    while length < longest:
        length *= 2
    return min(length, limit)


def is_token_dict(x):
    return isinstance(x, dict) and "token_ids" in x


def _is_text_column(x):
    """Host texts: a list / tuple of str, a NumPy array of str, an eager string
    tensor (not a token dict, not a number array)."""
    if isinstance(x, (str, bytes)):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO"
    if isinstance(x, (list, tuple)):
        return all(isinstance(item, (str, bytes, np.str_, np.bytes_)) for item in x)
    return hasattr(x, "numpy") and is_string_tensor(x)


def _flat_list(x):
    """A list or tuple of scalars: meant as one column of texts (`check_strings`
    then names a non-string item)."""
    return isinstance(x, (list, tuple)) and not any(
        isinstance(item, (list, tuple, dict, np.ndarray)) or hasattr(item, "shape")
        for item in x
    )


def _is_tf_dataset(x):
    if not type(x).__module__.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset)


class BucketedTexts(TokenizedTexts):
    """`TokenizedTexts` padded per batch to a length bucket instead of one length.

    Every column of a batch is padded to `bucket_length` of the batch's longest
    text (all columns the same length), so sentence pairs of 20 word pieces cost
    32 positions, not the encoder's 256, while `jax.jit` sees only a few shapes.
    What `SBERT.fit` and `SimCSE.fit` build from lists of strings.
    """

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        pieces = {}
        for name, column in self.columns.items():
            texts = self._augment(name, [column[i] for i in rows])
            pieces[name] = self.tokenizer.word_pieces(texts)
        longest = max(len(ids) for column in pieces.values() for ids in column) + 2
        length = bucket_length(longest, self.sequence_length)
        x = {name: self.tokenizer.pack(p, length) for name, p in pieces.items()}
        if None in x:
            x = x[None]
        if self.labels is None:
            return x
        return x, self.labels[rows]


def tf_dataset_from(py_dataset):
    """A `tf.data.Dataset` over the batches of a `BucketedTexts`, with the token
    length left unknown.

    Keras reads a `PyDataset`'s `tf.data` signature off its first two batches
    (TensorFlow backend), which would fix the padded length of every later
    batch; this generator declares it as `None`. It re-shuffles after each pass,
    as `PyDataset.on_epoch_end` does.
    """
    import tensorflow as tf

    def spec(value):
        value = np.asarray(value)
        shape = (None,) * value.ndim
        return tf.TensorSpec(shape, tf.as_dtype(value.dtype))

    def generate():
        for index in range(len(py_dataset)):
            yield py_dataset[index]
        py_dataset.on_epoch_end()

    signature = keras.tree.map_structure(spec, py_dataset[0])
    if isinstance(signature, list):
        signature = tuple(signature)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(py_dataset)))
    return dataset.prefetch(2)


def _trim_to_bucket(token_dicts, limit):
    """tf.data: token dicts padded to `limit`, cut to the batch's length bucket."""
    import tensorflow as tf

    longest = tf.reduce_max(
        tf.stack(
            [
                tf.reduce_max(tf.reduce_sum(tf.cast(t["padding_mask"], tf.int32), 1))
                for t in token_dicts
            ]
        )
    )
    length = tf.constant(_MIN_BUCKET)
    length = tf.while_loop(lambda n: n < longest, lambda n: (n * 2,), (length,))[0]
    length = tf.minimum(length, limit)
    return [{key: value[:, :length] for key, value in t.items()} for t in token_dicts]


def _string_spec(spec):
    import tensorflow as tf

    return isinstance(spec, tf.TensorSpec) and spec.dtype == tf.string


def _unpack_element(element):
    """Keras' reading of a dataset element: (x, y, sample_weight)."""
    if isinstance(element, tuple) and 1 <= len(element) <= 3:
        return tuple(element) + (None,) * (3 - len(element))
    return element, None, None


class _SentenceModel(ContrastiveModel):
    """What `SBERT` and `SimCSE` share: a sentence encoder trained on texts.

    Subclasses define `host_columns(x)` (the named text columns of an input, on
    the host or in `tf.data`), `column_augment()` and the method hooks.
    """

    nested_config = ("encoder",)
    #: Label-free objectives take `x` only (set per instance by `SBERT`).
    labelled = False
    #: A partial last batch trains, as in sentence-transformers and SimCSE's
    #: reference code (their data loaders keep it); `fit(..., drop_last=True)`
    #: leaves it out.
    drop_last = False

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = v.check_layer("encoder", encoder)
        self.embedding_dim = None

    # ------------------------------------------------------------ texts in

    @property
    def tokenizer(self):
        """The encoder's `WordPieceTokenizer` (None for an encoder without one)."""
        return getattr(self.encoder, "tokenizer", None)

    def _need_tokenizer(self, name):
        if self.tokenizer is None or not hasattr(self.encoder, "sequence_length"):
            v.fail(
                name,
                "token dicts (`token_ids`, `padding_mask`) for an encoder without a "
                "tokenizer; texts need a keras_contrastive.text.SentenceEncoder",
                v.summarize(self.encoder),
                TypeError,
            )

    def column_augment(self):
        """Per-column text augmentation applied on the host (None: none)."""
        return None

    def host_columns(self, x, name="x"):
        """`{column name: texts or token dict}` of an input, checked."""
        raise NotImplementedError

    def check_labels(self, y, num_rows, name="y"):
        """Checks host labels; returns them as a NumPy array (or None)."""
        if y is not None:
            v.fail(name, f"None for {self.describe()} (it uses no labels)", y)
        return None

    def describe(self):
        return type(self).__name__

    def _texts_dataset(self, x, y, batch_size, shuffle, name, drop_last=False):
        """Host input -> what `fit` / `evaluate` take: `(x, y, batch_size)`."""
        if isinstance(x, keras.utils.PyDataset):
            self._check_py_dataset(x, name)
            return x, y, None
        if _is_tf_dataset(x):
            return self._map_tf_dataset(x, name), y, None
        columns = self.host_columns(x, name)
        values = list(columns.values())
        if all(is_token_dict(value) for value in values):
            rows = len(values[0]["token_ids"])
            return x, self.check_labels(y, rows, "y"), batch_size
        self._need_tokenizer(name)
        texts = {}
        for key, value in columns.items():
            where = name if key is None else f"{name}[{key!r}]"
            if is_token_dict(value):
                v.fail(
                    where,
                    "texts like the other columns (not a mix of texts and token dicts)",
                    v.summarize(value),
                    TypeError,
                )
            strings = v.check_strings(where, value)
            for i, text in enumerate(strings):
                if not text.strip():
                    v.fail(
                        f"{where}[{i}]",
                        "a non-empty text (an empty or blank training text carries "
                        "nothing to learn; drop its row)",
                        text,
                    )
            texts[key] = strings
        sizes = {key: len(column) for key, column in texts.items()}
        if len(set(sizes.values())) > 1:
            v.fail(
                name,
                "columns with one text per row each (equal lengths)",
                v.shown_as(", ".join(f"{k!r}: {n} texts" for k, n in sizes.items())),
                received_as="column lengths",
            )
        size = next(iter(sizes.values()))
        labels = self.check_labels(y, size, "y")
        if batch_size is not None:
            batch_size = v.check_positive_int("batch_size", batch_size)
        batch_size = batch_size or 32
        if (
            self.min_batch_size > 1
            and size % batch_size == 1
            and size > 1
            and not (drop_last and size > batch_size)
        ):
            # A last batch of one row has no in-batch negative.
            warnings.warn(
                f"{type(self).__name__}: the last batch would hold a single row, "
                "which has no in-batch negative; that row is left out.",
                stacklevel=3,
            )
            texts = {key: column[:-1] for key, column in texts.items()}
            labels = None if labels is None else labels[:-1]
        if None in texts and len(texts) == 1:
            texts = texts[None]
        dataset = BucketedTexts(
            texts,
            self.tokenizer,
            labels=labels,
            batch_size=batch_size,
            sequence_length=self.encoder.sequence_length,
            shuffle=bool(shuffle),
            drop_last=drop_last,
            augment=self.column_augment(),
            # Seeded by keras.utils.set_random_seed (Python's `random`).
            seed=random.randrange(2**31 - 1),
        )
        if keras.backend.backend() == "tensorflow":
            return tf_dataset_from(dataset), None, None
        return dataset, None, None

    def _check_py_dataset(self, x, name):
        if not len(x):
            v.fail(name, "a dataset with at least one batch", v.summarize(x))
        if isinstance(x, TokenizedTexts):
            names = list(x.columns)
            if names == [None]:
                self.host_columns(["text"], name)
            else:
                self.host_columns({key: ["text"] for key in names}, name)
            self.check_labels(x.labels, x.size, f"{name}.labels")
            return
        batch = x[0]
        inputs, labels, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self.host_columns(inputs, name)
        if self.labelled and labels is None:
            self.check_labels(None, None, "y")

    def _map_tf_dataset(self, dataset, name):
        """Tokenises the string columns of a `tf.data` pipeline (any backend)."""
        import tensorflow as tf

        x_spec, y_spec, _ = _unpack_element(dataset.element_spec)
        self.host_columns(x_spec, name)
        if self.labelled and y_spec is None:
            self.check_labels(None, None, "y")
        if not any(_string_spec(s) for s in tf.nest.flatten(x_spec)):
            return dataset
        self._need_tokenizer(name)
        for spec in tf.nest.flatten(x_spec):
            if _string_spec(spec) and spec.shape.rank != 1:
                v.fail(
                    name,
                    "a batched tf.data.Dataset (string tensors of shape (batch,); "
                    "call `.batch(batch_size)`)",
                    v.shown_as(f"a string component of shape {spec.shape}"),
                )
        encoder = self.encoder
        limit = int(encoder.sequence_length)
        augment = self.column_augment() or {}

        def tokenize(*element):
            x, rest = element[0], element[1:]
            if len(element) == 1 and not isinstance(dataset.element_spec, tuple):
                rest = ()
            columns = self.host_columns(x, name)
            keys = [k for k, value in columns.items() if not is_token_dict(value)]
            strings = []
            for key in keys:
                text = columns[key]
                if key in augment:
                    text = augment[key](text)
                strings.append(encoder.tokenize_graph(text, limit))
            trimmed = dict(zip(keys, _trim_to_bucket(strings, limit)))
            if list(columns) == [None]:
                new_x = trimmed[None]
            else:
                new_x = {key: trimmed.get(key, value) for key, value in columns.items()}
                if isinstance(x, (tuple, list)):
                    new_x = tuple(new_x.values())
            return (new_x, *rest) if rest else new_x

        return dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)

    def _validation(self, validation_data, name="validation_data"):
        """Converts texts in `validation_data` (`(x, y)`, or `x` alone)."""
        if validation_data is None:
            return None
        data = validation_data
        if (
            isinstance(data, (tuple, list))
            and len(data) in (2, 3)
            and not _is_text_column(data[0])
            and not is_token_dict(data[0])
        ):
            x, y = data[0], data[1]
        else:
            x, y = data, None
        x, y, batch_size = self._texts_dataset(x, y, None, False, name)
        if isinstance(x, (keras.utils.PyDataset,)) or _is_tf_dataset(x):
            return x
        return (x, y) if y is not None else x

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        validation_data=None,
        drop_last=None,
        **kwargs,
    ):
        self._check_batch_size(None, batch_size)
        drop_last = self.resolve_drop_last(drop_last)
        shuffle = kwargs.pop("shuffle", True)
        if kwargs.get("validation_split") and validation_data is None:
            split = self._split(x, y, kwargs["validation_split"])
            if split is not None:
                kwargs.pop("validation_split")
                x, y, validation_data = split
        validation_data = self._validation(validation_data)
        x, y, batch_size = self._texts_dataset(
            x, y, batch_size, shuffle, "x", drop_last
        )
        kwargs["drop_last"] = drop_last
        if isinstance(x, keras.utils.PyDataset) or _is_tf_dataset(x):
            # Host texts were shuffled by their dataset (`shuffle` above).
            return super().fit(
                x, validation_data=validation_data, shuffle=False, **kwargs
            )
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            validation_data=validation_data,
            shuffle=shuffle,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        self._check_batch_size(None, batch_size)
        x, y, batch_size = self._texts_dataset(x, y, batch_size, False, "x")
        if isinstance(x, keras.utils.PyDataset) or _is_tf_dataset(x):
            return super().evaluate(x, **kwargs)
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    def _split(self, x, y, split):
        """Keras' `validation_split` for host texts: the last `split` of the rows
        as `(x, y, validation_data)`; None for other inputs (Keras splits arrays
        itself and rejects datasets)."""
        if isinstance(x, keras.utils.PyDataset) or _is_tf_dataset(x):
            return None
        split = v.check_number("validation_split", split, 0.0, 1.0, max_open=True)
        columns = self.host_columns(x, "x")
        if any(is_token_dict(c) for c in columns.values()):
            return None
        sizes = {len(v.check_strings("x", c)) for c in columns.values()}
        if len(sizes) != 1:
            return None  # the column check of fit reports it
        size = sizes.pop()
        cut = size - int(math.floor(size * split))

        def part(rows):
            def take(column):
                if isinstance(column, np.ndarray):
                    return column[rows]
                return list(column)[rows]

            if isinstance(x, dict):
                return {key: take(c) for key, c in x.items()}
            if _is_text_column(x):
                return take(x)
            return type(x)(take(c) for c in x)

        labels = None if y is None else np.asarray(y)
        train = part(slice(0, cut)), None if labels is None else labels[:cut]
        held = part(slice(cut, None)), None if labels is None else labels[cut:]
        return train[0], train[1], held if held[1] is not None else held[0]

    # ------------------------------------------------------------ embeddings out

    def __call__(self, inputs, *args, **kwargs):
        if _is_text_column(inputs):
            self._need_tokenizer("inputs")
            inputs = self.encoder.tokenize(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=False):
        """Sentence embeddings: of a batch (token dict), or of each column of a
        pair / triplet input (a dict or tuple of them, same structure)."""
        if isinstance(inputs, dict) and not is_token_dict(inputs):
            return {k: self.call(t, training) for k, t in inputs.items()}
        if isinstance(inputs, (tuple, list)):
            return type(inputs)(self.call(t, training) for t in inputs)
        return self.encoder(inputs, training=training)

    def encode(self, sentences, batch_size=32, verbose="auto"):
        """The encoder's embeddings of `sentences` (NumPy, float32 (N, d)); see
        `SentenceEncoder.encode`. Makes the model a text encoder for
        `keras_contrastive.evaluation` (`sts_spearman`, `SemanticIndex`, ...)."""
        if not callable(getattr(self.encoder, "encode", None)):
            self._need_tokenizer("sentences")
        return self.encoder.encode(sentences, batch_size=batch_size, verbose=verbose)

    def predict(self, x, batch_size=None, verbose="auto", **kwargs):
        if _is_text_column(x):
            return self.encode(x, batch_size=batch_size or 32, verbose=verbose)
        return super().predict(x, batch_size=batch_size, verbose=verbose, **kwargs)

    # ------------------------------------------------------------ build, state

    def embed(self, tokens, training=False):
        """The encoder's (N, d) float32 embeddings of a batch of tokens."""
        return to_float32(self.encoder(tokens, training=training))

    def build_heads(self, embedding_dim):
        """Creates what depends on the embedding size (nothing by default)."""

    def build(self, input_shape=None):
        # The default build runs the forward pass on a float zero batch; token ids
        # are ints. One call on a tiny batch builds every layer of the encoder
        # (Keras' symbolic build of `fit` checks that all are built).
        probe = {
            "token_ids": ops.zeros((2, 8), "int32"),
            "padding_mask": ops.ones((2, 8), "int32"),
        }
        dim = int(self.encoder(probe, training=False).shape[-1])
        self.embedding_dim = int(dim)
        self.build_heads(self.embedding_dim)
        self.built = True

    def _random_states(self):
        # Every seed generator of the model, the encoder's dropout layers included:
        # saved with the weights so that a resumed run draws the same masks.
        states, seen = [], set()
        for variable in self.variables:
            if variable.name == "seed_generator_state" and id(variable) not in seen:
                seen.add(id(variable))
                states.append(variable)
        return states


def dict_columns(x, counts, families, name):
    """The keys of a dict of columns in order: the first family (tuple of names)
    whose first 2 or 3 names (`counts`) are exactly the dict's keys."""
    keys = set(x)
    for family in families:
        for count in counts:
            if count <= len(family) and keys == set(family[:count]):
                return list(family[:count])
    options = []
    for family in families:
        for count in counts:
            if count <= len(family) and family[:count] not in options:
                options.append(family[:count])
    v.fail(
        name,
        "a tuple of columns, or a dict with the keys "
        + " or ".join(repr(option) for option in options),
        sorted(map(str, keys)),
        received_as=f"{name}.keys()",
    )


def is_string_tensor(x):
    """A TensorFlow string tensor or `tf.TensorSpec` (eager or in a graph)."""
    if not type(x).__module__.startswith("tensorflow"):
        return False
    import tensorflow as tf

    return getattr(x, "dtype", None) == tf.string


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SBERT(_SentenceModel):
    """Sentence-BERT: fine-tunes a sentence encoder on pairs or triplets of texts.

    Sentence-BERT (Reimers & Gurevych 2019, "Sentence-BERT: Sentence Embeddings
    using Siamese BERT-Networks") passes each text of a pair (or triplet) through
    the same encoder (tied weights) and trains the embeddings u, v with one of:

    - `"classification"` (the paper's NLI objective, Sec. 3):
      `o = softmax(W [u; v; |u - v|])`, W of shape (3d, num_labels), cross-entropy
      against integer labels in [0, num_labels). W (`self.classifier`, with a
      bias as in sentence-transformers' `SoftmaxLoss`) is trained with the
      encoder and dropped afterwards.
    - `"regression"` (the paper's STS objective): the cosine similarity of u and v
      regresses the gold score with a mean squared error,
      `mean_i (cos(u_i, v_i) - s_i)^2` (sentence-transformers'
      `CosineSimilarityLoss`). Scores must lie in [-1, 1], the range of a cosine:
      pass `score_range=(0, 5)` for STS Benchmark scores (s = (y - 0) / 5, as
      sentence-transformers' STS-B recipe divides by 5), or scaled labels.
    - `"triplet"` (the paper's triplet objective): for (anchor a, positive p,
      negative n), `max(||a - p|| - ||a - n|| + margin, 0)` with the Euclidean
      distance and margin 1 (the paper's epsilon). `triplet_distance=
      "squared_euclidean"` uses the library's `losses.triplet_margin` (squared
      distances, Schroff et al. 2015), `"cosine"` 1 - cos.
    - `"multiple_negatives"` (default; Henderson et al. 2017, "Efficient Natural
      Language Response Suggestion for Smart Reply"; sentence-transformers'
      `MultipleNegativesRankingLoss`): InfoNCE (van den Oord et al. 2018) of each
      anchor against every positive of the batch,
      `l_i = -log softmax_j(cos(a_i, p_j) / temperature)` at j = i, with
      temperature 0.05 (sentence-transformers' scale 20); an optional third
      column of hard negatives adds every row's negative as a candidate for every
      anchor. It uses `keras_contrastive.losses.info_nce`, which gathers the
      candidates of every replica, and it supports `gradient_cache` (Gao et al.
      2021; sentence-transformers' `CachedMultipleNegativesRankingLoss`): batches
      larger than memory with the full batch's loss and gradients.

    Inputs (`x` of `fit` / `evaluate`): the columns as a tuple, `(sentence1,
    sentence2)` or `(anchor, positive[, negative])`, or as a dict with the keys
    `sentence1`/`sentence2`, `anchor`/`positive`/`negative`,
    `premise`/`hypothesis` or the names given as `columns`. Each column is texts
    (a list, tuple or NumPy array of str), a token dict from
    `encoder.tokenize(texts, sequence_length=...)`, or comes from a
    `keras_contrastive.text.TokenizedTexts` or a `tf.data.Dataset` (string
    tensors or token dicts). Labels are `y` (integers for classification, scores
    for regression); triplet and multiple-negatives batches need none. Strings
    never enter the compiled step: lists are tokenised on the host in a
    `keras.utils.PyDataset` padded to length buckets, and string `tf.data`
    pipelines are mapped through `encoder.tokenize_graph` (module docstring).
    Training texts must not be empty or blank (a `ValueError` names the row).

    Logged metrics: `loss`; `embedding_std` (of the first column's embeddings,
    the collapse monitor); `contrastive_accuracy`, per objective:
    classification accuracy; for `"regression"` the pairwise ranking accuracy of
    the batch: among the pairs of rows (i, j) whose gold scores differ, the
    fraction that the cosines order as the scores do ((1 + Kendall's tau) / 2
    without ties: 0.5 is chance, 1 a perfect ranking, the quantity STS's Spearman
    correlation rewards); for `"triplet"` and `"multiple_negatives"` in-batch
    retrieval: is each anchor's own positive its nearest candidate among every
    positive (and negative) of the batch (cosine; Euclidean distance for
    Euclidean triplets).

    `call` / `predict` return the encoder's sentence embeddings (`predict` takes
    strings too, through `encoder.encode`); `model.encode(texts)` makes the model
    a text encoder for `keras_contrastive.evaluation`. After training, keep
    `model.encoder`.

    Args:
        encoder: a `keras_contrastive.text.SentenceEncoder` (or any Keras layer
            mapping token dicts to (N, d) embeddings; strings then cannot be fed).
        objective: one of "classification", "regression", "triplet",
            "multiple_negatives".
        num_labels: classes of the classification objective (3 for NLI).
        score_range: regression only: `(low, high)` of the gold scores, mapped to
            [0, 1] by (y - low) / (high - low); None takes the labels as they are
            (they must lie in [-1, 1]).
        margin: triplet margin (default 1, the paper's).
        triplet_distance: "euclidean" (the paper's), "squared_euclidean" or
            "cosine".
        temperature: multiple-negatives softmax temperature (0.05 = scale 20).
        columns: optional tuple of the dict keys of the columns, in order.
        gradient_cache: `None`, a `GradientCache` or a chunk size
            (multiple_negatives and triplet only: the classification and
            regression losses are means of per-pair terms, for which the
            optimizer's `gradient_accumulation_steps` is exact).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    import numpy as np
    from keras_contrastive.models import SBERT
    from keras_contrastive.text import (
        BertBackbone,
        SentenceEncoder,
        WordPieceTokenizer,
    )

    words = "a man woman dog cat is plays eats runs sleeps guitar food".split()
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    encoder = SentenceEncoder(
        BertBackbone(len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                     intermediate_dim=32, max_sequence_length=32),
        WordPieceTokenizer(vocabulary, sequence_length=32),
    )
    first = ["a man plays guitar", "a dog runs", "a cat sleeps", "a woman eats"] * 4
    second = ["a man plays", "a dog is running", "a cat", "a woman eats food"] * 4
    scores = np.array([4.5, 4.0, 3.0, 4.8] * 4)  # STS-style, 0 to 5
    model = SBERT(encoder, objective="regression", score_range=(0, 5))
    model.compile(optimizer="adam")
    model.fit((first, second), scores, batch_size=8, epochs=1, verbose=0)
    embeddings = model.predict(["a man plays guitar"])  # (1, 16)
    ```
    """

    supports_gradient_cache = True
    uses_labels = True
    config_attributes = (
        "objective",
        "num_labels",
        "score_range",
        "margin",
        "triplet_distance",
        "temperature",
        "columns",
    )

    def __init__(
        self,
        encoder,
        objective="multiple_negatives",
        num_labels=3,
        score_range=None,
        margin=1.0,
        triplet_distance="euclidean",
        temperature=0.05,
        columns=None,
        gradient_cache=None,
        **kwargs,
    ):
        super().__init__(encoder, gradient_cache=gradient_cache, **kwargs)
        self.objective = v.check_one_of("objective", objective, OBJECTIVES)
        self.num_labels = v.check_int("num_labels", num_labels, 2)
        if score_range is not None:
            score_range = v.check_pair("score_range", score_range)
            if score_range[0] == score_range[1]:
                v.fail("score_range", "a pair (low, high) with low < high", score_range)
        self.score_range = score_range
        self.margin = v.check_number("margin", margin, minimum=0.0)
        self.triplet_distance = v.check_one_of(
            "triplet_distance", triplet_distance, TRIPLET_DISTANCES
        )
        self.temperature = v.check_positive_number("temperature", temperature)
        if columns is not None:
            if not isinstance(columns, (tuple, list)) or not all(
                isinstance(c, str) for c in columns
            ):
                v.fail(
                    "columns", "a tuple of 2 or 3 dict keys (str)", columns, TypeError
                )
            if len(columns) not in (2, 3) or len(set(columns)) != len(columns):
                v.fail("columns", "a tuple of 2 or 3 distinct dict keys", columns)
            columns = tuple(columns)
        self.columns = columns
        if self.gradient_cache is not None and self.objective in LABELLED:
            v.fail(
                "gradient_cache",
                f"None for objective={self.objective!r}: its loss is a mean of "
                "per-pair terms, so the optimizer's `gradient_accumulation_steps` "
                "gives the large-batch gradient exactly",
                self.gradient_cache,
            )
        # Only the labelled objectives read `y`: the step then passes `(x, y)`.
        self.labelled = self.objective in LABELLED
        self.uses_labels = self.labelled
        self.classifier = None
        if self.objective == "classification":
            self.classifier = keras.layers.Dense(self.num_labels, name="classifier")

    def describe(self):
        return f"SBERT(objective={self.objective!r})"

    def get_config(self):
        config = super().get_config()
        if self.score_range is not None:
            config["score_range"] = list(self.score_range)
        if self.columns is not None:
            config["columns"] = list(self.columns)
        return config

    # ------------------------------------------------------------ columns

    def _column_counts(self):
        if self.objective == "triplet":
            return (3,)
        if self.objective == "multiple_negatives":
            return (2, 3)
        return (2,)

    def _default_names(self):
        if self.columns is not None:
            return self.columns
        if self.objective in LABELLED:
            return ("sentence1", "sentence2")
        return ("anchor", "positive", "negative")

    def _families(self):
        if self.columns is not None:
            return (self.columns,)
        if self.objective in LABELLED:
            return (
                ("sentence1", "sentence2"),
                ("premise", "hypothesis"),
                ("anchor", "positive"),
            )
        return (("anchor", "positive", "negative"), ("sentence1", "sentence2"))

    def host_columns(self, x, name="x"):
        counts = self._column_counts()
        want = " or ".join(map(str, counts))
        if isinstance(x, dict) and not is_token_dict(x):
            names = dict_columns(x, counts, self._families(), name)
            return {key: x[key] for key in names}
        if isinstance(x, (tuple, list)) and not _flat_list(x):
            if len(x) not in counts:
                v.fail(
                    name,
                    f"{want} columns for {self.describe()}",
                    len(x),
                    received_as=f"len({name})",
                )
            return dict(zip(self._default_names(), x))
        if _flat_list(x) or is_token_dict(x) or is_string_tensor(x):
            v.fail(
                name,
                f"{want} columns for {self.describe()} (a tuple such as "
                "(sentence1, sentence2) or a dict of columns), not one column. A "
                "tf.data element (a, b) is read by Keras as (x, y): yield "
                "((a, b), y) or a dict",
                v.summarize(x),
            )
        v.fail(
            name,
            f"a tuple or dict of {want} text columns",
            v.summarize(x),
            TypeError,
        )

    # ------------------------------------------------------------ labels

    def check_labels(self, y, num_rows, name="y"):
        if not self.labelled:
            return None  # ignored, like Keras' y for a label-free method
        if y is None:
            what = (
                f"integer class labels in [0, {self.num_labels})"
                if self.objective == "classification"
                else "similarity scores"
            )
            v.fail(
                name,
                f"the labels of each pair ({what}) for {self.describe()}: pass "
                "`y` to fit (or yield (x, y) batches)",
                y,
            )
        if num_rows is None:
            return y
        labels = np.asarray(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.dtype.kind not in "biuf" or labels.ndim != 1:
            v.fail(
                name,
                "a 1-D array of numbers, one per pair",
                v.summarize(y),
                TypeError,
            )
        if len(labels) != num_rows:
            v.fail(
                name,
                f"one label per pair ({num_rows} pairs)",
                len(labels),
                received_as=f"len({name})",
            )
        if self.objective == "classification":
            if labels.dtype.kind == "f" and np.any(labels != np.round(labels)):
                v.fail(name, "integer class labels", v.summarize(y), TypeError)
            if labels.min() < 0 or labels.max() >= self.num_labels:
                v.fail(
                    name,
                    f"class labels in [0, {self.num_labels}) (num_labels="
                    f"{self.num_labels})",
                    v.shown_as(f"labels from {labels.min()} to {labels.max()}"),
                )
            return labels.astype("int32")
        labels = labels.astype("float32")
        if not np.all(np.isfinite(labels)):
            v.fail(name, "finite scores", v.shown_as("scores with NaN or inf"))
        low, high = self.score_range or (-1.0, 1.0)
        if labels.min() < low or labels.max() > high:
            hint = (
                f"in score_range={self.score_range}"
                if self.score_range
                else "in [-1, 1], the range of a cosine (pass score_range=(0, 5) "
                "for STS Benchmark scores, or scale them)"
            )
            v.fail(
                name,
                f"scores {hint}",
                v.shown_as(f"scores from {labels.min():g} to {labels.max():g}"),
            )
        return labels

    def _targets(self, y):
        y = ops.reshape(y, (-1,))
        if self.objective == "classification":
            return ops.cast(y, "int32")
        y = ops.cast(y, "float32")
        if self.score_range is not None:
            low, high = self.score_range
            y = (y - low) * (1.0 / (high - low))
        return y

    # ------------------------------------------------------------ method hooks

    def build_heads(self, embedding_dim):
        if self.classifier is not None and not self.classifier.built:
            self.classifier.build((None, 3 * embedding_dim))

    def forward_pass(self, x, training=False):
        if self.labelled:
            x, y = x
        columns = list(self.host_columns(x).values())
        embeddings = [self.embed(column, training) for column in columns]
        if self.objective == "classification":
            u, w = embeddings
            features = ops.concatenate([u, w, ops.abs(u - w)], axis=-1)
            logits = to_float32(self.classifier(features, training=training))
            return {"u": u, "v": w, "logits": logits, "labels": self._targets(y)}
        if self.objective == "regression":
            u, w = embeddings
            return {"u": u, "v": w, "scores": self._targets(y)}
        names = ("anchor", "positive", "negative")
        return dict(zip(names, embeddings))

    def compute_contrastive_loss(self, outputs):
        objective = self.objective
        if objective == "classification":
            logits, labels = outputs["logits"], outputs["labels"]
            picked = ops.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
            return ops.mean(ops.logsumexp(logits, axis=1) - picked)
        if objective == "regression":
            cosine = _row_cosine(outputs["u"], outputs["v"])
            return ops.mean(ops.square(cosine - outputs["scores"]))
        if objective == "triplet":
            return ops.mean(self._triplet_terms(outputs))
        negatives = outputs.get("negative")
        if negatives is not None:
            # Every row's hard negative is a candidate for every anchor.
            negatives = distribute.gather(negatives)
        return ops.mean(
            info_nce(
                outputs["anchor"],
                outputs["positive"],
                negatives=negatives,
                temperature=self.temperature,
            )
        )

    def _triplet_terms(self, outputs):
        a, p, n = outputs["anchor"], outputs["positive"], outputs["negative"]
        if self.triplet_distance == "squared_euclidean":
            return triplet_margin(a, p, n, margin=self.margin)
        if self.triplet_distance == "cosine":
            d_ap, d_an = 1.0 - _row_cosine(a, p), 1.0 - _row_cosine(a, n)
        else:
            d_ap = safe_sqrt(ops.sum(ops.square(a - p), axis=1))
            d_an = safe_sqrt(ops.sum(ops.square(a - n), axis=1))
        return ops.relu(d_ap - d_an + self.margin)

    def compute_contrastive_stats(self, outputs):
        objective = self.objective
        if objective == "classification":
            predicted = ops.cast(ops.argmax(outputs["logits"], axis=1), "int32")
            hits = ops.equal(predicted, outputs["labels"])
            accuracy = ops.mean(ops.cast(hits, "float32"))
            first = outputs["u"]
        elif objective == "regression":
            accuracy = ranking_accuracy(
                _row_cosine(outputs["u"], outputs["v"]), outputs["scores"]
            )
            first = outputs["u"]
        else:
            first = outputs["anchor"]
            accuracy = self._retrieval_accuracy(outputs)
        return {"contrastive_accuracy": accuracy, "embedding_std": embedding_std(first)}

    def _retrieval_accuracy(self, outputs):
        anchor = outputs["anchor"]
        candidates = [distribute.gather(outputs["positive"])]
        if outputs.get("negative") is not None:
            candidates.append(distribute.gather(outputs["negative"]))
        candidates = ops.concatenate(candidates, axis=0)
        if self.objective == "triplet" and self.triplet_distance != "cosine":
            similarity = -pairwise_distances(anchor, candidates)
        else:
            similarity = ops.matmul(
                l2_normalize(anchor), ops.transpose(l2_normalize(candidates))
            )
        n = ops.shape(anchor)[0]
        positive = ops.arange(n, dtype="int32") + distribute.replica_offset(n)
        return top1_accuracy(similarity, positive)


def _row_cosine(a, b):
    return ops.sum(l2_normalize(to_float32(a)) * l2_normalize(to_float32(b)), axis=1)


def ranking_accuracy(predicted, gold):
    """Fraction of row pairs (i, j) with gold_i != gold_j that `predicted` orders
    as `gold` does (ties in `predicted` count one half); 0.5 when no pair has
    different gold scores.

    For pairs without ties this is (1 + Kendall's tau) / 2 (Kendall 1938), the
    pairwise form of the rank agreement that STS's Spearman correlation measures.
    """
    predicted, gold = to_float32(predicted), to_float32(gold)
    dp = predicted[:, None] - predicted[None, :]
    dg = gold[:, None] - gold[None, :]
    ordered = ops.cast(dg > 0, "float32")  # each unordered pair counted once
    agree = ops.cast(dp > 0, "float32") + 0.5 * ops.cast(ops.equal(dp, 0.0), "float32")
    count = ops.sum(ordered)
    return ops.where(count > 0, ops.sum(ordered * agree) / ops.maximum(count, 1.0), 0.5)
