"""Random text perturbations: positive views of a sentence for contrastive learning.

Unsupervised sentence-embedding methods train on two views of the same sentence.
Discrete edits are the classic views: random word deletion and adjacent swaps
come from EDA (Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques for
Boosting Performance on Text Classification Tasks"), word deletion, span
deletion and reordering are CLEAR's (Wu et al. 2020, "CLEAR: Contrastive Learning
for Sentence Representation"), masking words with a mask token follows BERT's
masked language model (Devlin et al. 2019), and character insertions, deletions
and substitutions are the synthetic typos of Karpukhin et al. 2019 ("Training on
Synthetic Noise Improves Robustness to Natural Noise in Machine Translation").

SimCSE (Gao et al. 2021, "SimCSE: Simple Contrastive Learning of Sentence
Embeddings") found that none of these beats *no* edit at all: passing the same
sentence twice through the encoder with its dropout active (`training=True`)
already gives two views that differ just enough, and discrete edits hurt STS
results (their Table 1: crop, word deletion, synonym replacement and MLM
replacement all score below dropout alone). So the default recipe is dropout
only; these layers are for ablations, for combining with dropout, and for
robustness to typos.

Every layer maps a batch of strings to a batch of strings, per sample
independently, each word (or character) edited with probability `rate`. Words are
whitespace-separated and re-joined with single spaces. They take:

- on the host: a string, a list or tuple of strings (returns a list) or a NumPy
  array of str (returns one of the same shape); eager TF string tensors too. The
  draws come from a NumPy generator seeded with `seed`: two layers with the same
  seed, called on the same batches in the same order, give the same views;
- in `tf.data` (a graph `tf.string` tensor of any shape): the same Python edit
  runs through `tf.numpy_function`. Reproducible with a sequential `map`; with
  `num_parallel_calls` the draws follow the order elements are processed in.

They never touch the backend (no tensors of JAX or PyTorch: strings exist only
on the host), so they work the same whatever `KERAS_BACKEND` is.
"""

import string

import keras
import numpy as np

from keras_contrastive import _validation as v


def _is_graph_tensor(x):
    if type(x).__module__.startswith("tensorflow") and hasattr(x, "dtype"):
        import tensorflow as tf

        return not tf.executing_eagerly() or not hasattr(x, "numpy")
    return False


