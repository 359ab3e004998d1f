import numpy as np
import pytest
from PIL import Image

from keras_contrastive.datasets import load_image_folder


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path, rng):
    images = {
        "dog/a.png": rng.integers(0, 256, (5, 4, 3)).astype("uint8"),
        "cat/b.png": rng.integers(0, 256, (5, 4, 3)).astype("uint8"),
        "cat/a.PNG": rng.integers(0, 256, (5, 4, 3)).astype("uint8"),
        "cat/nested/c.png": rng.integers(0, 256, (5, 4, 3)).astype("uint8"),
    }
    for name, array in images.items():
        _write(tmp_path / name, array)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    return tmp_path, images


def test_native_size_keeps_exact_pixels(folder):
    root, written = folder
    images, labels, names = load_image_folder(root, image_size=None)
    assert names == ["cat", "dog"]
    assert images.dtype == np.uint8 and images.shape == (4, 5, 4, 3)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1])
    # Sorted file order within a class, sub-folders included.
    for image, key in zip(
        images, ["cat/a.PNG", "cat/b.png", "cat/nested/c.png", "dog/a.png"]
    ):
        np.testing.assert_array_equal(image, written[key])


def test_resize_grayscale_and_class_names(folder):
    root, written = folder
    images, labels, names = load_image_folder(
        root, image_size=(3, 2), color_mode="grayscale", class_names=["dog"]
    )
    assert images.shape == (1, 3, 2, 1) and names == ["dog"]
    np.testing.assert_array_equal(labels, [0])
    # Same pixels as converting and resizing with Pillow directly.
    expected = Image.fromarray(written["dog/a.png"]).convert("L")
    expected = np.asarray(expected.resize((2, 3), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(images[0, :, :, 0], expected)


def test_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="`path` must be a folder.*not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="`path` must be .*no sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="`path` must be .*No images"):
        load_image_folder(tmp_path)
    _write(tmp_path / "a" / "1.png", np.zeros((4, 4, 3), np.uint8))
    _write(tmp_path / "a" / "2.png", np.zeros((6, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="`image_size` must be .*different sizes"):
        load_image_folder(tmp_path, image_size=None)
    assert load_image_folder(tmp_path)[0].shape == (2, 32, 32, 3)
    (tmp_path / "a" / "3.png").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="3.png"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="`image_size`"):
        load_image_folder(tmp_path, image_size=(0, 4))
    with pytest.raises(ValueError, match="`color_mode`"):
        load_image_folder(tmp_path, color_mode="cmyk")
    with pytest.raises(ValueError, match=r"\['zebra'\]"):
        load_image_folder(tmp_path, class_names=["zebra"])
