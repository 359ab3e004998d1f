import io

import numpy as np
import pytest
from PIL import Image

from keras_contrastive.datasets import jpeg_npz
from keras_contrastive.datasets.jpeg_npz import (
    load_jpeg_npz,
    read_jpeg_npz,
    select_jpeg_npz,
    write_jpeg_npz,
)


def _jpeg_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _pillow_decode(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture
def small_file(tmp_path, rng):
    images = rng.integers(0, 256, (6, 8, 8, 3)).astype("uint8")
    jpegs = [_jpeg_bytes(image) for image in images]
    path = tmp_path / "small.npz"
    write_jpeg_npz(path, jpegs, [0, 1, 2, 0, 1, 2], ["a", "b", "c"])
    return path, jpegs


def test_round_trip_decodes_like_pillow(small_file):
    path, jpegs = small_file
    images, labels, classes = load_jpeg_npz(path, cache=False)
    assert images.dtype == np.uint8 and images.shape == (6, 8, 8, 3)
    for image, data in zip(images, jpegs):
        np.testing.assert_array_equal(image, _pillow_decode(data))
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2])
    assert labels.dtype == np.int64 and classes == ["a", "b", "c"]
    # The raw file follows the documented layout.
    with np.load(path) as raw:
        offsets = raw["offsets"]
        assert offsets[0] == 0 and offsets[-1] == len(raw["jpeg"])
        assert raw["jpeg"][offsets[2] : offsets[3]].tobytes() == jpegs[2]


def test_select_copies_bytes_unchanged(small_file, tmp_path):
    path, jpegs = small_file
    subset = tmp_path / "subset.npz"
    select_jpeg_npz(path, subset, [4, 1])
    arrays = read_jpeg_npz(subset)
    offsets = arrays["offsets"]
    assert arrays["jpeg"][offsets[0] : offsets[1]].tobytes() == jpegs[4]
    assert arrays["jpeg"][offsets[1] : offsets[2]].tobytes() == jpegs[1]
    np.testing.assert_array_equal(arrays["labels"], [1, 1])


def test_memory_cache_returns_fresh_copies(small_file):
    path, _ = small_file
    first, _, _ = load_jpeg_npz(path)
    first[:] = 0
    second, _, _ = load_jpeg_npz(path)
    assert second.any()


def test_disk_cache_is_written_and_read(small_file, tmp_path, monkeypatch):
    path, _ = small_file
    monkeypatch.setattr(jpeg_npz, "DISK_CACHE_MIN_IMAGES", 1)
    cache_dir = tmp_path / "cache"
    expected, _, _ = load_jpeg_npz(path, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("*.npy"))) == 1
    jpeg_npz._MEMORY_CACHE.clear()

    def no_decoding(*args):
        raise AssertionError("decoded although a disk cache exists")

    monkeypatch.setattr(jpeg_npz, "_decode_all", no_decoding)
    images, _, _ = load_jpeg_npz(path, cache_dir=cache_dir)
    np.testing.assert_array_equal(images, expected)


def test_unwritable_cache_dir_is_ignored(small_file, tmp_path, monkeypatch):
    path, _ = small_file
    monkeypatch.setattr(jpeg_npz, "DISK_CACHE_MIN_IMAGES", 1)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    images, _, _ = load_jpeg_npz(path, cache_dir=blocker / "cache")
    assert images.shape == (6, 8, 8, 3)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="`path` must be an existing JPEG-npz"):
        read_jpeg_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"missing arrays \['jpeg'"):
        read_jpeg_npz(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="as a .npz file"):
        read_jpeg_npz(tmp_path / "text.npz")
    np.savez(
        tmp_path / "offsets.npz",
        jpeg=np.zeros(10, np.uint8),
        offsets=np.array([0, 5, 4, 10]),
        labels=np.zeros(3, np.uint8),
        classes=np.array(["a"]),
    )
    with pytest.raises(ValueError, match="`offsets` must rise"):
        read_jpeg_npz(tmp_path / "offsets.npz")
    np.savez(
        tmp_path / "garbage.npz",
        jpeg=np.arange(10, dtype=np.uint8),
        offsets=np.array([0, 10]),
        labels=np.zeros(1, np.uint8),
        classes=np.array(["a"]),
    )
    with pytest.raises(ValueError, match="image 0 is not a valid JPEG"):
        load_jpeg_npz(tmp_path / "garbage.npz", cache=False)
    with pytest.raises(ValueError, match=r"`labels` must be in \[0, 1\)"):
        write_jpeg_npz(tmp_path / "x.npz", [b"x"], [3], ["a"])


def test_corrupt_images_and_labels_name_the_file(tmp_path, rng, monkeypatch):
    images = rng.integers(0, 256, (3, 8, 8, 3)).astype("uint8")
    jpegs = [_jpeg_bytes(image) for image in images]
    jpegs[1] = jpegs[1][: len(jpegs[1]) // 2]  # truncated
    path = tmp_path / "truncated.npz"
    write_jpeg_npz(path, jpegs, [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match=r"truncated\.npz'?: image 1 is not a valid"):
        load_jpeg_npz(path, cache=False)

    # Whatever Pillow raises (it has raised SyntaxError for broken files), the
    # error is a ValueError naming the file and the image.
    def broken(*args, **kwargs):
        raise SyntaxError("broken PNG file")

    monkeypatch.setattr(jpeg_npz.Image, "open", broken)
    good = tmp_path / "good.npz"
    write_jpeg_npz(good, [_jpeg_bytes(images[0])], [0], ["a"])
    with pytest.raises(ValueError, match=r"good\.npz'?: image 0 .*SyntaxError"):
        load_jpeg_npz(good, cache=False)
    monkeypatch.undo()

    for labels, message in (
        (np.array([0, 5], np.uint8), r"indices into `classes` \(in \[0, 2\)\)"),
        (np.array([0.0, 1.5]), "must be an integer array"),
        (np.array([-1, 0]), "indices into `classes`"),
    ):
        bad = tmp_path / "labels.npz"
        np.savez(
            bad,
            jpeg=np.concatenate([np.frombuffer(j, np.uint8) for j in jpegs[::2]]),
            offsets=np.cumsum([0] + [len(j) for j in jpegs[::2]]),
            labels=labels,
            classes=np.array(["a", "b"]),
        )
        with pytest.raises(ValueError, match=r"labels\.npz.*" + message):
            read_jpeg_npz(bad)
