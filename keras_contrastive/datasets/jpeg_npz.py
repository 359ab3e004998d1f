"""The JPEG-npz image format: reading, decoding (with a cache) and writing.

A JPEG-npz file is a NumPy `.npz` (no pickle) with four arrays:

- `jpeg`: uint8, every image's JPEG bytes one after another;
- `offsets`: int64 of length N + 1; image i is `jpeg[offsets[i]:offsets[i + 1]]`;
- `labels`: integer class labels of length N;
- `classes`: the class names, index = label.

It keeps a labelled image set about 3x smaller than raw pixels and lets a subset be
copied without re-encoding (see `select_jpeg_npz`). Decoding uses Pillow.

Decoded arrays are cached: in memory for the life of the process (the last two
files), and, for files of at least `DISK_CACHE_MIN_IMAGES` images, as an
uncompressed `.npy` pair in `$KERAS_HOME/datasets/keras_contrastive/` (default
`~/.keras/datasets/keras_contrastive/`) when that folder is writable. The cache key
is the file's absolute path, size and modification time, so an edited file is decoded
again. Pass `cache=False` to bypass both.
"""

import collections
import hashlib
import io
import os
import zipfile

import numpy as np
from PIL import Image

from keras_contrastive._validation import fail, summarize

REQUIRED_KEYS = ("jpeg", "offsets", "labels", "classes")
# Small files decode in well under a second: not worth a disk copy.
DISK_CACHE_MIN_IMAGES = 10_000
_MEMORY_CACHE = collections.OrderedDict()
_MEMORY_CACHE_SIZE = 2


def read_jpeg_npz(path):
    """Reads and checks a JPEG-npz file without decoding it.

    Returns:
        dict with the four arrays `jpeg`, `offsets`, `labels` (int64) and `classes`
        (a list of str).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        fail("path", "an existing JPEG-npz file", path, FileNotFoundError)
    try:
        with np.load(path, allow_pickle=False) as data:
            found = list(data.files)
            arrays = {key: data[key] for key in REQUIRED_KEYS if key in found}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"Could not read {path!r} as a .npz file: {error}") from error
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise ValueError(
            f"{path!r} is not a JPEG-npz file: missing arrays {missing} "
            f"(expected {list(REQUIRED_KEYS)}, found {found})."
        )
    jpeg, offsets, labels = arrays["jpeg"], arrays["offsets"], arrays["labels"]
    if jpeg.dtype != np.uint8 or jpeg.ndim != 1:
        raise ValueError(f"{path!r}: `jpeg` must be a 1-D uint8 array.")
    if offsets.ndim != 1 or len(offsets) != len(labels) + 1:
        raise ValueError(
            f"{path!r}: `offsets` must have len(labels) + 1 = {len(labels) + 1} "
            f"entries; found shape {offsets.shape}."
        )
    if (
        offsets[0] != 0
        or offsets[-1] != len(jpeg)
        or np.any(np.diff(offsets.astype(np.int64)) <= 0)
    ):
        raise ValueError(
            f"{path!r}: `offsets` must rise strictly from 0 to len(jpeg)={len(jpeg)}."
        )
    classes = [str(name) for name in np.asarray(arrays["classes"]).reshape(-1)]
    labels = labels.reshape(-1)
    if labels.dtype.kind not in "iu":
        raise ValueError(
            f"{path!r}: `labels` must be an integer array; found dtype {labels.dtype}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ValueError(
            f"{path!r}: `labels` must be indices into `classes` (in [0, "
            f"{len(classes)})); they range over [{labels.min()}, {labels.max()}]."
        )
    arrays["offsets"] = offsets.astype(np.int64)
    arrays["labels"] = labels.astype(np.int64)
    arrays["classes"] = classes
    return arrays


def decode_jpeg(data, mode="RGB"):
    """Decodes one JPEG (bytes or uint8 array) to a uint8 array (H, W, C)."""
    with Image.open(io.BytesIO(bytes(data))) as image:
        return np.asarray(image.convert(mode), dtype=np.uint8)


def _decode_all(arrays, path):
    jpeg, offsets = arrays["jpeg"], arrays["offsets"]
    images = None
    for i in range(len(offsets) - 1):
        try:
            image = decode_jpeg(jpeg[offsets[i] : offsets[i + 1]])
        except MemoryError:
            raise
        except Exception as error:  # Pillow raises OSError, SyntaxError, ...
            raise ValueError(
                f"{path!r}: image {i} is not a valid JPEG "
                f"({type(error).__name__}: {error})."
            ) from error
        if images is None:
            images = np.empty((len(offsets) - 1, *image.shape), dtype=np.uint8)
        elif image.shape != images.shape[1:]:
            raise ValueError(
                f"{path!r}: image {i} has shape {image.shape} but image 0 has "
                f"{images.shape[1:]}; all images must share one size."
            )
        images[i] = image
    if images is None:
        images = np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return images


def _cache_key(path):
    stat = os.stat(path)
    text = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def default_cache_dir():
    """`$KERAS_HOME/datasets/keras_contrastive`, Keras' own download location."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "datasets", "keras_contrastive")


