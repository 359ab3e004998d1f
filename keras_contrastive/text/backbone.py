"""A BERT encoder (Devlin et al. 2019) in Keras 3 ops, for every backend.

`BertBackbone` is a functional Keras model with the input and output convention of
keras-hub's `BertBackbone`: a dict `{"token_ids", "segment_ids", "padding_mask"}`
of int arrays of shape (N, L) in, the sequence output (N, L, hidden_dim) out. Its
layers mirror Hugging Face's `BertModel` one to one (post-layer-norm transformer
blocks, exact-erf GELU, learned absolute positions, token-type embeddings), so
checkpoints in that layout load by name (`keras_contrastive.text.hf`), and it
needs neither keras-hub nor TensorFlow.
"""

import random

import keras
from keras import ops

from keras_contrastive import _validation as v

_PACKAGE = "keras_contrastive"


def _dropout(rate):
    """A `Dropout` with an explicit seed.

    Keras' PyTorch backend draws an unseeded `Dropout`'s masks from torch's global
    generator, outside the layer's seed-generator state: gradient caching could
    not replay them and a saved model would not resume them. A seed (drawn like
    Keras' default, from Python's `random`, which `keras.utils.set_random_seed`
    seeds) makes every backend draw from the state.
    """
    return keras.layers.Dropout(rate, seed=random.randint(1, int(1e9)))


def _initializer(std):
    return keras.initializers.TruncatedNormal(stddev=std)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BertEmbeddings(keras.layers.Layer):
    """Word + position + token-type embeddings, then layer norm and dropout."""

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        init = _initializer(initializer_range)
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, embeddings_initializer=init, name="token"
        )
        self.position_embedding = keras.layers.Embedding(
            max_sequence_length,
            hidden_dim,
            embeddings_initializer=init,
            name="position",
        )
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, embeddings_initializer=init, name="segment"
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="layer_norm"
        )
        self.dropout_layer = _dropout(dropout)

    def build(self, input_shape):
        self.token_embedding.build((None, None))
        self.position_embedding.build((None, None))
        self.segment_embedding.build((None, None))
        self.layer_norm.build((None, None, self.hidden_dim))
        self.built = True

    def call(self, token_ids, segment_ids, training=None):
        length = ops.shape(token_ids)[1]
        positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
        x = (
            self.token_embedding(token_ids)
            + self.position_embedding(positions)
            + self.segment_embedding(segment_ids)
        )
        return self.dropout_layer(self.layer_norm(x), training=training)

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return (*token_ids_shape, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            hidden_dim=self.hidden_dim,
            max_sequence_length=self.max_sequence_length,
            num_segments=self.num_segments,
            dropout=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BertLayer(keras.layers.Layer):
    """One post-layer-norm transformer block: self-attention, then feed-forward.

    `padding_mask` (N, L), 1 for tokens and 0 for padding: padded keys get no
    attention (their scores are set to the dtype's lowest value, as in Hugging
    Face's BERT), so padding never changes the real tokens' outputs.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        attention_dropout=0.1,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            v.fail(
                "hidden_dim",
                f"a multiple of num_heads={num_heads}",
                hidden_dim,
            )
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        init = _initializer(initializer_range)

        def dense(units, name):
            return keras.layers.Dense(units, kernel_initializer=init, name=name)

        self.query = dense(hidden_dim, "query")
        self.key = dense(hidden_dim, "key")
        self.value = dense(hidden_dim, "value")
        self.attention_output = dense(hidden_dim, "attention_output")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="attention_layer_norm"
        )
        self.intermediate = dense(intermediate_dim, "intermediate")
        self.output_dense = dense(hidden_dim, "output")
        self.output_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, name="output_layer_norm"
        )
        self.attention_dropout_layer = _dropout(attention_dropout)
        self.dropout_layer = _dropout(dropout)

    def build(self, input_shape):
        shape = (None, None, self.hidden_dim)
        for layer in (self.query, self.key, self.value, self.attention_output):
            layer.build(shape)
        self.attention_norm.build(shape)
        self.intermediate.build(shape)
        self.output_dense.build((None, None, self.intermediate_dim))
        self.output_norm.build(shape)
        self.built = True

    def _activation(self, x):
        if self.activation == "gelu":  # BERT's GELU is the exact (erf) one
            return keras.activations.gelu(x, approximate=False)
        if self.activation == "gelu_new":
            return keras.activations.gelu(x, approximate=True)
        return keras.activations.get(self.activation)(x)

    def _heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        head_dim = self.hidden_dim // self.num_heads
        x = ops.reshape(x, (batch, length, self.num_heads, head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, x, padding_mask, training=None):
        head_dim = self.hidden_dim // self.num_heads
        q = self._heads(self.query(x))
        k = self._heads(self.key(x))
        vals = self._heads(self.value(x))
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        scores = scores / ops.cast(ops.sqrt(float(head_dim)), scores.dtype)
        keep = ops.cast(padding_mask, "bool")[:, None, None, :]
        scores = ops.where(keep, scores, ops.cast(_lowest(scores.dtype), scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        weights = self.attention_dropout_layer(weights, training=training)
        context = ops.matmul(weights, vals)
        context = ops.transpose(context, (0, 2, 1, 3))
        context = ops.reshape(context, ops.shape(x))
        attended = self.dropout_layer(self.attention_output(context), training=training)
        x = self.attention_norm(x + attended)
        hidden = self.output_dense(self._activation(self.intermediate(x)))
        hidden = self.dropout_layer(hidden, training=training)
        return self.output_norm(x + hidden)

    def compute_output_shape(self, x_shape, padding_mask_shape=None):
        return x_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            initializer_range=self.initializer_range,
        )
        return config


def _lowest(dtype):
    name = keras.backend.standardize_dtype(dtype)
    return {"float16": -65504.0, "bfloat16": -3.38e38}.get(name, -3.4028234e38)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BertBackbone(keras.Model):
    """A BERT encoder: token ids -> contextual token embeddings.

    Inputs: a dict of int arrays of shape (N, L): `token_ids`, `padding_mask`
    (1 = token, 0 = padding) and `segment_ids` (token types; all zeros for single
    sentences). Output: the last layer's hidden states, (N, L, hidden_dim). The
    same convention as keras-hub's `BertBackbone` (whose output is a dict with
    `sequence_output`), so either can sit inside a `SentenceEncoder`.

    Args:
        vocabulary_size: rows of the token embedding.
        num_layers, num_heads, hidden_dim, intermediate_dim: the transformer's
            size (all-MiniLM-L6-v2: 6, 12, 384, 1536; BERT-base: 12, 12, 768, 3072).
        dropout: dropout on embeddings, attention outputs and feed-forward
            outputs (Hugging Face's `hidden_dropout_prob`).
        attention_dropout: dropout on attention weights.
        max_sequence_length: rows of the position embedding (longest input).
        num_segments: rows of the token-type embedding.
        activation: the feed-forward activation ("gelu" is exact-erf GELU).
        layer_norm_epsilon, initializer_range: as in Hugging Face's config.
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        intermediate_dim=3072,
        dropout=0.1,
        attention_dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
        embeddings = BertEmbeddings(
            vocabulary_size,
            hidden_dim,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            initializer_range=initializer_range,
            dtype=dtype,
            name="embeddings",
        )
        x = embeddings(token_ids, segment_ids)
        for index in range(num_layers):
            x = BertLayer(
                hidden_dim,
                num_heads,
                intermediate_dim,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                initializer_range=initializer_range,
                dtype=dtype,
                name=f"transformer_layer_{index}",
            )(x, padding_mask)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            outputs=x,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
