"""Argument checks shared by the augmentation layers.

Each helper raises a `ValueError`/`TypeError` that names the argument and what was
expected, so a bad constructor call fails at construction and not deep in a trace.
"""

import numbers


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_value_range(value_range):
    """Returns `(low, high)` as floats, with `low < high`."""
    if (
        not isinstance(value_range, (tuple, list))
        or len(value_range) != 2
        or not all(_is_number(v) for v in value_range)
    ):
        raise ValueError(
            "`value_range` must be a pair of numbers (low, high), such as (0, 255) "
            f"or (0, 1). Received: value_range={value_range!r}"
        )
    low, high = float(value_range[0]), float(value_range[1])
    if not low < high:
        raise ValueError(
            "`value_range` must satisfy low < high. "
            f"Received: value_range={value_range}"
        )
    return (low, high)


def check_rate(rate, name):
    """Returns a probability in [0, 1] as a float."""
    if not _is_number(rate) or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(
            f"`{name}` must be a probability in [0, 1]. Received: {name}={rate!r}"
        )
    return float(rate)


def check_seed(seed):
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
    return seed


def check_range(value, name, minimum=None, maximum=None, allow_scalar=True):
    """Returns `(low, high)` floats from a pair or (if allowed) a number `v` -> (v, v).

    Bounds are inclusive; `low <= high` is required.
    """
    if allow_scalar and _is_number(value):
        pair = (float(value), float(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_is_number(v) for v in value)
    ):
        pair = (float(value[0]), float(value[1]))
    else:
        expected = "a number or a pair (low, high)" if allow_scalar else "a pair"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    if pair[0] > pair[1]:
        raise ValueError(f"`{name}` must satisfy low <= high. Received: {name}={value}")
    if minimum is not None and pair[0] < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value}")
    if maximum is not None and pair[1] > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}. Received: {name}={value}")
    return pair


def check_size(size, name):
    """Returns `(height, width)` positive ints from an int or a pair of ints."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in size)
        or not all(s > 0 for s in size)
    ):
        raise ValueError(
            f"`{name}` must be a positive int or a pair of positive ints "
            f"(height, width). Received: {name}={size!r}"
        )
    return (int(size[0]), int(size[1]))


def check_positive_int(value, name):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return value
