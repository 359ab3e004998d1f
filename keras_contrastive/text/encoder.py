"""`SentenceEncoder`: strings -> (N, d) float32 sentence embeddings (Sentence-BERT)."""

import os

import keras
import numpy as np
from keras import ops

from keras_contrastive import _validation as v
from keras_contrastive.text.pooling import POOLING_MODES, SentencePooling
from keras_contrastive.text.tokenizer import WordPieceTokenizer

_TOKEN_KEYS = ("token_ids", "padding_mask")


def _is_graph_string_tensor(x):
    """A symbolic TensorFlow string tensor (tf.function, tf.data map, export)."""
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "dtype"):
        import tensorflow as tf

        return x.dtype == tf.string and not tf.executing_eagerly()
    return False


def _is_text(x):
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO"
    if isinstance(x, (list, tuple)):
        return len(x) == 0 or not hasattr(x[0], "shape")
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "dtype"):
        import tensorflow as tf

        return x.dtype == tf.string
    return False


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SentenceEncoder(keras.Model):
    """A Sentence-BERT encoder: transformer backbone + pooling (+ L2 normalisation).

    Sentence-BERT (Reimers & Gurevych 2019) embeds a sentence as the pooled token
    embeddings of a pretrained transformer; fine-tuned with a siamese objective,
    cosine similarity of the embeddings then measures semantic similarity. This
    model is that network, and takes strings:

    ```python
    encoder = SentenceEncoder.from_preset(folder)  # e.g. all-MiniLM-L6-v2
    embeddings = encoder.encode(["A man is eating.", "Someone eats."])  # (2, 384)
    ```

    Tokenisation and the network are separate steps:

    - `encoder.tokenize(texts)` runs on the host (Hugging Face's Rust tokenizer,
      the one sentence-transformers uses) and returns a dict of int32 NumPy
      arrays of shape (N, L): `token_ids` and `padding_mask` (1 = token).
    - `encoder(token_dict, training=...)` is the network: a Keras model call that
      works inside any compiled training step (jitted JAX, `tf.function`, torch),
      with the backbone's dropout active when `training=True`. It returns (N, d)
      float32 embeddings.
    - `encoder(texts)` on the host (a list / NumPy array of str, or an eager TF
      string tensor) is the convenience of both; `encoder.encode(texts)` adds
      batching, length sorting and a progress bar, and returns NumPy.

    Training on strings (the SBERT model built on this encoder):

    - JAX and PyTorch have no string tensors, so strings never enter the compiled
      step. Tokenise in the data pipeline: a `keras.utils.PyDataset` whose
      `__getitem__` returns `encoder.tokenize(batch_texts,
      sequence_length=encoder.sequence_length)` (one fixed shape, so `jax.jit`
      compiles once): `keras_contrastive.text.TokenizedTexts(texts, encoder)`
      is that dataset, for single texts or columns of pairs; or `tf.data` with
      `encoder.tokenize_graph` in a `map` (TensorFlow installed, any backend).
      A pair of sentences becomes two such dicts (e.g. `{"anchor": ...,
      "positive": ...}`), and the model's `train_step` calls
      `encoder(batch["anchor"], training=True)`.
    - On TensorFlow the same works; in addition a `tf.data` pipeline may yield raw
      strings: inside a traced step `encoder(string_tensor)` tokenises with
      TensorFlow ops (`tokenize_graph`, padded to `sequence_length`).

    Args:
        backbone: a Keras model mapping `{"token_ids", "segment_ids",
            "padding_mask"}` (int (N, L)) to the token embeddings (N, L, d), or to
            a dict holding them under `sequence_output` (keras-hub backbones).
            `keras_contrastive.text.BertBackbone` or keras-hub's `BertBackbone`.
        tokenizer: a `WordPieceTokenizer` (or its config dict).
        pooling: "mean" (default, Sentence-BERT's best), "cls" or "max"; see
            `SentencePooling`. Padding is masked in all three.
        normalize: L2-normalise the embeddings (unit length: dot product = cosine).
        sequence_length: most tokens per text, [CLS] and [SEP] included (default:
            the tokenizer's). Longer texts are truncated to their first
            `sequence_length - 2` word pieces, as sentence-transformers does.

    Empty strings are valid texts: they tokenise to `[CLS] [SEP]` and embed to
    what the network makes of those two tokens (as in sentence-transformers).
    Saving: `model.save("encoder.keras")` keeps the tokenizer's vocabulary in the
    model's config, so `keras.models.load_model` needs no original folder.
    `export(path)` writes a TensorFlow SavedModel that takes strings.
    """

    def __init__(
        self,
        backbone,
        tokenizer,
        pooling="mean",
        normalize=False,
        sequence_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone = v.check_layer("backbone", backbone)
        if isinstance(tokenizer, dict):
            tokenizer = WordPieceTokenizer.from_config(tokenizer)
        self.tokenizer = v.check_instance(
            "tokenizer", tokenizer, WordPieceTokenizer, "a WordPieceTokenizer"
        )
        self.pooling = v.check_one_of("pooling", pooling, POOLING_MODES)
        self.normalize = v.check_bool("normalize", normalize)
        limit = getattr(backbone, "max_sequence_length", None)
        if sequence_length is None:
            sequence_length = tokenizer.sequence_length
            if limit is not None:
                sequence_length = min(sequence_length, limit)
        sequence_length = v.check_int("sequence_length", sequence_length, 2, limit)
        self.sequence_length = sequence_length
        if tokenizer.sequence_length != sequence_length:
            config = tokenizer.get_config()
            config["sequence_length"] = sequence_length
            self.tokenizer = WordPieceTokenizer.from_config(config)
        self.pooler = SentencePooling(self.pooling, name="pooling")

    # -- the network --

    @property
    def embedding_dim(self):
        """d, the size of an embedding."""
        dim = getattr(self.backbone, "hidden_dim", None)
        if dim is None:
            dim = self.backbone.output_shape
            dim = dim["sequence_output"][-1] if isinstance(dim, dict) else dim[-1]
        return int(dim)

    def __call__(self, inputs, *args, **kwargs):
        if _is_text(inputs):
            inputs = self.tokenize(inputs)
        elif inputs is None or not isinstance(inputs, dict):
            v.fail(
                "inputs",
                "a batch of strings or a dict with token_ids and padding_mask "
                "(from `tokenize`)",
                inputs,
                TypeError,
            )
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None):
        missing = [key for key in _TOKEN_KEYS if key not in inputs]
        if missing:
            v.fail(
                "inputs",
                "a dict with token_ids and padding_mask",
                sorted(inputs),
                detail=f"Missing: {missing}",
            )
        token_ids = ops.cast(inputs["token_ids"], "int32")
        padding_mask = ops.cast(inputs["padding_mask"], "int32")
        segment_ids = inputs.get("segment_ids")
        if segment_ids is None:
            segment_ids = ops.zeros_like(token_ids)
        sequence = self.backbone(
            {
                "token_ids": token_ids,
                "segment_ids": ops.cast(segment_ids, "int32"),
                "padding_mask": padding_mask,
            },
            training=training,
        )
        if isinstance(sequence, dict):
            sequence = sequence["sequence_output"]
        pooled = self.pooler(sequence, padding_mask)
        if self.normalize:
            pooled = pooled / ops.maximum(
                ops.sqrt(ops.sum(ops.square(pooled), axis=-1, keepdims=True)), 1e-12
            )
        return pooled

    def compute_output_shape(self, input_shape):
        return (input_shape["token_ids"][0], self.embedding_dim)

    def build(self, input_shape=None):
        if not self.backbone.built:
            self.backbone.build(
                {
                    key: (None, None)
                    for key in ("token_ids", "segment_ids", "padding_mask")
                }
            )
        self.built = True

    # -- tokenisation --

    def tokenize(self, texts, sequence_length=None):
        """Strings -> `{"token_ids", "padding_mask"}`, int32 arrays (N, L).

        On the host (list, tuple, NumPy array of str, eager TF tensor): NumPy
        arrays, padded to the longest text rounded up to a multiple of 8, or to
        exactly `sequence_length`. A symbolic TF string tensor (inside
        `tf.function` or a `tf.data` map) goes through `tokenize_graph`.
        """
        if _is_graph_string_tensor(texts):
            return self.tokenize_graph(texts, sequence_length)
        if sequence_length is not None:
            sequence_length = v.check_int(
                "sequence_length", sequence_length, 2, self.sequence_length
            )
        return self.tokenizer(v.check_strings("texts", texts), sequence_length)

    def tokenize_graph(self, texts, sequence_length=None):
        """Tokenises a `tf.string` tensor with TensorFlow ops (tf.data, export).

        Padded to exactly `sequence_length` (default: the encoder's). Needs
        TensorFlow installed, not the TensorFlow backend: usable in a `tf.data`
        pipeline feeding JAX or PyTorch.
        """
        if sequence_length is not None:
            sequence_length = v.check_int(
                "sequence_length", sequence_length, 2, self.sequence_length
            )
        return self.tokenizer.tokenize_graph(texts, sequence_length)

    # -- encoding --

    def encode(self, sentences, batch_size=32, verbose="auto"):
        """Embeds sentences in batches; returns a float32 NumPy array (N, d).

        Sentences are tokenised once, sorted by length so that each batch pads to
        about its own longest sentence (as sentence-transformers does), run
        through the network with `predict_on_batch` (compiled: `jax.jit`,
        `tf.function`) and returned in the input order.

        Args:
            sentences: a string, list or tuple of strings, NumPy array of str or
                eager TF string tensor (a single string gives shape (1, d)).
            batch_size: sentences per network call.
            verbose: 0 (silent), 1 (progress bar), 2 (one line at the end) or
                "auto" (a bar when there is more than one batch).
        """
        sentences = v.check_strings("sentences", sentences)
        batch_size = v.check_positive_int("batch_size", batch_size)
        if verbose not in ("auto", 0, 1, 2):
            v.fail("verbose", 'one of "auto", 0, 1, 2', verbose)
        pieces = self.tokenizer.word_pieces(sentences)
        order = np.argsort([-len(ids) for ids in pieces], kind="stable")
        batches = -(-len(sentences) // batch_size)
        if verbose == "auto":
            verbose = 1 if batches > 1 else 0
        progress = keras.utils.Progbar(
            len(sentences), verbose=verbose, unit_name="sentence"
        )
        output = np.empty((len(sentences), self.embedding_dim), np.float32)
        for start in range(0, len(sentences), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer.pack([pieces[i] for i in rows])
            if len(rows) < batch_size < len(sentences):
                # A full-size last batch: no new shape to compile (jax.jit).
                extra = ((0, batch_size - len(rows)), (0, 0))
                batch = {key: np.pad(value, extra) for key, value in batch.items()}
            embeddings = self.predict_on_batch(batch)[: len(rows)]
            output[rows] = np.asarray(
                keras.ops.convert_to_numpy(embeddings), np.float32
            )
            progress.add(len(rows))
        return output

    # -- saving --

    def get_config(self):
        config = super().get_config()
        config.update(
            backbone=keras.saving.serialize_keras_object(self.backbone),
            tokenizer=self.tokenizer.get_config(),
            pooling=self.pooling,
            normalize=self.normalize,
            sequence_length=self.sequence_length,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def export(self, filepath, format="tf_saved_model", verbose=True, **kwargs):
        """Writes a TensorFlow SavedModel that embeds raw strings.

        The SavedModel's `serve` signature takes a `tf.string` tensor of shape
        (N,) and returns (N, d) float32 embeddings; tokenisation runs inside it
        as TensorFlow ops (`tokenize_graph`, padded to `sequence_length`), so TF
        Serving or `tf.saved_model.load` need no Python tokenizer.

        Needs the TensorFlow backend: the string ops and the network must be one
        TensorFlow graph. From JAX or PyTorch, save the model (`.keras`), load it
        in a process with `KERAS_BACKEND=tensorflow` and export there.
        """
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(
                "`SentenceEncoder.export` writes a TensorFlow SavedModel that "
                "tokenises strings with TensorFlow ops, so it needs the TensorFlow "
                f"backend; this process runs KERAS_BACKEND={keras.backend.backend()}. "
                "Save the model with `encoder.save('encoder.keras')`, then load and "
                "export it in a process with KERAS_BACKEND=tensorflow."
            )
        if format != "tf_saved_model":
            v.fail("format", '"tf_saved_model"', format)
        import tensorflow as tf

        if not self.built:
            self.build()
        graph = self.tokenizer.graph_tokenizer()
        archive = keras.export.ExportArchive()
        archive.track(self)
        archive._tf_trackable.tokenizer_tables = graph.trackables()
        length = self.sequence_length
        tokenizer = self.tokenizer

        def serve(texts):
            tokens = tokenizer.tokenize_graph(texts, length)
            return self.call(tokens, training=False)

        archive.add_endpoint(
            "serve", serve, input_signature=[tf.TensorSpec([None], tf.string)]
        )
        archive.write_out(os.fspath(filepath), verbose=verbose, **kwargs)

    # -- presets --

    @classmethod
    def from_preset(
        cls,
        name_or_folder,
        pooling=None,
        normalize=None,
        sequence_length=None,
        load_weights=True,
        **kwargs,
    ):
        """An encoder from a local model folder or a keras-hub preset.

        Args:
            name_or_folder: a folder in Hugging Face / sentence-transformers layout
                (config.json, model.safetensors, tokenizer.json or vocab.txt, and,
                when present, modules.json, 1_Pooling/config.json and
                sentence_bert_config.json, which set pooling, normalisation and
                the sequence length); or a keras-hub preset (a name such as
                "bert_base_en_uncased", or a folder saved by keras-hub), which
                needs keras-hub installed (and its download cache or network).
            pooling, normalize, sequence_length: override the folder's settings
                (defaults without sentence-transformers files: "mean", False,
                the tokenizer's `model_max_length` capped at 512).
            load_weights: False builds the architecture with random weights.
            **kwargs: passed to the `SentenceEncoder` constructor (e.g. `name`).
        """
        from keras_contrastive.text import hf

        if not isinstance(name_or_folder, (str, os.PathLike)):
            v.fail(
                "name_or_folder",
                "a folder path or a keras-hub preset name",
                name_or_folder,
                TypeError,
            )
        path = os.fspath(name_or_folder)
        if os.path.isdir(path) and hf.is_hf_folder(path):
            parts = hf.load_folder(path, sequence_length, load_weights_=load_weights)
        elif os.path.isdir(path) and not os.path.isfile(
            os.path.join(path, "config.json")
        ):
            v.fail(
                "name_or_folder",
                "a folder with config.json (Hugging Face or keras-hub layout)",
                path,
            )
        else:
            parts = _from_keras_hub(path, sequence_length, load_weights)
        if pooling is not None:
            parts["pooling"] = pooling
        if normalize is not None:
            parts["normalize"] = normalize
        return cls(**parts, **kwargs)


def _from_keras_hub(name, sequence_length, load_weights):
    try:
        import keras_hub
    except ImportError:
        v.fail(
            "name_or_folder",
            "a local Hugging Face / sentence-transformers folder, or a keras-hub "
            "preset name with keras-hub installed (pip install keras-hub)",
            name,
            detail="It is not a folder here and keras-hub is not installed",
        )
    backbone = keras_hub.models.Backbone.from_preset(name, load_weights=load_weights)
    hub_tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(name)
    if not isinstance(hub_tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
        v.fail(
            "name_or_folder",
            "a preset with a WordPiece tokenizer (BERT family)",
            name,
            detail=f"Its tokenizer is a {type(hub_tokenizer).__name__}",
        )
    limit = getattr(backbone, "max_sequence_length", 512)
    special = {}
    for attribute, key in (
        ("cls_token", "cls_token"),
        ("sep_token", "sep_token"),
        ("pad_token", "pad_token"),
        ("mask_token", "mask_token"),
        ("oov_token", "unk_token"),
    ):
        token = getattr(hub_tokenizer, attribute, None)
        if isinstance(token, str):
            special[key] = token
    tokenizer = WordPieceTokenizer(
        vocabulary=list(hub_tokenizer.get_vocabulary()),
        sequence_length=sequence_length or min(512, limit),
        lowercase=bool(hub_tokenizer.lowercase),
        strip_accents=True if getattr(hub_tokenizer, "strip_accents", False) else None,
        **special,
    )
    return {
        "backbone": backbone,
        "tokenizer": tokenizer,
        "pooling": "mean",
        "normalize": False,
        "sequence_length": sequence_length,
    }
