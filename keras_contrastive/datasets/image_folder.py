"""A user's own images: `load_image_folder` (labelled, into memory) and
`image_folder_dataset` (labelled or not, streamed through tf.data)."""

import os

import numpy as np
from PIL import Image

from keras_contrastive._validation import (
    check_bool,
    check_one_of,
    check_positive_int,
    check_seed,
    check_size,
    fail,
    shown_as,
    summarize,
)

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_COLOR_MODES = {"rgb": "RGB", "grayscale": "L"}
_INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def load_image_folder(
    path,
    image_size=(32, 32),
    color_mode="rgb",
    class_names=None,
    interpolation="bilinear",
):
    """Loads `path/<class name>/<image file>` into arrays.

    Classes are the sub-folders of `path` in sorted order (or `class_names`), label
    = index. Files with an image extension (`IMAGE_EXTENSIONS`, any case) in each
    class folder, searched recursively and sorted, are read with Pillow; other
    files are ignored. Hidden folders and files (names starting with ".", such as
    `.ipynb_checkpoints` or `.DS_Store`) are never classes or images.

    Images of more than 8 bits per channel (16-bit PNG or TIFF) are scaled to 8
    bits (value / 257, rounded), not clipped; 32-bit float images in [0, 1] are
    scaled by 255.

    Every image is decoded into one array. For folders larger than memory, or
    without class sub-folders (unlabeled images for self-supervised training),
    `image_folder_dataset` streams the same pixels through `tf.data`.

    Args:
        path: the root folder.
        image_size: `(height, width)` every image is resized to, or `None` to keep
            the sizes as they are (then all images must share one size).
        color_mode: `"rgb"` (3 channels) or `"grayscale"` (1 channel).
        class_names: optional list of distinct sub-folder names to use, in label
            order.
        interpolation: resize filter: nearest, bilinear, bicubic, lanczos or box.

    Returns:
        `(images, labels, class_names)`: uint8 `(N, height, width, channels)`,
        int64 `(N,)`, list of str.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a folder, has no class sub-folders or no images,
            a listed class is missing or listed twice, or an image cannot be read
            (the message names its file).

    Example:

    ```python
    images, labels, names = load_image_folder("my_photos", image_size=(64, 64))
    ```
    """
    path = os.fspath(path)
    if image_size is not None:
        image_size = check_size("image_size", image_size, allow_scalar=False)
    check_one_of("color_mode", color_mode, tuple(_COLOR_MODES))
    check_one_of("interpolation", interpolation, tuple(_INTERPOLATIONS))
    files, labels, class_names = _list_images(path, class_names, labelled=True)
    images = [
        _read_image(file, color_mode, image_size, interpolation) for file in files
    ]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        fail(
            "image_size",
            "(height, width) for images of different sizes",
            image_size,
            detail=f"Images under {path!r} have different sizes "
            f"{sorted(shapes)[:5]}; `image_size` resizes them to one",
        )
    return np.stack(images), np.asarray(labels, dtype=np.int64), list(class_names)


_CLASS_FOLDERS = "a folder with one sub-folder of images per class"
_ANY_FOLDER = "a folder of images"


def _list_images(path, class_names, labelled):
    """`(files, labels, class_names)`: the image files under `path` in the
    order the loaders read them (sorted, hidden names skipped).

    `labelled`: one class per sub-folder (label = index in `class_names`);
    else every image file under `path`, labels all 0 and no class names.
    """
    expectation = _CLASS_FOLDERS if labelled else _ANY_FOLDER
    if not os.path.exists(path):
        fail("path", expectation, path, FileNotFoundError, detail="It does not exist")
    if not os.path.isdir(path):
        fail("path", expectation, path, detail="It is a file")
    if labelled:
        found = sorted(
            e.name for e in os.scandir(path) if e.is_dir() and not _hidden(e.name)
        )
        if class_names is None:
            if not found:
                fail("path", expectation, path, detail="It has no sub-folders")
            class_names = found
        else:
            class_names = _check_class_names(class_names, found, path)
        roots = [os.path.join(path, name) for name in class_names]
    else:
        roots = [path]
    files, labels = [], []
    for label, root_folder in enumerate(roots):
        for root, dirs, names in os.walk(root_folder):
            dirs[:] = sorted(d for d in dirs if not _hidden(d))
            for file in sorted(names):
                if not _hidden(file) and file.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(root, file))
                    labels.append(label)
    if not files:
        fail(
            "path",
            expectation,
            path,
            detail=f"No images ({', '.join(IMAGE_EXTENSIONS)})"
            + (f" in {class_names}" if labelled else " in it or its sub-folders"),
        )
    return files, labels, class_names


