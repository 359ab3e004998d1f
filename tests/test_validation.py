"""The argument checks of keras_contrastive._validation, against hand-written messages.

Each bad call must raise exactly the expected exception type with exactly the
expected message, "`name` must be <expectation>. Received: name=<value>"; each good
call returns the normalised value (Python int, float, bool or tuple).
"""

import keras
import numpy as np
import pytest

from keras_contrastive import _validation as v


def raises(error, message, check, *args, **kwargs):
    """Asserts that `check(*args, **kwargs)` raises exactly `error(message)`."""
    with pytest.raises(error) as info:
        check(*args, **kwargs)
    assert type(info.value) is error
    assert str(info.value) == message


def same(result, expected):
    """Equal values of equal types, element by element for tuples."""
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(expected, tuple):
        assert [type(r) for r in result] == [type(e) for e in expected]


def test_fail():
    raises(
        ValueError, "`k` must be an int. Received: k='x'", v.fail, "k", "an int", "x"
    )
    raises(
        TypeError,
        "`k` must be an int. Received: k=3.5. Pass a whole number",
        v.fail,
        "k",
        "an int",
        3.5,
        TypeError,
        detail="Pass a whole number",
    )


def test_is_int_and_is_number():
    assert v.is_int(3) and v.is_int(np.int64(3))
    assert not any(v.is_int(x) for x in (True, np.bool_(True), 3.0, "3", None))
    assert v.is_number(3) and v.is_number(2.5) and v.is_number(np.float32(2.5))
    assert not any(v.is_number(x) for x in (True, np.bool_(False), "1", None, 1j))


def test_check_int():
    same(v.check_int("n", np.int64(4)), 4)
    same(v.check_int("n", 1, minimum=1, maximum=3), 1)
    same(v.check_int("n", 3, minimum=1, maximum=3), 3)
    raises(TypeError, "`n` must be an int. Received: n=2.0", v.check_int, "n", 2.0)
    raises(TypeError, "`n` must be an int. Received: n=True", v.check_int, "n", True)
    raises(
        ValueError,
        "`n` must be an int in [1, 3]. Received: n=0",
        v.check_int,
        "n",
        0,
        minimum=1,
        maximum=3,
    )
    raises(
        ValueError,
        "`n` must be an int in [1, 3]. Received: n=4",
        v.check_int,
        "n",
        4,
        minimum=1,
        maximum=3,
    )
    raises(
        ValueError,
        "`n` must be an int >= 0. Received: n=-1",
        v.check_int,
        "n",
        -1,
        minimum=0,
    )
    raises(
        ValueError,
        "`n` must be an int <= 4. Received: n=5",
        v.check_int,
        "n",
        5,
        maximum=4,
    )


def test_check_positive_int():
    same(v.check_positive_int("n", 1), 1)
    raises(
        ValueError,
        "`n` must be an int >= 1. Received: n=0",
        v.check_positive_int,
        "n",
        0,
    )
    raises(
        TypeError,
        "`n` must be an int >= 1. Received: n='1'",
        v.check_positive_int,
        "n",
        "1",
    )


def test_check_number():
    same(v.check_number("x", np.float32(0.5)), 0.5)
    same(v.check_number("x", 2), 2.0)
    raises(
        TypeError,
        "`x` must be a finite number. Received: x='0.5'",
        v.check_number,
        "x",
        "0.5",
    )
    for value, text in ((float("nan"), "nan"), (float("inf"), "inf")):
        raises(
            ValueError,
            f"`x` must be a finite number. Received: x={text}",
            v.check_number,
            "x",
            value,
        )
    # Closed bounds include their ends; open ones exclude them.
    same(v.check_number("x", 0, minimum=0, maximum=1), 0.0)
    same(v.check_number("x", 2.5, minimum=0.0, maximum=2.5), 2.5)
    raises(
        ValueError,
        "`x` must be a number in [0, 1]. Received: x=2",
        v.check_number,
        "x",
        2,
        minimum=0,
        maximum=1,
    )
    raises(
        ValueError,
        "`x` must be a number in (0, inf). Received: x=0.0",
        v.check_number,
        "x",
        0.0,
        minimum=0.0,
        min_open=True,
    )
    raises(
        ValueError,
        "`x` must be a number in (-inf, 1). Received: x=1.0",
        v.check_number,
        "x",
        1.0,
        maximum=1.0,
        max_open=True,
    )
    raises(
        ValueError,
        "`x` must be a number in [0, inf). Received: x=inf",
        v.check_number,
        "x",
        float("inf"),
        minimum=0.0,
    )


def test_check_positive_number():
    same(v.check_positive_number("t", 0.1), 0.1)
    same(v.check_positive_number("t", 2), 2.0)
    message = "`t` must be a positive number. Received: t="
    raises(ValueError, message + "0", v.check_positive_number, "t", 0)
    raises(ValueError, message + "inf", v.check_positive_number, "t", float("inf"))
    raises(TypeError, message + "'1'", v.check_positive_number, "t", "1")


def test_check_probability():
    same(v.check_probability("p", 0), 0.0)
    same(v.check_probability("p", 1), 1.0)
    raises(
        ValueError,
        "`p` must be a number in [0, 1]. Received: p=1.5",
        v.check_probability,
        "p",
        1.5,
    )
    raises(
        TypeError,
        "`p` must be a number in [0, 1]. Received: p=None",
        v.check_probability,
        "p",
        None,
    )


