"""The package's argument checks, in one place and one message style.

Every check raises with Keras' own wording: "`name` must be <expectation>. Received:
name=<value>". A wrong *type* raises `TypeError`, a value of the right type out of
range raises `ValueError`; each check returns the normalised value (a Python
`int`, `float`, tuple, ...), so callers write `self.k = check_int("k", k)`.

Argument order everywhere: the argument's name first, then its value, as the
message prints them.
"""

import contextlib
import math
import numbers

import numpy as np


def fail(name, expectation, value, error=ValueError, detail="", received_as=None):
    """Raises `error("`name` must be <expectation>. Received: name=<value!r>")`.

    `detail` (a sentence) is appended after the received value; `received_as`
    replaces `name` after "Received:" (e.g. "x.shape" for an array argument).
    """
    message = (
        f"`{name}` must be {expectation}. Received: {received_as or name}={value!r}"
    )
    if detail:
        message += f". {detail}"
    raise error(message)


def is_int(value):
    """True for Python and NumPy integers (not bools)."""
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


def is_number(value):
    """True for Python and NumPy real numbers (not bools)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name, value, minimum=None, maximum=None):
    """Returns `value` as an int in [minimum, maximum] (each bound optional)."""
    expectation = "an int" + _bounds_text(minimum, maximum)
    if not is_int(value):
        fail(name, expectation, value, TypeError)
    if (minimum is not None and value < minimum) or (
        maximum is not None and value > maximum
    ):
        fail(name, expectation, value)
    return int(value)


def check_positive_int(name, value):
    """Returns `value` as an int >= 1."""
    return check_int(name, value, minimum=1)


def check_number(
    name, value, minimum=None, maximum=None, min_open=False, max_open=False
):
    """Returns `value` as a finite float in the given interval.

    Bounds are inclusive unless `min_open` / `max_open`.
    """
    left = "(" if min_open or minimum is None else "["
    right = ")" if max_open or maximum is None else "]"
    if minimum is None and maximum is None:
        expectation = "a finite number"
    else:
        low = "-inf" if minimum is None else _fmt(minimum)
        high = "inf" if maximum is None else _fmt(maximum)
        expectation = f"a number in {left}{low}, {high}{right}"
    if not is_number(value):
        fail(name, expectation, value, TypeError)
    number = float(value)
    too_low = minimum is not None and (
        number <= minimum if min_open else number < minimum
    )
    too_high = maximum is not None and (
        number >= maximum if max_open else number > maximum
    )
    if not math.isfinite(number) or too_low or too_high:
        fail(name, expectation, value)
    return number


def check_positive_number(name, value):
    """Returns `value` as a finite float > 0 (temperatures, learning rates)."""
    if not is_number(value):
        fail(name, "a positive number", value, TypeError)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        fail(name, "a positive number", value)
    return number


def check_probability(name, value):
    """Returns `value` as a float in [0, 1] (rates, momenta)."""
    return check_number(name, value, 0.0, 1.0)


def check_one_of(name, value, choices):
    """Returns `value` if it is one of `choices` (strings compared exactly)."""
    if value not in choices:
        fail(name, f"one of {tuple(choices)}", value)
    return value


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        fail(name, "True or False", value, TypeError)
    return bool(value)


def check_seed(name, value):
    """Returns `value` if it is None or an int."""
    if value is not None and not is_int(value):
        fail(name, "an int or None", value, TypeError)
    return None if value is None else int(value)


def check_instance(name, value, types, expectation):
    """Returns `value` if it is an instance of `types`, else a TypeError."""
    if not isinstance(value, types):
        fail(name, expectation, value, TypeError)
    return value


def check_layer(name, value, optional=False):
    """Returns `value` if it is a Keras layer or model (or None when optional)."""
    import keras

    if value is None and optional:
        return None
    expectation = "a Keras layer or model" + (" or None" if optional else "")
    return check_instance(name, value, keras.layers.Layer, expectation)


def check_pair(name, value, minimum=None, maximum=None, allow_scalar=False):
    """Returns `(low, high)` floats with low <= high, within optional bounds.

    With `allow_scalar` a number v is read as (v, v).
    """
    expectation = "a pair (low, high)"
    if allow_scalar:
        expectation = "a number or " + expectation
    if allow_scalar and is_number(value):
        pair = (float(value), float(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(is_number(v) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        fail(name, expectation, value)
    if not all(math.isfinite(v) for v in pair):
        fail(name, "a pair of finite numbers", value)
    if pair[0] > pair[1]:
        fail(name, "a pair with low <= high", value)
    if minimum is not None and pair[0] < minimum:
        fail(name, f"a pair with low >= {_fmt(minimum)}", value)
    if maximum is not None and pair[1] > maximum:
        fail(name, f"a pair with high <= {_fmt(maximum)}", value)
    return pair


def check_rank(name, shape, rank, expectation=None):
    """Raises unless `shape` (a shape tuple) has `rank` dimensions."""
    shape = tuple(shape)
    if len(shape) != rank:
        fail(
            f"{name}.shape",
            expectation or f"of rank {rank}",
            shape,
        )
    return shape


def fail_shapes(names, requirement, shapes, error=ValueError, detail=""):
    """Raises `error` about tensor shapes, in the same style as `fail`.

    "`a` [and `b`] must <requirement>. Received: a.shape=(...)[, b.shape=(...)]"

    Args:
        names: the argument's name, or a tuple of names (joined with "and").
        requirement: what the tensor(s) must satisfy, starting with a verb
            ("have rank 2", "have the same shape").
        shapes: dict of tensor name -> shape, printed as `name.shape=shape`
            (shapes as tuples, unknown dimensions as None).
        error: the exception class (ValueError by default).
        detail: an optional sentence appended after the received values.
    """
    if isinstance(names, str):
        names = (names,)
    subject = " and ".join(f"`{name}`" for name in names)
    received = ", ".join(
        f"{name}.shape={tuple(shape)}" for name, shape in shapes.items()
    )
    message = f"{subject} must {requirement}. Received: {received}"
    if detail:
        message += f". {detail}"
    raise error(message)


def _fmt(number):
    return f"{number:g}" if isinstance(number, float) else str(number)


def _bounds_text(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_size(name, value, allow_scalar=True):
    """Returns `(height, width)` ints >= 1 (image and kernel sizes).

    Takes a pair of ints, or with `allow_scalar` an int n, read as (n, n).
    """
    expectation = "a pair of positive ints (height, width)"
    if allow_scalar:
        expectation = "a positive int or " + expectation
    if allow_scalar and is_int(value):
        size = (value, value)
    elif isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        size = tuple(value)
    else:
        fail(name, expectation, value, TypeError)
    if len(size) != 2 or min(size) < 1:
        fail(name, expectation, value)
    return (int(size[0]), int(size[1]))


class LegacyTypeError(TypeError, ValueError):
    """A wrong type, from an API that raised `ValueError` for it before this module.

    Both `except TypeError` and `except ValueError` catch it, so such an API
    follows the package's rule (wrong type: TypeError) without breaking callers
    that catch the ValueError it used to raise.
    """


@contextlib.contextmanager
def legacy_type_errors():
    """Re-raises a check's `TypeError` inside the block as a `LegacyTypeError`.

    Same message. Wrap only argument checks: every TypeError is converted.
    """
    try:
        yield
    except TypeError as error:
        raise LegacyTypeError(*error.args) from None


# ----------------------------------------------------------------------------------
# Values too large to print, strings, callables and tuples of ints.


class _Shown:
    """Prints as its text: `fail`'s "Received: name=<text>" without quotes."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def shown_as(text):
    """A stand-in value for `fail` that prints as `text` (no quotes).

    For what cannot be printed whole: `fail("x", "free of NaN and inf", shown_as(
    "an array with 3 NaN or inf values"))` raises "`x` must be free of NaN and inf.
    Received: x=an array with 3 NaN or inf values".
    """
    return _Shown(str(text))