class TextAugmentation(keras.layers.Layer):
    """Base class: a per-sample random edit of strings with probability `rate`.

    Subclasses implement `augment_text(text, rng) -> str` for one string, with
    `rng` a `numpy.random.Generator`.
    """

    def __init__(self, rate=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = v.check_probability("rate", rate)
        self.seed = v.check_seed("seed", seed)
        self._rng = np.random.default_rng(self.seed)

    def augment_text(self, text, rng):  # pragma: no cover - abstract
        raise NotImplementedError

    def augment_list(self, texts):
        """Edits a list of Python strings; returns a new list."""
        return [self.augment_text(text, self._rng) for text in texts]

    def __call__(self, texts, training=True):
        """Augments `texts` (no-op when `training` is False)."""
        if texts is None:
            v.fail("texts", "a string or a batch of strings", texts, TypeError)
        if _is_graph_tensor(texts):
            return self._graph_call(texts) if training else texts
        if type(texts).__module__.startswith("tensorflow"):
            import tensorflow as tf

            array = texts.numpy()
            out = self._numpy_call(array) if training else array
            return tf.constant(out, dtype=tf.string)
        if isinstance(texts, np.ndarray):
            if texts.dtype.kind not in "USO":
                v.fail("texts", "an array of strings", texts.dtype, TypeError)
            return self._numpy_call(texts) if training else texts
        strings = v.check_strings("texts", texts, allow_empty=True)
        if not training:
            return texts if isinstance(texts, str) else strings
        out = self.augment_list(strings)
        return out[0] if isinstance(texts, (str, bytes)) else out

    def call(self, texts, training=True):
        return self(texts, training=training)

    def _numpy_call(self, array):
        flat = array.reshape(-1)
        strings = [
            item.decode("utf-8") if isinstance(item, bytes) else item for item in flat
        ]
        for i, item in enumerate(strings):
            if not isinstance(item, str):
                v.fail(f"texts[{i}]", "a string", item, TypeError)
        out = self.augment_list(strings)
        if array.dtype.kind == "S":
            return np.array([s.encode("utf-8") for s in out], dtype=object).reshape(
                array.shape
            )
        if array.dtype.kind == "O":
            return np.array(out, dtype=object).reshape(array.shape)
        return np.array(out).reshape(array.shape)

    def _graph_call(self, texts):
        import tensorflow as tf

        def run(array):
            return self._numpy_call(np.asarray(array, dtype=object))

        out = tf.numpy_function(run, [texts], tf.string, stateful=True)
        out.set_shape(texts.shape)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomWordDropout(TextAugmentation):
    """Deletes each word with probability `rate` (EDA's random deletion).

    A sentence never loses all its words: if every word was drawn for deletion,
    one of them (uniformly) is kept, as in EDA (Wei & Zou 2019). The empty string
    stays empty.
    """

    def augment_text(self, text, rng):
        words = text.split()
        if not words or self.rate == 0:
            return " ".join(words)
        keep = rng.random(len(words)) >= self.rate
        if not keep.any():
            keep[rng.integers(len(words))] = True
        return " ".join(word for word, k in zip(words, keep) if k)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomWordMask(TextAugmentation):
    """Replaces each word with `mask_token` with probability `rate`.

    The masked-word views of BERT's masked language model (Devlin et al. 2019),
    used as a contrastive view by CLEAR (Wu et al. 2020). The default "[MASK]" is
    a special token of BERT vocabularies, which `WordPieceTokenizer` maps to its
    id when it appears in a text.
    """

    def __init__(self, rate=0.1, mask_token="[MASK]", seed=None, **kwargs):
        super().__init__(rate=rate, seed=seed, **kwargs)
        self.mask_token = v.check_instance("mask_token", mask_token, str, "a string")

    def augment_text(self, text, rng):
        words = text.split()
        if not words:
            return ""
        mask = rng.random(len(words)) < self.rate
        return " ".join(self.mask_token if m else w for w, m in zip(words, mask))

    def get_config(self):
        config = super().get_config()
        config["mask_token"] = self.mask_token
        return config


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomWordSwap(TextAugmentation):
    """Swaps adjacent words: each of the n - 1 neighbour pairs with probability `rate`.

    Pairs are visited left to right and each swap acts on the current order, so
    a word can move more than one place (EDA's random swap, Wei & Zou 2019,
    restricted to neighbours as in CLEAR's reordering, Wu et al. 2020). A
    two-word sentence is reversed with probability exactly `rate`.
    """

    def augment_text(self, text, rng):
        words = text.split()
        if len(words) < 2:
            return " ".join(words)
        draws = rng.random(len(words) - 1) < self.rate
        for i in np.flatnonzero(draws):
            words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class RandomCharacterNoise(TextAugmentation):
    """Typos: each character edited with probability `rate` (Karpukhin et al. 2019).

    An edited character is, uniformly among `operations`: deleted
    ("delete"), replaced by a random character of `alphabet` ("substitute"), or
    followed by an inserted random character of `alphabet` ("insert"). Spaces are
    characters too (a deleted space joins two words). Unlike the word-level
    layers, the text's own spacing is kept.

    Args:
        rate: probability that a character is edited.
        operations: a subset of ("insert", "delete", "substitute").
        alphabet: the characters inserted or substituted (default a-z).
        seed: int or None.
    """

    OPERATIONS = ("insert", "delete", "substitute")

    def __init__(
        self,
        rate=0.05,
        operations=("insert", "delete", "substitute"),
        alphabet=string.ascii_lowercase,
        seed=None,
        **kwargs,
    ):
        super().__init__(rate=rate, seed=seed, **kwargs)
        if isinstance(operations, str):
            operations = (operations,)
        if not isinstance(operations, (list, tuple)) or not operations:
            v.fail(
                "operations",
                f"a non-empty subset of {self.OPERATIONS}",
                operations,
            )
        for operation in operations:
            v.check_one_of("operations", operation, self.OPERATIONS)
        self.operations = tuple(operations)
        if not isinstance(alphabet, str) or not alphabet:
            v.fail("alphabet", "a non-empty string", alphabet, TypeError)
        self.alphabet = alphabet

    def augment_text(self, text, rng):
        if not text or self.rate == 0:
            return text
        edited = rng.random(len(text)) < self.rate
        if not edited.any():
            return text
        chosen = rng.integers(len(self.operations), size=len(text))
        letters = rng.integers(len(self.alphabet), size=len(text))
        out = []
        for i, char in enumerate(text):
            if not edited[i]:
                out.append(char)
                continue
            operation = self.operations[chosen[i]]
            if operation == "delete":
                continue
            letter = self.alphabet[letters[i]]
            if operation == "substitute":
                out.append(letter)
            else:
                out.append(char + letter)
        return "".join(out)

    def get_config(self):
        config = super().get_config()
        config.update(operations=list(self.operations), alphabet=self.alphabet)
        return config
