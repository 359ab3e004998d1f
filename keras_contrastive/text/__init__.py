"""Sentence encoders and text augmentation (Sentence-BERT, SimCSE-style views).

- `SentenceEncoder`: strings -> (N, d) float32 embeddings; a transformer backbone,
  a pooling layer and optional L2 normalisation (Reimers & Gurevych 2019). Loads
  Hugging Face / sentence-transformers folders offline (`from_preset`).
- `BertBackbone`, `BertEmbeddings`, `BertLayer`: BERT (Devlin et al. 2019) in
  Keras 3 ops, the layout of Hugging Face checkpoints.
- `WordPieceTokenizer`: BERT tokenisation on the host (Hugging Face `tokenizers`)
  and as TensorFlow ops (`tokenize_graph`, for tf.data and SavedModel export).
- `SentencePooling`: mean / cls / max pooling with padding masked.
- `TokenizedTexts`: a `keras.utils.PyDataset` that tokenises batches of strings
  (or columns of sentence pairs) on the host, for `fit` on JAX and PyTorch.
- Augmentation layers (positive views of a sentence): `RandomWordDropout`,
  `RandomWordMask`, `RandomWordSwap`, `RandomCharacterNoise`.

Needs the `text` extra: `pip install "keras_contrastive[text]"` (docs/text.md).
"""

from keras_contrastive.text.augmentation import (
    RandomCharacterNoise,
    RandomWordDropout,
    RandomWordMask,
    RandomWordSwap,
    TextAugmentation,
)
from keras_contrastive.text.backbone import BertBackbone, BertEmbeddings, BertLayer
from keras_contrastive.text.data import TokenizedTexts
from keras_contrastive.text.encoder import SentenceEncoder
from keras_contrastive.text.pooling import SentencePooling
from keras_contrastive.text.tokenizer import WordPieceTokenizer

__all__ = [
    "BertBackbone",
    "BertEmbeddings",
    "BertLayer",
    "RandomCharacterNoise",
    "RandomWordDropout",
    "RandomWordMask",
    "RandomWordSwap",
    "SentenceEncoder",
    "SentencePooling",
    "TextAugmentation",
    "TokenizedTexts",
    "WordPieceTokenizer",
]
