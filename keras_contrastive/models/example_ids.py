"""The input convention of methods that need each example's id with its images.

Instance discrimination with a memory bank (Wu et al. 2018) keeps one row per
training example, so every batch must say which examples it holds. The convention,
for `fit`, `evaluate`, `predict` and `call`:

- arrays: `fit((ids, images))` or `fit({"ids": ids, "images": images})`;
- datasets (`tf.data`, `PyDataset`): batches `{"ids": ids, "images": images}`, or
  `((ids, images),)` (a dataset yielding a bare `(ids, images)` pair is read by
  Keras as `(x, y)`, so the images would never reach the model: that raises);
- `ids`: integers, shape (batch,) or (batch, 1).

`ExampleIdsInput` gives a method all of it; the method reads `ids, images =
self.split_input(x)` in its forward pass and checks the range of the ids in
`check_ids`.
"""

import numpy as np
from keras import ops

from keras_contrastive._validation import check_whole_numbers, fail
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.models.fit_data import peek_first_batch

PAIR_HINT = (
    "Pass example ids with the images: `fit((ids, images))` with arrays, or a "
    "dataset yielding `{'ids': ids, 'images': images}` dicts (a dataset yielding "
    "`(ids, images)` pairs is read by Keras as (x, y); yield `((ids, images),)`)."
)


def split_ids(x, name="x"):
    """(ids, images) from an `(ids, images)` pair or an `{"ids", "images"}` dict."""
    if isinstance(x, dict):
        if set(x) >= {"ids", "images"}:
            return x["ids"], x["images"]
        fail(name, "a dict with the keys 'ids' and 'images'", sorted(x))
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return x[0], x[1]
    shape = getattr(x, "shape", None)
    fail(
        name,
        "example ids with the images",
        None if shape is None else tuple(shape),
        detail=PAIR_HINT,
        received_as=f"{name}.shape",
    )


def split_ids_shape(input_shape):
    """(ids shape, images shape) of a build `input_shape` structure."""
    if isinstance(input_shape, (tuple, list)) and not all(
        isinstance(s, (tuple, list)) for s in input_shape
    ):
        split_ids(np.zeros((0,) * len(input_shape)))  # images without ids: raises
    ids_shape, image_shape = (tuple(s) for s in split_ids(input_shape))
    if len(ids_shape) not in (1, 2) or (len(ids_shape) == 2 and ids_shape[1] != 1):
        fail("ids", "a (batch,) vector of example ids", ids_shape, received_as="shape")
    return ids_shape, image_shape


def _dataset_batch(x):
    """The `x` of a dataset's first batch, or None; rejects bare (ids, images)."""
    batch = peek_first_batch(x, raw=True)
    if batch is None:
        return None
    if isinstance(batch, (tuple, list)) and len(batch) == 1:
        return batch[0]
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        if len(np.shape(batch[0])) == 1:
            fail(
                "x",
                "a dataset whose batches carry ids and images together in `x`",
                "(ids, images) pairs, which Keras reads as (x, y)",
                detail=PAIR_HINT,
            )
        return batch[0]  # (x, y[, sample_weight]): labels are ignored
    return batch


class ExampleIdsInput(ContrastiveModel):
    """Mixin for methods whose input is `(ids, images)` (see the module docstring).

    Put it before the image base: `class MemoryBankModel(ExampleIdsInput,
    ImageContrastiveModel)`. It builds from the images' shape, makes `call` (and
    so `predict`) accept images with or without ids, and checks the `fit` /
    `evaluate` data before anything is compiled: inputs without ids, dataset pairs
    that Keras would read as `(x, y)`, and ids that `check_ids` rejects (all ids of
    arrays; the first batch's of datasets).
    """

    def check_ids(self, ids, where):
        """Raises a ValueError for NumPy `ids` the method cannot use."""

    def image_shape(self, input_shape):
        return split_ids_shape(input_shape)[1]

    def split_input(self, x):
        """(ids as an int32 vector, images) of a batch."""
        ids, images = split_ids(x)
        return ops.reshape(ops.cast(ids, "int32"), (-1,)), images

    def call(self, inputs, training=False):
        """The representation `encoder(images)`; `inputs` may also carry ids."""
        if isinstance(inputs, (dict, tuple, list)) or len(inputs.shape) < 3:
            _, inputs = split_ids(inputs, name="inputs")
        return self.encoder(inputs, training=training)

    def images_of(self, x):
        return split_ids(x)[1]

    def check_fit_data(self, x):
        if isinstance(x, (np.ndarray, dict, tuple, list)):
            ids, _ = split_ids(x)
            if isinstance(ids, (np.ndarray, list, range)):
                self._check_id_values(np.asarray(ids), where="`x`")
        else:
            batch = _dataset_batch(x)
            if batch is not None:
                ids, _ = split_ids(batch)
                ids = ops.convert_to_numpy(ids)
                self._check_id_values(ids, where="the first batch of `x`")
        super().check_fit_data(x)

    def _check_id_values(self, ids, where):
        """Whole numbers (a fractional id would be truncated), then `check_ids`."""
        check_whole_numbers(
            "ids",
            ids,
            "integer example ids",
            dtype_error=TypeError,
            detail=f"The ids were read from {where}",
        )
        self.check_ids(ids, where)

    def id_arrays(self, data):
        """`(ids, images)` NumPy arrays if `data` holds arrays (not batches)."""
        if isinstance(data, dict) or (
            isinstance(data, (tuple, list)) and len(data) == 2
        ):
            ids, images = split_ids(data, name="data")
            if isinstance(ids, (np.ndarray, list, range)) and isinstance(
                images, np.ndarray
            ):
                return _int_ids(ids), images
        return None

    def id_batches(self, data):
        """`(ids, images)` NumPy batches of an iterable of batches (a dataset)."""
        for batch in data:
            if isinstance(batch, (tuple, list)) and len(batch) == 1:
                batch = batch[0]
            ids, images = split_ids(batch, name="data")
            yield _int_ids(ops.convert_to_numpy(ids)), images


def _int_ids(ids):
    return np.asarray(ids).reshape(-1).astype("int64")
