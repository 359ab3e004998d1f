"""The package's argument checks, in one place and one message style.

Every check raises with Keras' own wording: "`name` must be <expectation>. Received:
name=<value>". A wrong *type* raises `TypeError`, a value of the right type out of
range raises `ValueError`; each check returns the normalised value (a Python
`int`, `float`, tuple, ...), so callers write `self.k = check_int("k", k)`.

Argument order everywhere: the argument's name first, then its value, as the
message prints them.
"""

import math
import numbers

import numpy as np


def fail(name, expectation, value, error=ValueError, detail=""):
    """Raises `error("`name` must be <expectation>. Received: name=<value!r>")`.

    `detail` (a sentence) is appended after the received value.
    """
    message = f"`{name}` must be {expectation}. Received: {name}={value!r}"
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
