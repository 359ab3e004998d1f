import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import retrieval_metrics


def brute_force(images, texts, text_to_image, ks):
    images = images / np.linalg.norm(images, axis=1, keepdims=True)
    texts = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    scores = images.astype(np.float64) @ texts.T.astype(np.float64)
    results = {}
    for k in ks:
        hits = 0
        for i in range(len(images)):
            best = np.argsort(-scores[i])[:k]
            hits += any(text_to_image[t] == i for t in best)
        results[f"image_to_text_recall@{k}"] = hits / len(images)
    for k in ks:
        hits = 0
        for t in range(len(texts)):
            best = np.argsort(-scores[:, t])[:k]
            hits += text_to_image[t] in best
        results[f"text_to_image_recall@{k}"] = hits / len(texts)
    return results


def _pairs(rng, num_images, captions_per_image, noise):
    images = rng.normal(size=(num_images, 16)).astype("float32")
    text_to_image = np.repeat(np.arange(num_images), captions_per_image)
    rng.shuffle(text_to_image)
    texts = images[text_to_image] + noise * rng.normal(size=(len(text_to_image), 16))
    return images, texts.astype("float32"), text_to_image


@pytest.mark.parametrize("captions_per_image", [1, 5])
def test_matches_brute_force(rng, captions_per_image):
    images, texts, text_to_image = _pairs(rng, 40, captions_per_image, noise=1.5)
    ks = (1, 5, 10)
    expected = brute_force(images, texts, text_to_image, ks)
    results = retrieval_metrics(images, texts, k=ks, text_to_image=text_to_image)
    assert list(results) == list(expected)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value), key
    # Neither perfect nor zero: the comparison is informative.
    assert 0.1 < results["text_to_image_recall@1"] < 0.95
    assert all(isinstance(value, float) for value in results.values())


def test_one_caption_per_image_by_default_and_tensors(rng):
    images, texts, text_to_image = _pairs(rng, 30, 1, noise=1.0)
    order = np.argsort(text_to_image)
    by_default = retrieval_metrics(
        keras.ops.convert_to_tensor(images),
        keras.ops.convert_to_tensor(texts[order]),
        k=3,
    )
    explicit = retrieval_metrics(images, texts, k=[3], text_to_image=text_to_image)
    assert by_default == explicit
    assert list(by_default) == ["image_to_text_recall@3", "text_to_image_recall@3"]


def test_bad_arguments(rng):
    images, texts, text_to_image = _pairs(rng, 4, 2, noise=0.1)
    cases = [
        (
            dict(text_to_image=None),
            ValueError,
            r"`text_to_image` must be given when there are not as many texts as "
            r"images .*Received: text_to_image=None. There are 4 images and 8 texts",
        ),
        (
            dict(text_to_image=text_to_image[:5]),
            ValueError,
            r"`text_to_image.shape` must be \(8,\): one image index per row of "
            r"`text_embeddings`. Received: text_to_image.shape=\(5,\)",
        ),
        (
            dict(text_to_image=np.full(8, 4)),
            ValueError,
            r"`text_to_image` must be image indices in \[0, 4\). Received: "
            r"text_to_image=indices in \[4, 4\]",
        ),
        (
            dict(text_to_image=np.r_[0, 0, 1, 1, 2, 2, 2, 2]),
            ValueError,
            r"`text_to_image` must be a mapping that gives every image at least one "
            r"text. Received: text_to_image=a mapping without a text for image 3",
        ),
        (
            dict(text_to_image=text_to_image.astype(float)),
            TypeError,
            r"`text_to_image.dtype` must be an integer dtype",
        ),
        (
            dict(text_to_image=text_to_image, k=(1, 5)),
            ValueError,
            r"`k` must be ints in \[1, 4\] \(at most the number of images and of "
            r"texts\). Received: k=\(1, 5\)",
        ),
        (
            dict(text_to_image=text_to_image, k=0),
            ValueError,
            r"`k` must be an int or a non-empty tuple of ints >= 1. Received: k=0",
        ),
        (dict(text_to_image=text_to_image, k=()), TypeError, r"Received: k=\(\)"),
        (dict(text_to_image=text_to_image, metric="l2"), ValueError, r"`metric`"),
    ]
    for kwargs, error, match in cases:
        kwargs.setdefault("k", 1)
        with pytest.raises(error, match=match):
            retrieval_metrics(images, texts, **kwargs)
    with pytest.raises(
        ValueError,
        match=r"`text_embeddings.shape\[1\]` must be equal to `image_embeddings`'s "
        r"feature dimension \(16\). Received: text_embeddings.shape\[1\]=3",
    ):
        retrieval_metrics(images, texts[:, :3], k=1, text_to_image=text_to_image)
    with pytest.raises(ValueError, match=r"`image_embeddings.shape` must be"):
        retrieval_metrics(images[:0], texts, k=1, text_to_image=text_to_image)