def _load_disk_cache(cache_dir, key, num_images):
    stem = os.path.join(cache_dir, f"jpeg_npz_{key}")
    try:
        images = np.load(stem + "_images.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return images if len(images) == num_images else None


def _save_disk_cache(cache_dir, key, images):
    stem = os.path.join(cache_dir, f"jpeg_npz_{key}")
    try:
        os.makedirs(cache_dir, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        temporary = f"{stem}_images.{os.getpid()}.tmp.npy"
        np.save(temporary, images, allow_pickle=False)
        os.replace(temporary, stem + "_images.npy")
    except OSError:
        pass  # A read-only home only costs the decode next time.


def load_jpeg_npz(path, cache=True, cache_dir=None):
    """Decodes a JPEG-npz file to `(images, labels, class_names)`.

    Args:
        path: the `.npz` file.
        cache: use the in-memory and on-disk caches (see the module docstring).
        cache_dir: folder of the on-disk cache; defaults to `default_cache_dir()`.

    Returns:
        `images` uint8 `(N, H, W, 3)`, `labels` int64 `(N,)`, `class_names` list.
        The arrays are fresh copies: changing them leaves the cache intact.

    Example:

    >>> from keras_contrastive.datasets import SAMPLE_PATH
    >>> images, labels, names = load_jpeg_npz(SAMPLE_PATH)
    >>> images.shape, images.dtype.name, names[0]
    ((5000, 32, 32, 3), 'uint8', 'airplane')
    """
    path = os.fspath(path)
    arrays = read_jpeg_npz(path)
    labels, classes = arrays["labels"], arrays["classes"]
    if not cache:
        return _decode_all(arrays, path), labels, classes
    key = _cache_key(path)
    if key in _MEMORY_CACHE:
        _MEMORY_CACHE.move_to_end(key)
        return _MEMORY_CACHE[key].copy(), labels, classes
    use_disk = len(labels) >= DISK_CACHE_MIN_IMAGES
    cache_dir = cache_dir or default_cache_dir()
    images = _load_disk_cache(cache_dir, key, len(labels)) if use_disk else None
    if images is None:
        images = _decode_all(arrays, path)
        if use_disk:
            _save_disk_cache(cache_dir, key, images)
    _MEMORY_CACHE[key] = images
    while len(_MEMORY_CACHE) > _MEMORY_CACHE_SIZE:
        _MEMORY_CACHE.popitem(last=False)
    return images.copy(), labels, classes


def write_jpeg_npz(path, jpegs, labels, classes):
    """Writes a JPEG-npz file from a list of JPEG byte strings.

    Args:
        path: destination `.npz`.
        jpegs: list of `bytes` (or 1-D uint8 arrays), one JPEG per image.
        labels: integer labels, one per image.
        classes: class names, index = label.
    """
    labels = np.asarray(labels).reshape(-1)
    if len(jpegs) != len(labels):
        fail(
            "labels",
            f"one label per image of `jpegs` ({len(jpegs)})",
            len(labels),
            received_as="len(labels)",
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        fail(
            "labels",
            f"in [0, {len(classes)}) (indices into `classes`)",
            summarize(labels),
            detail=f"They range over [{labels.min()}, {labels.max()}]",
        )
    chunks = [np.frombuffer(bytes(j), dtype=np.uint8) for j in jpegs]
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in chunks])
    np.savez(
        path,
        jpeg=np.concatenate(chunks) if chunks else np.zeros(0, np.uint8),
        offsets=offsets,
        labels=labels.astype(np.uint8 if len(classes) <= 256 else np.int64),
        classes=np.asarray(classes, dtype=str),
    )


def select_jpeg_npz(source, destination, indices):
    """Copies the images at `indices` of one JPEG-npz file into a new one.

    The JPEG bytes are copied as they are (no re-encoding, so no further loss).
    """
    arrays = read_jpeg_npz(source)
    jpeg, offsets = arrays["jpeg"], arrays["offsets"]
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    jpegs = [jpeg[offsets[i] : offsets[i + 1]].tobytes() for i in indices]
    write_jpeg_npz(destination, jpegs, arrays["labels"][indices], arrays["classes"])
