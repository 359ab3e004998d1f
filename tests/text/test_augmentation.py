"""Text augmentation layers: rates, seeds, containers, tf.data, configs."""

import numpy as np
import pytest

from keras_contrastive.text import (
    RandomCharacterNoise,
    RandomWordDropout,
    RandomWordMask,
    RandomWordSwap,
)

WORDS = [f"w{i}" for i in range(40)]
SENTENCE = " ".join(WORDS)
LAYERS = [
    lambda seed: RandomWordDropout(0.3, seed=seed),
    lambda seed: RandomWordMask(0.3, seed=seed),
    lambda seed: RandomWordSwap(0.3, seed=seed),
    lambda seed: RandomCharacterNoise(0.1, seed=seed),
]


def binomial_ok(count, n, p):
    """Within 5 standard deviations of a Binomial(n, p) mean."""
    return abs(count - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_word_dropout_rate(rate):
    out = RandomWordDropout(rate, seed=0)([SENTENCE] * 200)
    kept = sum(len(s.split()) for s in out)
    assert binomial_ok(200 * 40 - kept, 200 * 40, rate)
    for s in out:  # order kept, words from the sentence
        indices = [WORDS.index(w) for w in s.split()]
        assert indices == sorted(indices) and indices


def test_word_dropout_keeps_one_word():
    out = RandomWordDropout(1.0, seed=0)(["a b c"] * 20)
    assert all(len(s.split()) == 1 for s in out)


@pytest.mark.parametrize("rate", [0.15, 0.6])
def test_word_mask_rate(rate):
    out = RandomWordMask(rate, mask_token="<m>", seed=1)([SENTENCE] * 200)
    masked = sum(s.split().count("<m>") for s in out)
    assert binomial_ok(masked, 200 * 40, rate)
    assert all(len(s.split()) == 40 for s in out)


@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_word_swap_rate(rate):
    out = RandomWordSwap(rate, seed=2)(["left right"] * 2000)
    swapped = out.count("right left")
    assert binomial_ok(swapped, 2000, rate)
    many = RandomWordSwap(rate, seed=2)([SENTENCE] * 50)
    assert all(sorted(s.split()) == sorted(WORDS) for s in many)


@pytest.mark.parametrize("operation", ["insert", "delete", "substitute"])
def test_character_noise_rates(operation):
    text = "0123456789" * 10  # no letter of the default alphabet
    out = RandomCharacterNoise(0.2, operations=operation, seed=3)([text] * 100)
    if operation == "insert":
        changes = sum(len(s) - len(text) for s in out)
        assert all(c.isdigit() or c.isalpha() for s in out for c in s)
    elif operation == "delete":
        changes = sum(len(text) - len(s) for s in out)
    else:
        changes = sum(c.isalpha() for s in out for c in s)
        assert all(len(s) == len(text) for s in out)
    assert binomial_ok(changes, 100 * len(text), 0.2)


@pytest.mark.parametrize("make", LAYERS)
def test_seed_reproducibility_and_per_sample_draws(make):
    batch = [SENTENCE] * 6
    first, second = make(7)(batch), make(7)(batch)
    assert first == second
    assert len(set(first)) > 1  # each sample draws its own edits
    assert make(8)(batch) != first


@pytest.mark.parametrize("make", LAYERS)
def test_containers_empty_strings_and_inference(make):
    layer = make(0)
    assert layer(["", ""]) == ["", ""]
    assert layer([]) == []
    assert isinstance(layer("one two three"), str)
    array = np.array([["a b c", "d e"], ["", "f g h i"]])
    out = layer(array)
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    assert layer(["a b c"], training=False) == ["a b c"]


@pytest.mark.parametrize("make", LAYERS)
def test_config_round_trip(make):
    layer = make(5)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone([SENTENCE] * 3) == make(5)([SENTENCE] * 3)


def test_tf_data_usage():
    tf = pytest.importorskip("tensorflow")
    texts = [SENTENCE, "short one", ""] * 4

    def run(seed):
        layer = RandomWordMask(0.5, seed=seed)
        dataset = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(layer)
        return [s.decode() for batch in dataset for s in batch.numpy()]

    out = run(11)
    assert out == run(11)  # sequential map: reproducible
    assert len(out) == len(texts) and out[2] == ""
    assert any("[MASK]" in s for s in out)
    # Eager string tensors come back as string tensors.
    eager = RandomWordDropout(0.5, seed=0)(tf.constant(texts))
    assert eager.dtype == tf.string and eager.shape == (len(texts),)


def test_errors():
    with pytest.raises(ValueError, match=r"`rate` must be a number in \[0, 1\]"):
        RandomWordDropout(1.5)
    with pytest.raises(TypeError, match="`seed` must be an int or None"):
        RandomWordSwap(0.1, seed="x")
    with pytest.raises(ValueError, match="`operations` must be one of"):
        RandomCharacterNoise(0.1, operations=("typo",))
    with pytest.raises(TypeError, match="`texts` must be a string or a batch"):
        RandomWordMask(0.1)(None)
    with pytest.raises(TypeError, match=r"`texts\[1\]` must be a string"):
        RandomWordMask(0.1)(["a", 3])
    with pytest.raises(TypeError, match="`texts` must be an array of strings"):
        RandomWordMask(0.1)(np.zeros(3))