def _read_image(file, color_mode, image_size, interpolation):
    """One image file as uint8 `(height, width, channels)`, or a ValueError
    naming the file."""
    try:
        with Image.open(file) as image:
            image = _to_8_bits(image, file).convert(_COLOR_MODES[color_mode])
            if image_size is not None and image.size != image_size[::-1]:
                # Pillow sizes are (width, height).
                image = image.resize(image_size[::-1], _INTERPOLATIONS[interpolation])
            array = np.asarray(image, dtype=np.uint8)
    except MemoryError:
        raise
    except ValueError as error:
        if str(file) in str(error):
            raise
        raise ValueError(f"Could not read image {file!r}: {error}") from error
    except Exception as error:  # Pillow raises OSError, SyntaxError, ...
        raise ValueError(
            f"Could not read image {file!r}: {type(error).__name__}: {error}"
        ) from error
    return array.reshape(*array.shape[:2], -1)


def image_folder_dataset(
    path,
    labels="inferred",
    image_size=(32, 32),
    batch_size=32,
    color_mode="rgb",
    class_names=None,
    interpolation="bilinear",
    shuffle=True,
    seed=None,
):
    """A streamed `tf.data.Dataset` of the images in a folder, labelled or not.

    The streaming counterpart of `load_image_folder`, for folders too large to
    decode into memory: the file list is made up front (the same files in the
    same order, by the same rules), and each image is read with Pillow only when
    the pipeline reaches it (`tf.numpy_function`, several files in parallel),
    resized, batched and prefetched. Its pixels are exactly those of
    `load_image_folder`.

    - `labels="inferred"`: `path/<class>/<files>` as in `load_image_folder`;
      the dataset yields `(images, labels)` batches.
    - `labels=None`: every image file under `path`, in sub-folders or not
      (each folder's files in sorted order, then its sub-folders in sorted
      order), for self-supervised training; the dataset yields image batches
      only, which `model.fit` of the library's models takes.

    It works on every Keras backend (TensorFlow only runs the input pipeline, as
    in Keras' own `image_dataset_from_directory`), and `model.fit`,
    `compute_embeddings`, `knn_evaluate`, `linear_probe` and `KNNMonitor` accept
    it. Why not `keras.utils.image_dataset_from_directory` itself: it decodes with
    `tf.io.decode_image` (no TIFF or WebP; 16-bit PNGs converted differently
    from `load_image_folder`), resizes with TensorFlow's kernels (other pixels
    than Pillow's), returns float32 batches, and does not skip hidden files such
    as macOS' `._photo.jpg`, which then fail to decode.

    An image that cannot be read raises when the pipeline reaches it, as a
    TensorFlow error whose message names the file.

    Args:
        path: the root folder.
        labels: `"inferred"` (one sub-folder per class) or None (unlabeled).
        image_size: `(height, width)` every image is resized to (required:
            batches need one size).
        batch_size: images per batch, or None for single images.
        color_mode: `"rgb"` (3 channels) or `"grayscale"` (1 channel).
        class_names: with `labels="inferred"`, optional list of the sub-folders
            to use, in label order.
        interpolation: resize filter: nearest, bilinear, bicubic, lanczos or box.
        shuffle: shuffle the files, again at every pass over the dataset.
        seed: the shuffle's seed.

    Returns:
        A `tf.data.Dataset` of uint8 `(batch, height, width, channels)` images
        (and int64 `(batch,)` labels), with attributes `file_paths` (the files,
        in listing order) and `class_names` (None when unlabeled).

    Raises:
        ImportError: TensorFlow is not installed (the `tensorflow` extra).
        FileNotFoundError, ValueError: as `load_image_folder`, for the folder.

    Example:

    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(5):
    ...     Image.fromarray(np.full((8, 8, 3), 50 * i, "uint8")).save(
    ...         f"{folder}/{i}.png"
    ...     )
    >>> dataset = image_folder_dataset(folder, labels=None, image_size=(4, 4),
    ...                                batch_size=2, shuffle=False)
    >>> [tuple(batch.shape) for batch in dataset.as_numpy_iterator()]
    [(2, 4, 4, 3), (2, 4, 4, 3), (1, 4, 4, 3)]
    """
    path = os.fspath(path)
    if labels is not None and labels != "inferred":
        fail("labels", '"inferred" or None', labels)
    if image_size is None:
        fail(
            "image_size",
            "a pair of positive ints (height, width) (batches need one size)",
            image_size,
            TypeError,
        )
    image_size = check_size("image_size", image_size, allow_scalar=False)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    check_one_of("color_mode", color_mode, tuple(_COLOR_MODES))
    check_one_of("interpolation", interpolation, tuple(_INTERPOLATIONS))
    check_bool("shuffle", shuffle)
    seed = check_seed("seed", seed)
    labelled = labels == "inferred"
    if not labelled and class_names is not None:
        fail("class_names", "None when `labels=None`", summarize(class_names))
    files, file_labels, class_names = _list_images(path, class_names, labelled)
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            "`image_folder_dataset` builds a tf.data pipeline, which needs "
            'TensorFlow: `pip install "keras_contrastive[tensorflow]"` (any Keras '
            "backend then reads the dataset), or use `load_image_folder`."
        ) from error

    channels = 1 if color_mode == "grayscale" else 3
    shape = (*image_size, channels)

    def read(file):
        return _read_image(file.decode("utf-8"), color_mode, image_size, interpolation)

    def load(file):
        image = tf.numpy_function(read, [file], tf.uint8, stateful=False)
        return tf.ensure_shape(image, shape)

    if labelled:
        dataset = tf.data.Dataset.from_tensor_slices(
            (files, np.asarray(file_labels, np.int64))
        )
    else:
        dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if labelled:
        dataset = dataset.map(
            lambda file, label: (load(file), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        dataset = dataset.batch(batch_size)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset.file_paths = files
    dataset.class_names = list(class_names) if labelled else None
    return dataset


def _hidden(name):
    """Dot-prefixed names (`.ipynb_checkpoints`, `.DS_Store`, `._photo.jpg`)."""
    return name.startswith(".")


def _check_class_names(class_names, found, path):
    """`class_names` as a list of distinct str, each a (non-hidden) sub-folder."""
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        fail(
            "class_names",
            "a list of sub-folder names",
            summarize(class_names),
            TypeError,
        )
    class_names = [str(name) for name in class_names]
    seen, duplicates = set(), []
    for name in class_names:
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        fail(
            "class_names",
            "distinct sub-folder names",
            summarize(class_names),
            detail=f"Listed more than once: {duplicates} (each would load the "
            "same images under two labels)",
        )
    missing = [name for name in class_names if name not in found]
    if missing:
        hidden = [name for name in missing if _hidden(name)]
        fail(
            "class_names",
            f"sub-folders of {path!r}",
            summarize(class_names),
            detail=f"Missing: {missing}"
            + (
                f"; hidden (dot-prefixed) folders are never classes: {hidden}"
                if hidden
                else ""
            ),
        )
    return class_names


#: Pillow modes of more than 8 bits per channel (one channel).
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _to_8_bits(image, file):
    """An 8-bit ("L") image from a 16-bit, 32-bit integer or float one; others
    as they are (Pillow's own conversions from them clip to 255 instead).

    Integers in [0, 65535] are 16-bit values: v / 257 rounded (65535 -> 255).
    Integers in [0, 255] (a 32-bit image of 8-bit values) and floats in
    [0, 255] are kept; floats in [0, 1] are scaled by 255. Anything else is a
    ValueError naming the file.
    """
    if image.mode not in _WIDE_MODES:
        return image
    values = np.asarray(image)
    low, high = (values.min().item(), values.max().item()) if values.size else (0, 0)
    if low < 0 or high > 65535 or not np.all(np.isfinite(values)):
        fail(
            "path",
            "a folder of images with 8 or 16 bits per channel",
            shown_as(repr(file)),
            detail=f"The image has mode {image.mode} with values in "
            f"[{low}, {high}]; convert it to 8 bits first",
        )
    values = values.astype(np.float64)
    if image.mode == "F" and high <= 1.0:
        values = values * 255.0
    elif image.mode.startswith("I;16") or high > 255:
        values = values / 257.0
    return Image.fromarray(np.round(values).astype(np.uint8))