def test_check_one_of():
    assert v.check_one_of("rule", "linear", ("linear", "sqrt")) == "linear"
    raises(
        ValueError,
        "`rule` must be one of ('linear', 'sqrt'). Received: rule='cubic'",
        v.check_one_of,
        "rule",
        "cubic",
        ["linear", "sqrt"],
    )


def test_check_bool():
    same(v.check_bool("flag", np.bool_(True)), True)
    same(v.check_bool("flag", False), False)
    raises(
        TypeError,
        "`flag` must be True or False. Received: flag=1",
        v.check_bool,
        "flag",
        1,
    )


def test_check_seed():
    assert v.check_seed("seed", None) is None
    same(v.check_seed("seed", np.int32(3)), 3)
    message = "`seed` must be an int or None. Received: seed="
    raises(TypeError, message + "'1'", v.check_seed, "seed", "1")
    raises(TypeError, message + "True", v.check_seed, "seed", True)


def test_check_instance_and_check_layer():
    assert v.check_instance("x", "a", str, "a string") == "a"
    raises(
        TypeError,
        "`x` must be a string. Received: x=3",
        v.check_instance,
        "x",
        3,
        str,
        "a string",
    )
    layer = keras.layers.Dense(2)
    assert v.check_layer("layer", layer) is layer
    assert v.check_layer("layer", None, optional=True) is None
    raises(
        TypeError,
        "`layer` must be a Keras layer or model. Received: layer=None",
        v.check_layer,
        "layer",
        None,
    )
    raises(
        TypeError,
        "`layer` must be a Keras layer or model or None. Received: layer=3",
        v.check_layer,
        "layer",
        3,
        optional=True,
    )


def test_check_pair():
    same(v.check_pair("r", (1, 2)), (1.0, 2.0))
    same(v.check_pair("r", [np.float32(0.5), 1]), (0.5, 1.0))
    same(v.check_pair("r", 0.5, allow_scalar=True), (0.5, 0.5))
    same(v.check_pair("r", (0, 1), minimum=0.0, maximum=1.0), (0.0, 1.0))
    raises(
        ValueError,
        "`r` must be a pair (low, high). Received: r=0.5",
        v.check_pair,
        "r",
        0.5,
    )
    raises(
        ValueError,
        "`r` must be a pair (low, high). Received: r=(1, 2, 3)",
        v.check_pair,
        "r",
        (1, 2, 3),
    )
    raises(
        ValueError,
        "`r` must be a number or a pair (low, high). Received: r='ab'",
        v.check_pair,
        "r",
        "ab",
        allow_scalar=True,
    )
    raises(
        ValueError,
        "`r` must be a pair with low <= high. Received: r=(2, 1)",
        v.check_pair,
        "r",
        (2, 1),
    )
    raises(
        ValueError,
        "`r` must be a pair with low >= 0. Received: r=(-1, 1)",
        v.check_pair,
        "r",
        (-1, 1),
        minimum=0.0,
    )
    raises(
        ValueError,
        "`r` must be a pair with high <= 1. Received: r=(0, 2)",
        v.check_pair,
        "r",
        (0, 2),
        maximum=1.0,
    )


def test_check_rank():
    same(v.check_rank("x", [2, 3], 2), (2, 3))
    raises(
        ValueError,
        "`x.shape` must be of rank 2. Received: x.shape=(4,)",
        v.check_rank,
        "x",
        (4,),
        2,
    )
    raises(
        ValueError,
        "`x.shape` must be (batch, dim). Received: x.shape=(4,)",
        v.check_rank,
        "x",
        (4,),
        2,
        expectation="(batch, dim)",
    )


def test_check_size():
    same(v.check_size("image_size", 32), (32, 32))
    same(v.check_size("image_size", [24, np.int64(32)]), (24, 32))
    same(v.check_size("image_size", (1, 1), allow_scalar=False), (1, 1))
    both = "a positive int or a pair of positive ints (height, width)"
    for error, value, text in (
        (ValueError, 0, "0"),
        (ValueError, (32, 32, 3), "(32, 32, 3)"),
        (ValueError, (0, 4), "(0, 4)"),
        (TypeError, "32", "'32'"),
        (TypeError, (32.0, 32), "(32.0, 32)"),
        (TypeError, True, "True"),
    ):
        raises(
            error,
            f"`image_size` must be {both}. Received: image_size={text}",
            v.check_size,
            "image_size",
            value,
        )
    pair = "`image_size` must be a pair of positive ints (height, width). Received: "
    raises(
        TypeError,
        pair + "image_size=32",
        v.check_size,
        "image_size",
        32,
        allow_scalar=False,
    )
    raises(
        ValueError,
        pair + "image_size=[0, 4]",
        v.check_size,
        "image_size",
        [0, 4],
        allow_scalar=False,
    )


def test_legacy_type_errors():
    # A wrong type becomes a LegacyTypeError: a TypeError and a ValueError at once.
    with pytest.raises(v.LegacyTypeError) as info:
        with v.legacy_type_errors():
            v.check_int("n", "1")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert str(info.value) == "`n` must be an int. Received: n='1'"
    # A bad value stays a plain ValueError; a good one passes through.
    with pytest.raises(ValueError) as info:
        with v.legacy_type_errors():
            v.check_int("n", -1, minimum=0)
    assert type(info.value) is ValueError
    with v.legacy_type_errors():
        same(v.check_int("n", 2, minimum=0), 2)