def check_whole_numbers(
    name, array, expectation, dtype_error=ValueError, dtype_detail="", detail=""
):
    """Checks that a NumPy array holds integers, or floats that are whole numbers.

    For ids and class labels, which a float array may carry but a cast to int would
    truncate silently. Raises `dtype_error` for any other dtype (strings, bools,
    objects), ValueError for a fractional, NaN or inf value; both messages start
    "`name` must be <expectation>" and end with `detail`; `dtype_detail` is added
    to the dtype error only.
    """
    if array.dtype.kind not in "iuf":
        fail(
            name,
            expectation,
            shown_as(f"an array of dtype {array.dtype}"),
            error=dtype_error,
            detail=" ".join(d for d in (dtype_detail, detail) if d),
        )
    if array.dtype.kind == "f" and array.size:
        whole = np.isfinite(array) & (array == np.round(array))
        if not np.all(whole):
            fail(
                name,
                f"{expectation} (whole numbers)",
                shown_as(f"an array holding {array[~whole].flat[0].item()!r}"),
                detail=detail,
            )


def summarize(value, limit=80):
    """`value` itself when its repr is short, else a short `shown_as` description.

    Arrays and tensors (anything with `shape` and `dtype`) are described by type,
    shape and dtype; other sequences by type and length; anything else by the
    start of its repr.
    """
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _Shown(
            f"{type(value).__name__} of shape {tuple(value.shape)} and dtype "
            f"{getattr(value.dtype, 'name', value.dtype)}"
        )
    text = repr(value)
    if len(text) <= limit:
        return value
    if isinstance(value, (list, tuple, dict, set, str, bytes)):
        return _Shown(f"{type(value).__name__} of length {len(value)}")
    return _Shown(text[: limit - 3] + "...")


def check_string(name, value, allow_empty=False):
    """Returns `value` if it is a str (non-empty unless `allow_empty`)."""
    expectation = "a string" if allow_empty else "a non-empty string"
    if not isinstance(value, str):
        fail(name, expectation, summarize(value), TypeError)
    if not value and not allow_empty:
        fail(name, expectation, value)
    return value


