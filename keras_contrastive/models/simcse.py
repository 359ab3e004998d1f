"""SimCSE (Gao et al. 2021): a sentence and itself through dropout, a positive pair."""

import keras

from keras_contrastive import _validation as v
from keras_contrastive.losses import info_nce
from keras_contrastive.models.sbert import (
    _flat_list,
    _is_text_column,
    _SentenceModel,
    dict_columns,
    is_string_tensor,
    is_token_dict,
)

_PAIR = ("anchor", "positive")


@keras.saving.register_keras_serializable(package="keras_contrastive")
class SimCSE(_SentenceModel):
    """Unsupervised SimCSE: contrastive learning of sentence embeddings from dropout.

    Gao, Yao & Chen 2021 ("SimCSE: Simple Contrastive Learning of Sentence
    Embeddings", Sec. 3, eq. 4) pass each sentence of a batch through the encoder
    twice with dropout active: the two embeddings h_i, h_i^+ differ only by the
    dropout masks and form the positive pair, every other sentence's second
    embedding is a negative:

        l_i = -log [ exp(cos(h_i, h_i^+) / tau) / sum_j exp(cos(h_i, h_j^+) / tau) ]

    with tau = 0.05, i.e. `keras_contrastive.losses.info_nce(h, h_plus,
    temperature)` (which gathers the candidates of every replica). The paper
    found no discrete augmentation (cropping, word deletion, synonyms) better
    than dropout alone; `augmenter` may still edit the second view's text (for
    instance `keras_contrastive.text.RandomWordDropout(0.1)`), on the host or in
    `tf.data`, never in the compiled step.

    The encoder must have dropout (BERT's is 0.1): without it both views are
    identical and the loss only pushes sentences apart. In `evaluate` the
    networks run in inference mode, so the two views are the same embedding.

    Inputs (`x` of `fit`; no labels): a list (tuple, NumPy array) of strings,
    tokenised on the host in a `keras.utils.PyDataset` padded to length buckets;
    a `tf.data.Dataset` of string batches (tokenised by `encoder.tokenize_graph`
    in the pipeline, any backend); a `keras_contrastive.text.TokenizedTexts`; or
    token dicts (`encoder.tokenize(texts, sequence_length=...)`). A dict with the
    columns `anchor` and `positive` gives the second view's text explicitly. See
    `SBERT` for how each input kind reaches the step.

    Logs `loss`, `contrastive_accuracy` (is h_i^+ the nearest of the batch's
    second views to h_i) and `embedding_std`. `call` / `predict` / `encode`
    return the encoder's embeddings; it supports `gradient_cache` (the forward
    pass is row-wise; the dropout masks are replayed exactly).

    Args:
        encoder: a `keras_contrastive.text.SentenceEncoder` (or a Keras layer from
            token dicts to (N, d) embeddings) with dropout.
        temperature: tau (default 0.05, the paper's).
        augmenter: optional callable on a batch of strings (a text augmentation
            layer) applied to the second view's text.
        gradient_cache: `None`, a `GradientCache` or a chunk size.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    ```python
    from keras_contrastive.models import SimCSE
    from keras_contrastive.text import (
        BertBackbone,
        SentenceEncoder,
        WordPieceTokenizer,
    )

    words = "a man woman dog cat is plays eats runs sleeps guitar food".split()
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    encoder = SentenceEncoder(
        BertBackbone(len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                     intermediate_dim=32, max_sequence_length=32, dropout=0.1),
        WordPieceTokenizer(vocabulary, sequence_length=32),
    )
    sentences = ["a man plays guitar", "a dog runs", "a cat sleeps",
                 "a woman eats food"] * 4
    model = SimCSE(encoder, temperature=0.05)
    model.compile(optimizer="adam")
    model.fit(sentences, batch_size=8, epochs=1, verbose=0)
    embeddings = model.encode(sentences[:2])  # (2, 16)
    ```
    """

    supports_gradient_cache = True
    nested_config = ("encoder", "augmenter")
    config_attributes = ("temperature",)

    def __init__(
        self, encoder, temperature=0.05, augmenter=None, gradient_cache=None, **kwargs
    ):
        super().__init__(encoder, gradient_cache=gradient_cache, **kwargs)
        self.temperature = v.check_positive_number("temperature", temperature)
        self.augmenter = v.check_callable("augmenter", augmenter, optional=True)

    def column_augment(self):
        return None if self.augmenter is None else {"positive": self.augmenter}

    def host_columns(self, x, name="x"):
        if is_token_dict(x):
            return {None: x}
        if isinstance(x, dict):
            names = dict_columns(x, (2,), (_PAIR,), name)
            return {key: x[key] for key in names}
        if _is_text_column(x) or is_string_tensor(x) or _flat_list(x):
            # With an augmenter the second view's text is its edit (made in the
            # data pipeline: `column_augment`).
            if self.augmenter is not None:
                return {"anchor": x, "positive": x}
            return {None: x}
        v.fail(
            name,
            "a batch of texts (a list of strings, a tf.data of string batches), "
            "token dicts, or a dict with the columns 'anchor' and 'positive'",
            v.summarize(x),
            TypeError,
        )

    def forward_pass(self, x, training=False):
        columns = self.host_columns(x)
        if None in columns:  # one batch of texts: the same tokens twice
            first = second = columns[None]
        else:
            first, second = columns["anchor"], columns["positive"]
        # Two calls, two dropout masks (training=True): the paper's positive pair.
        return {"z_a": self.embed(first, training), "z_b": self.embed(second, training)}

    def compute_contrastive_loss(self, outputs):
        return keras.ops.mean(
            info_nce(outputs["z_a"], outputs["z_b"], temperature=self.temperature)
        )
