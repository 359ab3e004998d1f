"""`load_image_folder`: a user's own labelled images, one sub-folder per class."""

import os

import numpy as np
from PIL import Image

from keras_contrastive._validation import (
    check_one_of,
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
    expectation = "a folder with one sub-folder of images per class"
    if not os.path.exists(path):
        fail("path", expectation, path, FileNotFoundError, detail="It does not exist")
    if not os.path.isdir(path):
        fail("path", expectation, path, detail="It is a file")

    found = sorted(
        e.name for e in os.scandir(path) if e.is_dir() and not _hidden(e.name)
    )
    if class_names is None:
        if not found:
            fail("path", expectation, path, detail="It has no sub-folders")
        class_names = found
    else:
        class_names = _check_class_names(class_names, found, path)

    files, labels = [], []
    for label, name in enumerate(class_names):
        for root, dirs, names in os.walk(os.path.join(path, name)):
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
            detail=f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {class_names}",
        )

    mode = _COLOR_MODES[color_mode]
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                image = _to_8_bits(image, file).convert(mode)
                if image_size is not None and image.size != image_size[::-1]:
                    # Pillow sizes are (width, height).
                    image = image.resize(
                        image_size[::-1], _INTERPOLATIONS[interpolation]
                    )
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
        images.append(array.reshape(*array.shape[:2], -1))
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