def check_callable(name, value, expectation="callable", optional=False):
    """Returns `value` if it is callable (or None when `optional`)."""
    if value is None and optional:
        return None
    if not callable(value):
        if optional:
            expectation += " or None"
        fail(name, expectation, summarize(value), TypeError)
    return value


def check_int_tuple(name, value, minimum=None, maximum=None):
    """Returns an int or a non-empty list/tuple of ints as a tuple of ints.

    Each int must lie in [minimum, maximum] (each bound optional); the order is
    kept.
    """
    expectation = "an int or a non-empty tuple of ints" + _bounds_text(minimum, maximum)
    items = (value,) if is_int(value) else value
    if not isinstance(items, (tuple, list)) or not items:
        fail(name, expectation, summarize(value), TypeError)
    if not all(is_int(item) for item in items):
        fail(name, expectation, summarize(value), TypeError)
    if any(
        (minimum is not None and item < minimum)
        or (maximum is not None and item > maximum)
        for item in items
    ):
        fail(name, expectation, value)
    return tuple(int(item) for item in items)


def check_strings(name, value, allow_empty=False):
    """Returns `value` as a list of Python `str`: a batch of texts.

    Accepts one string (a batch of one), a list or tuple of strings, a NumPy array
    of strings (rank 0 or 1; unicode, bytes or object dtype) or an eager tensor of
    strings (anything with `.numpy()`, such as a TensorFlow string tensor). Bytes
    are decoded as UTF-8. `None`, numbers and other non-string elements raise a
    `TypeError` naming the element (`name[i]`); an empty batch raises a
    `ValueError` unless `allow_empty`.
    """
    expectation = "a string or a sequence of strings"
    if value is None:
        fail(name, expectation, value, TypeError)
    items = value
    if hasattr(items, "numpy") and not isinstance(items, np.ndarray):
        items = items.numpy()
    if isinstance(items, (str, bytes, np.str_, np.bytes_)):
        items = [items]
    elif isinstance(items, np.ndarray):
        if items.dtype.kind not in "USO" or items.ndim > 1:
            fail(name, expectation + " (rank 0 or 1)", value, TypeError)
        items = items.reshape(-1).tolist()
    elif isinstance(items, (list, tuple)):
        items = list(items)
    else:
        fail(name, expectation, value, TypeError)
    strings = []
    for i, item in enumerate(items):
        if isinstance(item, (bytes, np.bytes_)):
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                fail(f"{name}[{i}]", "valid UTF-8", item)
        if not isinstance(item, str):
            fail(f"{name}[{i}]", "a string", item, TypeError)
        strings.append(str(item))
    if not strings and not allow_empty:
        fail(name, "a non-empty batch of strings", value)
    return strings


# ----------------------------------------------------------------------------------
# Values visible in Python: data checks that raise where they can, without a sync
# inside a compiled step.


def host_value(x, device_copy=True):
    """`x` as a NumPy array when its values are visible in Python, else None.

    Visible: NumPy arrays and scalars, Python numbers, lists and tuples, and eager
    tensors (a TensorFlow `EagerTensor`, a concrete JAX array, a PyTorch tensor
    outside `torch.compile`). Symbolic values (a `keras.KerasTensor`, a
    TensorFlow graph tensor, a JAX tracer, a tensor being compiled) give None:
    a check that needs the values must then work inside the computation (for the
    losses: make the result NaN). Bfloat16 tensors come back as float32.

    With `device_copy=False` an eager tensor on an accelerator also gives None:
    copying it to the host would stall the device (PyTorch's `fit` runs its
    steps eagerly, so a check there would sync every step).
    """
    if x is None:
        return None
    if isinstance(x, (np.ndarray, np.generic, numbers.Number, str, bytes)):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x)
        except (ValueError, TypeError):  # ragged or mixed: not an array
            return None
    module = type(x).__module__
    if module.startswith("keras"):
        value = getattr(x, "value", None)  # a keras.Variable holds a tensor
        return None if value is None or value is x else host_value(value)
    if module.startswith("tensorflow"):
        if not device_copy and "GPU" in str(getattr(x, "device", "")).upper():
            return None
        try:
            value = x.numpy()
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            return None  # a graph tensor
        return np.asarray(value)
    if module.startswith("jax"):
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
        if not device_copy and _jax_off_host(x):
            return None
        return np.asarray(_float32_if_bfloat16(x))
    if module.startswith("torch"):
        import torch

        if not isinstance(x, torch.Tensor) or torch.compiler.is_compiling():
            return None
        if not device_copy and x.device.type != "cpu":
            return None
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return None


def _float32_if_bfloat16(x):
    return x.astype("float32") if str(getattr(x, "dtype", "")) == "bfloat16" else x


def _jax_off_host(x):
    try:
        return any(device.platform != "cpu" for device in x.devices())
    except (AttributeError, RuntimeError):
        return False
