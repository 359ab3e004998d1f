"""A tiny BERT (random weights) and vocabulary for the text tests: no download."""

import keras

from keras_contrastive.text import BertBackbone, SentenceEncoder, WordPieceTokenizer

WORDS = (
    "the a man woman dog cat is are eating playing guitar on mat sat quick brown "
    "fox jumps over lazy hello world play eat sit walk run"
).split()
PIECES = ["##s", "##ing", "##ed", "##er", "##ly"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
VOCABULARY = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + WORDS
    + PIECES
    + CHARS
    + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
)
SENTENCES = [
    "The man is playing guitar.",
    "A woman is eating!",
    "",
    "the quick brown fox jumps over the lazy dog",
    "Dogs sat on mats, cats walked.",
    "hello",
    "Unknown ☃ symbols 123",
    "the cat sat on the mat " * 8,
]


def tiny_tokenizer(sequence_length=32):
    return WordPieceTokenizer(VOCABULARY, sequence_length=sequence_length)


def tiny_backbone(dropout=0.0, **kwargs):
    return BertBackbone(
        vocabulary_size=len(VOCABULARY),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
        dropout=dropout,
        attention_dropout=dropout,
        **kwargs,
    )


def tiny_encoder(pooling="mean", normalize=False, sequence_length=32, dropout=0.0):
    keras.utils.set_random_seed(7)
    return SentenceEncoder(
        tiny_backbone(dropout=dropout),
        tiny_tokenizer(sequence_length),
        pooling=pooling,
        normalize=normalize,
    )
