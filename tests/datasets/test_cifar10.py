import io
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_contrastive.datasets import (
    CIFAR10_CLASSES,
    SAMPLE_PATH,
    load_cifar10,
    load_cifar10_sample,
    stratified_split,
)
from tests.conftest import SHARED_DATA

SHARED_TRAIN = os.path.join(SHARED_DATA, "cifar10", "train.npz")
needs_shared = pytest.mark.skipif(
    not os.path.isfile(SHARED_TRAIN),
    reason=f"shared CIFAR-10 file not found at {SHARED_TRAIN}",
)


def test_sample_file_layout_and_balance():
    assert os.path.getsize(SAMPLE_PATH) < 6 * 2**20
    with np.load(SAMPLE_PATH) as raw:
        labels, offsets, jpeg = raw["labels"], raw["offsets"], raw["jpeg"]
        assert list(raw["classes"]) == list(CIFAR10_CLASSES)
    assert len(labels) == 5000 and len(offsets) == 5001
    np.testing.assert_array_equal(np.bincount(labels), [500] * 10)
    # Decoding matches Pillow on the raw bytes, image by image.
    (x_train, _), (x_test, _) = load_cifar10_sample(test_fraction=0.0)
    assert len(x_test) == 0
    for i in (0, 1234, 4999):
        data = jpeg[offsets[i] : offsets[i + 1]].tobytes()
        expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(x_train[i], expected)


def test_sample_split():
    (x_train, y_train), (x_test, y_test) = load_cifar10_sample()
    assert x_train.shape == (4000, 32, 32, 3) and x_test.shape == (1000, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    # Disjoint parts: no test image also appears in the training part.
    train_rows = {image.tobytes() for image in x_train}
    assert not any(image.tobytes() in train_rows for image in x_test)
    # Same seed, same split; another seed, another split.
    (_, _), (x_again, _) = load_cifar10_sample()
    np.testing.assert_array_equal(x_again, x_test)
    (_, _), (x_other, _) = load_cifar10_sample(seed=1)
    assert not np.array_equal(x_other, x_test)


def test_stratified_split_rule():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    train, test = stratified_split(labels, 0.4, seed=3)
    np.testing.assert_array_equal(np.bincount(labels[test]), [4, 2, 1])
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(17))
    # The documented rule, written out: one generator, classes in order.
    rng = np.random.default_rng(3)
    expected = np.sort(
        np.concatenate(
            [
                rng.permutation(np.flatnonzero(labels == c))[: round(0.4 * n)]
                for c, n in enumerate([10, 5, 2])
            ]
        )
    )
    np.testing.assert_array_equal(test, expected)
    with pytest.raises(ValueError, match=r"`test_fraction` must be a number in \[0, 1"):
        stratified_split(labels, 1.0)


@needs_shared
def test_sample_is_the_documented_subset_of_the_shared_split():
    rng = np.random.default_rng(0)
    with np.load(SHARED_TRAIN) as shared:
        labels, offsets, jpeg = shared["labels"], shared["offsets"], shared["jpeg"]
    chosen = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(labels == c), 500, replace=False)
                for c in range(10)
            ]
        )
    )
    with np.load(SAMPLE_PATH) as sample:
        s_offsets, s_jpeg = sample["offsets"], sample["jpeg"]
        np.testing.assert_array_equal(sample["labels"], labels[chosen])
    for j in (0, 2500, 4999):
        i = chosen[j]
        assert (
            s_jpeg[s_offsets[j] : s_offsets[j + 1]].tobytes()
            == jpeg[offsets[i] : offsets[i + 1]].tobytes()
        )


@needs_shared
def test_load_cifar10_from_the_shared_file():
    # Uses the default caches: the first run decodes (~10 s), later runs read
    # ~/.keras/datasets/keras_contrastive.
    (x_train, y_train), (x_test, y_test) = load_cifar10(os.path.dirname(SHARED_TRAIN))
    assert x_train.shape == (40000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    with np.load(SHARED_TRAIN) as shared:
        first = shared["jpeg"][shared["offsets"][0] : shared["offsets"][1]].tobytes()
        shared_labels = shared["labels"]
    expected_first = np.asarray(Image.open(io.BytesIO(first)).convert("RGB"))
    _, test_rows = stratified_split(shared_labels, 0.2, seed=0)
    train_rows = np.setdiff1d(np.arange(50000), test_rows)
    target = x_train if train_rows[0] == 0 else x_test
    np.testing.assert_array_equal(target[0], expected_first)
    np.testing.assert_array_equal(y_train, shared_labels[train_rows])
    # A given test split is used as is.
    (x_all, _), (x_given, y_given) = load_cifar10(SHARED_TRAIN, test_path=SAMPLE_PATH)
    assert len(x_all) == 50000 and len(x_given) == 5000


def test_keras_download_path(monkeypatch):
    def fake_load_data():
        x = np.zeros((4, 32, 32, 3), np.uint8)
        return (x, np.array([[1], [2], [3], [4]], np.uint8)), (x[:2], np.ones((2, 1)))

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake_load_data)
    (x_train, y_train), (_, y_test) = load_cifar10()
    assert x_train.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(y_train, [1, 2, 3, 4])
    assert y_train.dtype == np.int64 and y_test.shape == (2,)

    def offline():
        raise ConnectionError("no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(OSError, match="load_cifar10_sample"):
        load_cifar10()


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="`path` must be an existing JPEG-npz"):
        load_cifar10(tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError, match="train.npz"):
        load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="`test_path` must be None when `path` is"):
        load_cifar10(test_path=SAMPLE_PATH)
