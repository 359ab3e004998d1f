"""`load_image_folder`: a user's own labelled images, one sub-folder per class."""

import os

import numpy as np
from PIL import Image

from keras_contrastive._validation import check_one_of, check_size, fail

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
    files are ignored.

    Args:
        path: the root folder.
        image_size: `(height, width)` every image is resized to, or `None` to keep
            the sizes as they are (then all images must share one size).
        color_mode: `"rgb"` (3 channels) or `"grayscale"` (1 channel).
        class_names: optional list of sub-folder names to use, in label order.
        interpolation: resize filter: nearest, bilinear, bicubic, lanczos or box.

    Returns:
        `(images, labels, class_names)`: uint8 `(N, height, width, channels)`,
        int64 `(N,)`, list of str.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a folder, has no class sub-folders or no images,
            a listed class is missing, or an image cannot be read.

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

    found = sorted(e.name for e in os.scandir(path) if e.is_dir())
    if class_names is None:
        if not found:
            fail("path", expectation, path, detail="It has no sub-folders")
        class_names = found
    else:
        class_names = [str(name) for name in class_names]
        missing = [name for name in class_names if name not in found]
        if missing:
            fail(
                "class_names",
                f"sub-folders of {path!r}",
                class_names,
                detail=f"Missing: {missing}",
            )

    files, labels = [], []
    for label, name in enumerate(class_names):
        for root, dirs, names in os.walk(os.path.join(path, name)):
            dirs.sort()
            for file in sorted(names):
                if file.lower().endswith(IMAGE_EXTENSIONS):
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
                image = image.convert(mode)
                if image_size is not None and image.size != image_size[::-1]:
                    # Pillow sizes are (width, height).
                    image = image.resize(
                        image_size[::-1], _INTERPOLATIONS[interpolation]
                    )
                array = np.asarray(image, dtype=np.uint8)
        except OSError as error:
            raise ValueError(f"Could not read image {file!r}: {error}") from error
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
