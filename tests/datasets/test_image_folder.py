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


def test_hidden_folders_and_files_are_never_classes_or_images(folder):
    root, written = folder
    # Jupyter's checkpoint folder sorts first: it used to become class 0 and
    # shift every real label by one.
    _write(root / ".ipynb_checkpoints" / "a.png", written["dog/a.png"])
    _write(root / "cat" / ".hidden" / "x.png", written["dog/a.png"])
    _write(root / "cat" / "._a.png", written["dog/a.png"])  # macOS metadata
    (root / "dog" / ".DS_Store").write_bytes(b"\x00\x01")
    images, labels, names = load_image_folder(root, image_size=None)
    assert names == ["cat", "dog"]
    np.testing.assert_array_equal(labels, [0, 0, 0, 1])
    assert images.shape == (4, 5, 4, 3)
    with pytest.raises(ValueError, match="hidden .*never classes"):
        load_image_folder(root, class_names=[".ipynb_checkpoints", "cat"])


def test_duplicate_class_names_are_a_value_error(folder):
    root, _ = folder
    message = r"`class_names` must be distinct sub-folder names.*\['cat'\]"
    with pytest.raises(ValueError, match=message):
        load_image_folder(root, class_names=["cat", "dog", "cat"])
    with pytest.raises(TypeError, match="`class_names` must be a list"):
        load_image_folder(root, class_names="cat")


def test_16_bit_images_are_scaled_to_8_bits_not_clipped(tmp_path, rng):
    values = rng.integers(0, 65536, (6, 5)).astype("uint16")
    values[0, 0], values[0, 1] = 0, 65535
    Image.fromarray(values).save(tmp_path / "c16.png")  # mode I;16
    (tmp_path / "a").mkdir()
    (tmp_path / "c16.png").rename(tmp_path / "a" / "c16.png")
    floats = (values / 65535.0).astype("float32")
    Image.fromarray(floats).save(tmp_path / "a" / "f32.tiff")  # mode F in [0, 1]
    images, _, _ = load_image_folder(tmp_path, image_size=None)
    want = np.round(values / 257.0).astype("uint8")
    for image in images:  # converted to RGB: three equal channels
        np.testing.assert_array_equal(image[..., 0], image[..., 2])
        assert np.abs(image[..., 0].astype(int) - want).max() <= 1
    # It used to clip: almost every pixel became 255.
    assert np.mean(images == 255) < 0.1
    gray, _, _ = load_image_folder(tmp_path, image_size=(3, 3), color_mode="grayscale")
    assert gray.shape == (2, 3, 3, 1) and 0 < gray.mean() < 255


def test_unreadable_images_name_their_file(tmp_path, monkeypatch):
    _write(tmp_path / "a" / "1.png", np.zeros((4, 4, 3), np.uint8))
    data = (tmp_path / "a" / "1.png").read_bytes()
    (tmp_path / "a" / "2.png").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ValueError, match=r"Could not read image .*2\.png"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "2.png").unlink()
    values = np.full((4, 4), -5, np.int32)
    Image.fromarray(values).save(tmp_path / "a" / "3.tiff")  # mode I, negative
    with pytest.raises(ValueError, match=r"3\.tiff.*mode I with values in \[-5, -5\]"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "3.tiff").unlink()

    # Pillow raises more than OSError for broken files (SyntaxError, ...).
    from keras_contrastive.datasets import image_folder

    def broken(*args, **kwargs):
        raise SyntaxError("broken PNG file")

    monkeypatch.setattr(image_folder.Image, "open", broken)
    with pytest.raises(ValueError, match=r"1\.png'?: SyntaxError: broken PNG"):
        load_image_folder(tmp_path)
