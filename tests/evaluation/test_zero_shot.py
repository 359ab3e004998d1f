"""Zero-shot classification (`keras_contrastive.evaluation.zero_shot`): class
embeddings against a manual computation, probabilities, accuracy, saving, errors
and the docstring examples."""

import doctest

import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import (
    ZeroShotClassifier,
    class_embeddings,
    zero_shot_accuracy,
    zero_shot_classifier,
)
from keras_contrastive.evaluation import zero_shot as zero_shot_module
from keras_contrastive.models import CLIP

WORDS = ["a", "photo", "of", "the", "drawing", "cat", "dog", "bird", "big"]
TEMPLATES = ["a photo of a {}.", "a drawing of the {}.", "{}"]
CLASSES = ["cat", "dog", "big bird"]


def tokenize(texts, length=6):
    ids = [
        [WORDS.index(w) + 1 if w in WORDS else 0 for w in t.replace(".", "").split()]
        for t in texts
    ]
    return np.array([(row + [0] * length)[:length] for row in ids], "int32")


def model(seed=0):
    keras.utils.set_random_seed(seed)
    clip = CLIP(
        keras.Sequential(
            [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(6)]
        ),
        keras.Sequential(
            [
                keras.Input((6,), dtype="int32"),
                keras.layers.Embedding(len(WORDS) + 1, 6),
                keras.layers.GlobalAveragePooling1D(),
            ]
        ),
        embed_dim=5,
        tokenizer=tokenize,
        initial_scale=20.0,
    )
    clip.build_for((images(2), tokenize(["a cat"] * 2)))
    return clip


def images(n, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, 4, 4, 3)).astype("float32")


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def manual_class_embeddings(clip):
    """CLIP's prompt ensembling (Radford et al. 2021, sec. 3.1.4), by hand."""
    rows = []
    for name in CLASSES:
        prompts = [t.replace("{}", name) for t in TEMPLATES]
        embeddings = [clip.encode_text([p], verbose=0)[0] for p in prompts]
        rows.append(unit(np.mean([unit(e) for e in embeddings], axis=0)))
    return np.stack(rows)


def test_class_embeddings_match_a_manual_computation():
    clip = model()
    expected = manual_class_embeddings(clip)
    np.testing.assert_allclose(
        class_embeddings(clip, CLASSES, TEMPLATES), expected, atol=1e-6
    )
    classifier = zero_shot_classifier(clip, CLASSES, TEMPLATES)
    assert isinstance(classifier, ZeroShotClassifier)
    np.testing.assert_allclose(classifier.class_embeddings, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-6)


def test_probabilities_are_the_softmax_of_scaled_cosines():
    clip = model()
    x = images(7)
    classifier = zero_shot_classifier(clip, CLASSES, TEMPLATES)
    probabilities = classifier.predict(x, verbose=0)
    logits = 20.0 * clip.encode_image(x, verbose=0) @ manual_class_embeddings(clip).T
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_accuracy_is_the_top_1_hit_rate():
    clip = model()
    x = images(12)
    classifier = zero_shot_classifier(clip, CLASSES, TEMPLATES)
    predicted = np.argmax(classifier.predict(x, verbose=0), axis=1)
    labels = np.array([0, 1, 2] * 4)
    accuracy = zero_shot_accuracy(clip, x, labels, CLASSES, TEMPLATES, batch_size=5)
    assert accuracy == pytest.approx(np.mean(predicted == labels))
    # Labels as a (N, 1) column (Keras' convention) are read the same way.
    assert zero_shot_accuracy(clip, x, labels[:, None], CLASSES, TEMPLATES) == (
        pytest.approx(accuracy)
    )
    # Every label set to the predicted class: accuracy 1.
    assert zero_shot_accuracy(clip, x, predicted, CLASSES, TEMPLATES) == 1.0


def test_classifier_round_trips_through_a_keras_file(tmp_path):
    clip = model()
    x = images(5)
    classifier = zero_shot_classifier(clip, CLASSES, TEMPLATES)
    path = str(tmp_path / "zero_shot.keras")
    classifier.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.class_names == CLASSES
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), classifier.predict(x, verbose=0), atol=1e-6
    )


def test_bad_input_gets_clear_errors():
    clip = model()
    x = images(4)
    with pytest.raises(ValueError, match="`class_names` must be a non-empty batch"):
        zero_shot_classifier(clip, [], TEMPLATES)
    with pytest.raises(TypeError, match=r"`class_names\[1\]` must be a string"):
        zero_shot_classifier(clip, ["cat", 3], TEMPLATES)
    with pytest.raises(
        ValueError, match=r'`templates\[1\]` must be a string with one "{}"'
    ):
        zero_shot_classifier(clip, CLASSES, ["a {}", "a photo"])
    with pytest.raises(ValueError, match=r"`templates\[0\]` must be a string with one"):
        zero_shot_classifier(clip, CLASSES, ["{} and {}"])
    with pytest.raises(ValueError, match="`templates` must be a non-empty batch"):
        zero_shot_classifier(clip, CLASSES, [])
    with pytest.raises(TypeError, match="`model` must be an image-text model"):
        zero_shot_classifier("clip", CLASSES, TEMPLATES)
    with pytest.raises(ValueError, match=r"`labels` must be one label per image \(4"):
        zero_shot_accuracy(clip, x, [0, 1, 2], CLASSES, TEMPLATES)
    with pytest.raises(ValueError, match=r"`labels` must be class indices in \[0, 3\)"):
        zero_shot_accuracy(clip, x, [0, 1, 2, 3], CLASSES, TEMPLATES)
    with pytest.raises(TypeError, match="`labels.dtype` must be an integer dtype"):
        zero_shot_accuracy(clip, x, [0.0, 1.0, 2.0, 0.0], CLASSES, TEMPLATES)
    with pytest.raises(ValueError, match=r"`images.shape` must be \(num_images"):
        zero_shot_accuracy(clip, x[0], [0], CLASSES, TEMPLATES)
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        zero_shot_accuracy(clip, x, [0, 1, 2, 0], CLASSES, TEMPLATES, batch_size=0)


def test_docstring_examples():
    result = doctest.testmod(zero_shot_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
