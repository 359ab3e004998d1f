"""State holders of contrastive methods: MoCo's queue and the memory bank.

Both are Keras layers without a `call`: non-trainable float32 variables of
L2-normalised rows, saved with the model, written by a method's `post_step` after
the optimizer step and read (never back-propagated through) in its forward pass.

- `FeatureQueue`: a FIFO of the last `size` keys (He et al. 2020, MoCo; also the
  support set of NNCLR, Dwibedi et al. 2021);
- `MemoryBank`: one row per training example, indexed by its id (Wu et al. 2018).
"""

import warnings

import keras
import numpy as np
from keras import ops

from keras_contrastive._validation import check_positive_int, check_probability
from keras_contrastive.losses._common import l2_normalize as _normalize_rows
from keras_contrastive.losses._common import to_float32


def l2_normalize(x):
    """Row-wise x / ||x|| in float32 (zero rows stay zero): what queues and banks
    store, whatever the compute dtype."""
    return _normalize_rows(to_float32(x))


def unit_rows(shape, dtype=None):
    """Random unit vectors (a Keras initializer): the initial MoCo queue and memory
    bank, as in He et al.'s and Wu et al.'s code."""
    return l2_normalize(keras.random.normal(shape, dtype="float32"))


class StateLayer(keras.layers.Layer):
    """A layer holding a (rows, dim) float32 table of unit rows (plus counters).

    Loading weights saved with another table shape raises a clear ValueError
    (`saved_shape_message`) instead of Keras' generic one.
    """

    def __init__(self, rows, dim, rows_name, table_name, **kwargs):
        super().__init__(**kwargs)
        self.dim = check_positive_int("dim", dim)
        self._rows_name = rows_name
        rows = check_positive_int(rows_name, rows)
        self.table = self.add_weight(
            shape=(rows, self.dim),
            dtype="float32",
            initializer=unit_rows,
            trainable=False,
            name=table_name,
        )
        self.built = True

    def counter(self, name):
        """A non-trainable int32 scalar variable starting at 0."""
        return self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name=name
        )

    def load_own_variables(self, store):
        # Keras may visit a layer twice while loading (once per path that reaches
        # it) and forgets a failure when a later visit succeeds, so the error is
        # remembered and raised again on a visit that finds nothing to load.
        if "0" in store.keys():
            shape = tuple(store["0"].shape)
            expected = tuple(self.table.shape)
            self._saved_shape_error = (
                None
                if shape == expected
                else (
                    f"The saved {type(self).__name__} {self.name!r} has shape "
                    f"{shape} (rows, dim), but this model's has shape "
                    f"{expected}. Rebuild the model with the size (queue size, "
                    "number of examples) and head `output_dim` it was saved with."
                )
            )
        error = getattr(self, "_saved_shape_error", None)
        if error:
            raise ValueError(error)
        super().load_own_variables(store)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class FeatureQueue(StateLayer):
    """A FIFO queue of `size` L2-normalised keys of dimension `dim` (MoCo).

    State (non-trainable, saved with the model): `keys`, float32 (size, dim),
    initialised with random unit vectors as in MoCo's code, and `pointer`, int32,
    the row the next key goes to. `enqueue(keys)` writes a batch of n keys at rows
    (pointer + 0..n-1) mod size, overwriting the oldest ones, and advances the
    pointer by n mod size: any batch size works, including one that does not divide
    `size`, a final partial batch, or n > size (only the last `size` keys are
    kept). After any sequence of batches the queue holds the last `size` keys seen.

    Loading weights saved with a different `size` or `dim` raises a ValueError.

    Args:
        size: number of keys kept.
        dim: key dimension.

    Example:

    >>> import numpy as np
    >>> queue = FeatureQueue(size=4, dim=2)
    >>> queue.enqueue(np.eye(2, dtype="float32"))
    >>> int(queue.pointer.numpy())
    2
    """

    def __init__(self, size, dim, **kwargs):
        super().__init__(size, dim, "size", "keys", **kwargs)
        self.size = size
        self.keys = self.table
        self.pointer = self.counter("pointer")

    def enqueue(self, keys):
        """Writes `keys` (n, dim) over the oldest entries; normalises them first."""
        keys = l2_normalize(keys)
        if keys.shape[-1] is not None and keys.shape[-1] != self.dim:
            raise ValueError(
                f"`keys` must have dimension {self.dim} (the queue's). "
                f"Received: keys.shape={tuple(keys.shape)}"
            )
        n = ops.shape(keys)[0]
        # Of a batch larger than the queue only the last `size` keys survive;
        # slicing keeps the scatter free of duplicate rows.
        kept = keys[-self.size :]
        n_kept = ops.shape(kept)[0]
        offset = ops.cast(n - n_kept, "int32")
        rows = ops.mod(
            self.pointer + offset + ops.arange(n_kept, dtype="int32"), self.size
        )
        self.keys.assign(ops.scatter_update(self.keys, rows[:, None], kept))
        self.pointer.assign(ops.mod(self.pointer + ops.cast(n, "int32"), self.size))

    def nearest(self, queries):
        """The queue entry most similar (cosine) to each query, (n, dim): NNCLR's
        nearest-neighbour positive (Dwibedi et al. 2021, eq. 2)."""
        similarity = ops.matmul(l2_normalize(queries), ops.transpose(self.keys))
        return ops.take(self.keys, ops.argmax(similarity, axis=-1), axis=0)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "dim": self.dim}


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MemoryBank(StateLayer):
    """One L2-normalised feature per training example, indexed by example id.

    State (non-trainable, saved with the model): `entries`, float32
    (num_examples, dim), initialised with random unit vectors (as Wu et al.'s
    code), and `invalid_ids`, an int32 count of out-of-range ids met by `update`.
    The bank is never back-propagated through.

    Args:
        num_examples: number of entries (ids run from 0 to num_examples - 1).
        dim: feature dimension.
        momentum: proximal momentum of `update`: v <- normalize(m v + (1 - m) f);
            0 overwrites.

    Loading weights saved with a different `num_examples` or `dim` raises a
    ValueError.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> bank = MemoryBank(num_examples=10, dim=2, momentum=0.0)
    >>> bank.update(np.array([3]), np.array([[0.0, 2.0]], "float32"))
    >>> keras.ops.convert_to_numpy(bank.lookup(np.array([3]))).tolist()
    [[0.0, 1.0]]
    """

    def __init__(self, num_examples, dim, momentum=0.5, **kwargs):
        super().__init__(num_examples, dim, "num_examples", "entries", **kwargs)
        self.num_examples = num_examples
        self.momentum = check_probability("bank_momentum", momentum)
        self.entries = self.table
        self.invalid_ids = self.counter("invalid_ids")

    def valid(self, ids):
        return ops.logical_and(ids >= 0, ids < self.num_examples)

    @staticmethod
    def write_finite_rows(entries, ids, features):
        """`entries[ids] = features` on NumPy arrays (a refresh of the bank),
        except rows that are not finite (an image with a NaN): those entries keep
        their value, with a warning, since a NaN entry would poison every step that
        draws it as a negative."""
        finite = np.all(np.isfinite(features), axis=1)
        entries[ids[finite]] = features[finite]
        if not np.all(finite):
            warnings.warn(
                f"{int(np.sum(~finite))} example(s) embed to non-finite values (NaN "
                "or inf in their images?); their memory-bank entries were left "
                f"unchanged. Ids: {ids[~finite][:10].tolist()}",
                stacklevel=3,
            )

    def lookup(self, ids):
        """The entries of `ids` (out-of-range ids read the nearest valid entry)."""
        ids = ops.clip(ids, 0, self.num_examples - 1)
        return ops.take(self.entries, ids, axis=0)

    def update(self, ids, features):
        """Proximal update of the entries of `ids` with `features` (normalised).

        Out-of-range ids cannot raise inside a compiled step on every backend:
        they leave the bank untouched and are counted in `invalid_ids`.
        """
        ids = ops.cast(ids, "int32")
        valid = self.valid(ids)
        clipped = ops.clip(ids, 0, self.num_examples - 1)
        old = ops.take(self.entries, clipped, axis=0)
        new = l2_normalize(
            self.momentum * old + (1.0 - self.momentum) * l2_normalize(features)
        )
        new = ops.where(valid[:, None], new, old)
        self.entries.assign(ops.scatter_update(self.entries, clipped[:, None], new))
        invalid = ops.sum(ops.cast(ops.logical_not(valid), "int32"))
        self.invalid_ids.assign(self.invalid_ids + invalid)

    def check_ids(self, ids, where="ids"):
        """Raises a ValueError if the NumPy `ids` are not all in range."""
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_examples):
            bad = ids[(ids < 0) | (ids >= self.num_examples)]
            raise ValueError(
                f"Example ids must lie in [0, num_examples - 1] = [0, "
                f"{self.num_examples - 1}]; {where} holds {bad.size} out-of-range "
                f"id(s), e.g. {int(bad.flat[0])}."
            )

    def get_config(self):
        return {
            **super().get_config(),
            "num_examples": self.num_examples,
            "dim": self.dim,
            "momentum": self.momentum,
        }
