"""WarmupCosineDecay against its closed form; scaled_learning_rate; bad arguments."""

import math

import keras
import numpy as np
import pytest

from keras_contrastive.optimizers import WarmupCosineDecay, scaled_learning_rate


def closed_form(step, peak, warmup, decay, alpha=0.0, start=0.0):
    if step < warmup:
        return start + (peak - start) * step / warmup
    t = min(step - warmup, decay) / decay
    return peak * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * t)))


def value(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize(
    "peak, warmup, decay, alpha, start",
    [(1.2, 10, 90, 0.0, 0.0), (0.3, 4, 16, 0.1, 0.03), (0.5, 0, 10, 0.2, 0.0)],
)
def test_matches_closed_form(peak, warmup, decay, alpha, start):
    schedule = WarmupCosineDecay(
        peak, warmup, decay, alpha=alpha, warmup_start_learning_rate=start
    )
    steps = sorted(
        {0, warmup // 2, max(warmup - 1, 0), warmup, warmup + decay // 2}
        | {warmup + decay - 1, warmup + decay, warmup + decay + 7, 10 * decay}
    )
    for step in steps:
        want = closed_form(step, peak, warmup, decay, alpha, start)
        assert value(schedule, step) == pytest.approx(want, rel=1e-5, abs=1e-7), step


def test_landmarks():
    schedule = WarmupCosineDecay(
        2.0, 10, 20, alpha=0.25, warmup_start_learning_rate=0.5
    )
    assert value(schedule, 0) == pytest.approx(0.5)  # warmup start
    assert value(schedule, 5) == pytest.approx(1.25)  # half way up
    assert value(schedule, 10) == pytest.approx(2.0)  # peak
    # Mid-decay: cos(pi/2) = 0 -> alpha*peak + (1-alpha)*peak/2.
    assert value(schedule, 20) == pytest.approx(0.5 + 0.75)
    assert value(schedule, 30) == pytest.approx(0.5, abs=1e-6)  # alpha * peak
    assert value(schedule, 1000) == pytest.approx(0.5, abs=1e-6)  # stays there


def test_tensor_steps():
    schedule = WarmupCosineDecay(1.0, 4, 8)
    for dtype in ("int32", "int64", "float32"):
        step = keras.ops.convert_to_tensor(np.array(6, dtype=dtype))
        assert value(schedule, step) == pytest.approx(closed_form(6, 1.0, 4, 8))


def test_serialization_round_trip():
    schedule = WarmupCosineDecay(0.7, 3, 30, alpha=0.05, warmup_start_learning_rate=0.1)
    config = schedule.get_config()
    clone = WarmupCosineDecay.from_config(config)
    assert clone.get_config() == config
    again = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(again, WarmupCosineDecay)
    assert again.get_config() == config
    for step in (0, 2, 3, 17, 40):
        assert value(again, step) == pytest.approx(value(schedule, step))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(peak_learning_rate=-1.0), r"`peak_learning_rate` must be a number in"),
        (dict(warmup_steps=-1), r"`warmup_steps` must be an int >= 0\. Received"),
        (dict(decay_steps=0), "`decay_steps` must be an int >= 1"),
        (dict(alpha=1.5), r"`alpha` must be a number in \[0, 1\]"),
        (dict(alpha=-0.1), "`alpha` must be"),
        (dict(warmup_start_learning_rate=-0.1), "`warmup_start_learning_rate` must"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = dict(peak_learning_rate=0.1, warmup_steps=2, decay_steps=10)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        WarmupCosineDecay(**args)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(peak_learning_rate="high"), "peak_learning_rate"),
        (dict(warmup_steps=2.5), "warmup_steps"),
        (dict(decay_steps=True), "decay_steps"),
    ],
)
def test_bad_argument_types(kwargs, argument):
    args = dict(peak_learning_rate=0.1, warmup_steps=2, decay_steps=10)
    args.update(kwargs)
    # A TypeError, that is also the ValueError the schedule has always raised.
    for error in (TypeError, ValueError):
        with pytest.raises(error, match=f"`{argument}` must be"):
            WarmupCosineDecay(**args)


def test_scaled_learning_rate():
    assert scaled_learning_rate(0.3, 4096) == pytest.approx(4.8)
    assert scaled_learning_rate(0.3, 256, rule="linear") == pytest.approx(0.3)
    assert scaled_learning_rate(0.075, 4096, rule="sqrt") == pytest.approx(4.8)
    assert scaled_learning_rate(0.075, 100, rule="sqrt") == pytest.approx(0.75)


@pytest.mark.parametrize(
    "args, argument",
    [
        ((-0.1, 256), "`base_learning_rate` must be a number in"),
        ((0.1, 0), "`global_batch_size` must be an int >= 1"),
        ((0.1, 12.5), "`global_batch_size` must be an int >= 1"),
        ((0.1, 256, "cubic"), r"`rule` must be one of \('linear', 'sqrt'\)"),
    ],
)
def test_scaled_learning_rate_bad_arguments(args, argument):
    with pytest.raises(ValueError, match=argument):
        scaled_learning_rate(*args)
