"""Fuzzing: every public loss and every augmentation layer on random inputs.

Hypothesis draws shapes, dtypes (float16, bfloat16, float32, float64; uint8 and
others for images), values (normal, zeros, tiny, huge, out of range, with NaN and
inf sprinkled in), containers (NumPy arrays or backend tensors) and arguments
(valid ones across their ranges, and invalid ones). The only outcomes allowed:

- a finite result;
- for NaN or inf in the inputs, a result that is NaN (losses: always NaN, the
  package's "losses never hide NaN" policy) or finite (layers: a cutout may cover
  the bad pixel);
- a `ValueError` or `TypeError` raised by this library (the innermost frame of
  its traceback lies in `keras_contrastive`), never one from deep inside a
  backend. Inputs the library must refuse (fractional or string labels, NaN or
  negative sample weights, 16-bit images under (0, 255)) must raise.

Never an inf, never another exception.

Examples: `KC_FUZZ_EXAMPLES` in total per backend (default 2,000, spread over the
targets); `KC_FUZZ_EXAMPLES=100000` is the slow run. `KC_FUZZ_REPORT=<file>`
appends a line of counts per target. On JAX the shapes (and the configurations
of the layers, which key their compiled functions) come from small sets so that
compiled kernels are reused; elsewhere they vary more.
"""

import math
import os
import time
import traceback
import warnings

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_contrastive
from keras_contrastive import layers as KL
from keras_contrastive import losses as L

BACKEND = keras.backend.backend()
JAX = BACKEND == "jax"
EXAMPLES = int(os.environ.get("KC_FUZZ_EXAMPLES", "2000"))
REPORT = os.environ.get("KC_FUZZ_REPORT")
LIBRARY = os.path.dirname(os.path.abspath(keras_contrastive.__file__))
NAN, INF = float("nan"), float("inf")
STARTED = time.time()

# ----------------------------------------------------------------------------------
# Outcomes


COUNTS = {}


class MustRaise(Exception):
    pass


def _progress(every=5000):
    """With `KC_FUZZ_REPORT`, a line every `every` examples (a long run that
    cannot finish still tells how far it got)."""
    total = sum(c["examples"] for c in COUNTS.values())
    if REPORT and total % every == 0:
        with open(REPORT, "a") as f:
            f.write(
                f"{BACKEND} progress {total} examples {time.time() - STARTED:.0f}s\n"
            )


def _from_library(error):
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(LIBRARY)


def _to_numpy(out):
    if isinstance(out, (tuple, list)):
        return np.concatenate([_to_numpy(o).reshape(-1) for o in out])
    if keras.backend.standardize_dtype(out.dtype) == "bfloat16":
        out = keras.ops.cast(out, "float32")  # NumPy has no bfloat16
    if type(out).__module__.startswith("tensorflow"):
        out = out.numpy()
    else:
        out = keras.ops.convert_to_numpy(out)
    return np.asarray(out, dtype=np.float64)


def check_outcome(target, call, bad_input, must_raise=False, nan_policy=False):
    """Runs `call()` and checks its outcome against the rules above."""
    counts = COUNTS.setdefault(target, {"examples": 0, "error": 0, "nan": 0})
    counts["examples"] += 1
    _progress()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                out = call()
    except (ValueError, TypeError) as error:
        counts["error"] += 1
        if not _from_library(error):
            raise AssertionError(
                f"{target}: {type(error).__name__} from outside keras_contrastive"
            ) from error
        return
    if must_raise:
        raise MustRaise(f"{target}: expected a ValueError, got a result")
    values = _to_numpy(out)
    assert not np.any(np.isinf(values)), f"{target}: inf in the result"
    if bad_input:
        if np.any(np.isnan(values)):
            counts["nan"] += 1
        if nan_policy and values.size:
            assert np.all(np.isnan(values)), f"{target}: NaN input, non-NaN loss"
    else:
        assert np.all(np.isfinite(values)), f"{target}: finite input, NaN result"


# ----------------------------------------------------------------------------------
# Arrays


FLOATS = ["float32", "float16", "bfloat16", "float64"]
SCALES = {
    "normal": [1e-3, 0.1, 1.0, 10.0, 1e3],
    "zeros": [0.0],
    "tiny": [1e-30, 1e-40, 1e-45],
    "huge": [1e15, 1e20, 1e30, 1e38, 3.4e38],
}


def _as_input(host, dtype, container):
    """(the value handed to the library, its float64 view after the cast)."""
    if dtype == "bfloat16" or container == "tensor":
        tensor = keras.ops.cast(keras.ops.convert_to_tensor(host), dtype)
        return tensor, _to_numpy(tensor)
    with np.errstate(all="ignore"):
        array = host.astype(dtype)
    return array, array.astype(np.float64)


@st.composite
def arrays(draw, shape, dtypes=FLOATS, specials=True):
    """(value, has NaN or inf after the cast) of a float array of `shape`."""
    dtype = draw(st.sampled_from(dtypes))
    kind = draw(st.sampled_from(["normal", "normal", "zeros", "tiny", "huge", "mix"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape)
    if kind == "mix":  # every magnitude at once
        x = x * 10.0 ** rng.uniform(-40, 38, shape)
    else:
        x = x * draw(st.sampled_from(SCALES[kind]))
    if len(shape) == 2 and shape[0] > 1:
        if draw(st.booleans()):
            x[rng.integers(0, shape[0])] = 0.0  # a zero row
        if draw(st.booleans()):
            x[1:] = x[0]  # duplicate rows
    if specials and x.size and draw(st.integers(0, 3)) == 0:
        value = draw(st.sampled_from([NAN, INF, -INF]))
        x.reshape(-1)[rng.integers(0, x.size, draw(st.integers(1, 3)))] = value
    container = draw(st.sampled_from(["numpy", "tensor"]))
    value, seen = _as_input(x, dtype, container)
    return value, not np.all(np.isfinite(seen))


# ----------------------------------------------------------------------------------
# Losses

ROWS = [1, 4, 4] if JAX else [0, 1, 2, 3, 3, 5, 5]
DIMS = [3] if JAX else [1, 2, 3, 8]

# name -> (valid values, invalid values); the invalid ones must raise.
PARAMS = {
    "temperature": (
        [1e-6, 0.01, 0.07, 0.5, 1.0, 10.0, 1e6],
        [0.0, -1.0, NAN, INF, 1e-7, 1e-40, "0.1", None],
    ),
    "margin": ([0.0, 0.5, 1.0, 100.0, 1e12], [-1.0, NAN, INF, 1e13, "1", None]),
    "tau_plus": ([0.0, 0.1, 0.5, 0.999999], [1.0, -0.1, NAN, 2.0, "0.1"]),
    "bias": ([-1e6, -10.0, 0.0, 3.5, 1e6], [INF, NAN, 1e7, -1e30, "x"]),
    "logit_scale": ([1e-6, 1.0, 10.0, 1e3, 1e6], [0.0, -1.0, INF, NAN, 1e7, "10"]),
    "logit_bias": ([-1e6, -10.0, 0.0, 1e6], [INF, NAN, -1e7, None]),
    "redundancy_weight": ([0.0, 5e-3, 1.0, 1e6], [-1.0, 1e7, NAN, "0"]),
    "scale_loss": ([1e-3, 1.0, 1e6], [0.0, 1e7, INF, -1.0]),
    "mining": (["all", "hard", "semi-hard"], ["easy", None, 3]),
    "reduction": (["mean", "sum", None, "none", "sum_over_batch_size"], ["max", 1]),
}
# Hyper-parameters that may also be tensors (learnable); drawn valid.
TENSOR_PARAMS = {"temperature", "margin", "logit_scale", "logit_bias"}


@st.composite
def params(draw, names):
    """({name: value}, whether one of them is invalid)."""
    values = {}
    for name in names:
        value = draw(st.sampled_from(PARAMS[name][0]))
        if name in TENSOR_PARAMS and draw(st.integers(0, 7)) == 0:
            value = keras.ops.convert_to_tensor(np.float32(value))
        values[name] = value
    invalid = bool(names) and draw(st.integers(0, 6)) == 0
    if invalid:
        name = draw(st.sampled_from(names))
        values[name] = draw(st.sampled_from(PARAMS[name][1]))
    return values, invalid


LABEL_KINDS = {
    # kind -> must raise (when the batch has rows)
    "int": False,
    "int32": False,
    "uint8": False,
    "negative": False,
    "whole_float": False,
    "column": False,
    "tensor": False,
    "float_tensor": False,
    "fraction": True,
    "fraction_tensor": True,
    "nan": True,
    "string": True,
    "bool": True,
    "huge": True,
    "wrong_length": True,
}


@st.composite
def labels(draw, n):
    valid = draw(st.integers(0, 99)) < 75
    kind = draw(st.sampled_from([k for k, bad in LABEL_KINDS.items() if bad != valid]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    y = rng.integers(0, draw(st.integers(1, 4)), n)
    if kind == "int32":
        y = y.astype("int32")
    elif kind == "uint8":
        y = y.astype("uint8")
    elif kind == "negative":
        y = y - 2
    elif kind == "whole_float":
        y = y.astype("float32")
    elif kind == "column":
        y = y[:, None]
    elif kind == "tensor":
        y = keras.ops.convert_to_tensor(y.astype("int32"))
    elif kind == "float_tensor":
        y = keras.ops.convert_to_tensor(y.astype("float32"))
    elif kind == "fraction":
        y = y + 0.5
    elif kind == "fraction_tensor":
        y = keras.ops.convert_to_tensor((y + 0.25).astype("float32"))
    elif kind == "nan":
        y = y.astype("float64")
        if n:
            y[0] = NAN
    elif kind == "string":
        y = np.array([f"c{v}" for v in y], dtype=str)
    elif kind == "bool":
        y = y.astype(bool)
    elif kind == "huge":
        y = y.astype("int64") + 2**40
    elif kind == "wrong_length":
        y = rng.integers(0, 2, n + 1)
    must_raise = LABEL_KINDS[kind] and (n > 0 or kind == "wrong_length")
    if kind in ("string", "bool"):
        must_raise = True  # the dtype alone is wrong
    return y, must_raise


@st.composite
def sample_weights(draw, n, rows_per_sample=1):
    """(sample_weight, must raise)."""
    group = draw(st.integers(0, 99))
    if group < 35:
        kind = "none"
    elif group < 80:
        kind = draw(
            st.sampled_from(["ones", "random", "zeros", "scalar", "column", "tensor"])
        )
    else:
        kind = draw(
            st.sampled_from(["nan", "negative", "inf", "wrong_length", "strings"])
        )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.uniform(0, 3, n * draw(st.sampled_from([1, rows_per_sample])))
    if kind == "none":
        return None, False
    if kind == "ones":
        return np.ones(n), False
    if kind == "zeros":
        return np.zeros(n), False
    if kind == "scalar":
        return np.float32(0.5), False
    if kind == "column":
        return w[:, None], False
    if kind == "tensor":
        return keras.ops.convert_to_tensor(w.astype("float32")), False
    if kind in ("nan", "negative", "inf"):
        if w.size == 0:
            return w, False
        w[rng.integers(0, w.size)] = {"nan": NAN, "negative": -1.0, "inf": INF}[kind]
        return w, True
    if kind == "wrong_length":
        return rng.uniform(0, 1, n + 7), True
    if kind == "strings":
        return np.array(["a"] * n), n > 0
    return w, False


PAIR_LOSSES = {
    # name -> (functional form (a, b, **params), its parameters, class or None)
    "info_nce": (L.info_nce, ["temperature"], L.InfoNCE),
    "nt_xent": (L.nt_xent, ["temperature"], L.NTXent),
    "symmetric_info_nce": (L.symmetric_info_nce, ["temperature"], L.SymmetricInfoNCE),
    "binary_nce": (L.binary_nce, ["temperature", "bias"], L.BinaryNCE),
    "debiased_nt_xent": (
        L.debiased_nt_xent,
        ["temperature", "tau_plus"],
        L.DebiasedNTXent,
    ),
    "byol_loss": (L.byol_loss, [], L.BYOLLoss),
    "siglip_loss": (L.siglip_loss, ["logit_scale", "logit_bias"], L.SigLIPLoss),
    "barlow_twins_loss": (
        L.barlow_twins_loss,
        ["redundancy_weight", "scale_loss"],
        L.BarlowTwinsLoss,
    ),
}
LABEL_LOSSES = {
    "contrastive_loss": (L.contrastive_loss, ["margin"], L.ContrastiveLoss),
    "triplet_loss": (L.triplet_loss, ["margin", "mining"], L.TripletLoss),
    "lifted_structure_loss": (
        L.lifted_structure_loss,
        ["margin"],
        L.LiftedStructureLoss,
    ),
    "supervised_contrastive": (
        L.supervised_contrastive,
        ["temperature"],
        L.SupervisedContrastive,
    ),
}


@st.composite
def pair_shapes(draw):
    n, d = draw(st.sampled_from(ROWS)), draw(st.sampled_from(DIMS))
    second = (n, d)
    if draw(st.integers(0, 9)) == 0:  # mismatched or wrong-rank inputs
        second = draw(st.sampled_from([(n + 1, d), (n, d + 1), (n,), (n, d, 1)]))
    return (n, d), second


def fuzz_pair(data, name, as_class):
    fn, names, cls = PAIR_LOSSES[name]
    first, second = data.draw(pair_shapes())
    (a, bad_a), (b, bad_b) = data.draw(arrays(first)), data.draw(arrays(second))
    names = names + (["reduction"] if as_class else [])
    values, invalid = data.draw(params(names))
    bad = bad_a or bad_b
    must_raise = invalid
    if not as_class:
        extra = {}
        if name == "info_nce" and data.draw(st.booleans()):
            shape = data.draw(st.sampled_from([(3, first[1]), (first[0], 2, first[1])]))
            negatives, bad_n = data.draw(arrays(shape))
            extra["negatives"] = negatives
            bad = bad or bad_n
        return check_outcome(
            name,
            lambda: fn(a, b, **values, **extra),
            bad,
            must_raise,
            nan_policy=True,
        )
    target = cls.__name__
    rows = 2 if cls in (L.NTXent, L.DebiasedNTXent) else 1
    weight, bad_weight = data.draw(sample_weights(first[0], rows))
    if cls is L.BarlowTwinsLoss and weight is not None:
        bad_weight = True  # a batch-level loss takes no sample weights
    return check_outcome(
        target,
        lambda: cls(**values)(a, b, sample_weight=weight),
        bad,
        must_raise or bad_weight,
        nan_policy=True,
    )


def fuzz_label(data, name, as_class):
    fn, names, cls = LABEL_LOSSES[name]
    n, d = data.draw(st.sampled_from(ROWS)), data.draw(st.sampled_from(DIMS))
    shape = (n, d) if data.draw(st.integers(0, 9)) else (n,)
    x, bad = data.draw(arrays(shape))
    y, bad_labels = data.draw(labels(n))
    names = names + (["reduction"] if as_class else [])
    values, invalid = data.draw(params(names))
    if not as_class:
        return check_outcome(
            name, lambda: fn(y, x, **values), bad, invalid or bad_labels, True
        )
    weight, bad_weight = data.draw(sample_weights(n))
    return check_outcome(
        cls.__name__,
        lambda: cls(**values)(y, x, sample_weight=weight),
        bad,
        invalid or bad_labels or bad_weight,
        nan_policy=True,
    )


def fuzz_triplet_margin(data):
    n, d = data.draw(st.sampled_from(ROWS)), data.draw(st.sampled_from(DIMS))
    inputs = [data.draw(arrays((n, d))) for _ in range(3)]
    values, invalid = data.draw(params(["margin"]))
    bad = any(flag for _, flag in inputs)
    return check_outcome(
        "triplet_margin",
        lambda: L.triplet_margin(*[v for v, _ in inputs], **values),
        bad,
        invalid,
        nan_policy=True,
    )


def fuzz_utility(data, name):
    n, d = data.draw(st.sampled_from(ROWS)), data.draw(st.sampled_from(DIMS))
    x, bad_x = data.draw(arrays((n, d)))
    other = data.draw(st.sampled_from([None, (3, d), (3, d + 1)]))
    y, bad_y = data.draw(arrays(other)) if other else (None, False)
    if name == "pairwise_distances":
        squared = data.draw(st.booleans())
        call = lambda: L.pairwise_distances(x, y, squared=squared)  # noqa: E731
    elif name == "cosine_similarity_matrix":
        call = lambda: L.cosine_similarity_matrix(x, y)  # noqa: E731
    else:
        negatives, bad_y = data.draw(arrays((4, d)))
        # (num_hard, num_synthetic, num_query_mixes): each new triple compiles
        # on JAX, so there they come from a few values.
        hard = [2, 0, 5] if JAX else [4, 2, 1, 3, 0, -1, 5]
        mixes = [2, 0, -1] if JAX else [2, 0, 1, 5, -1]
        counts = [data.draw(st.sampled_from(hard))] + [
            data.draw(st.sampled_from(mixes)) for _ in range(2)
        ]
        seed = data.draw(st.sampled_from([0, 7, None, "x"]))

        def call():
            return L.mix_hard_negatives(x, negatives, *counts, seed=seed)

    return check_outcome(name, call, bad_x or bad_y)


# ----------------------------------------------------------------------------------
# Augmentation layers

IMAGE_DTYPES = ["uint8", "float32", "float16", "bfloat16", "int64", "uint16"]
# Shapes that run the augmentation (and on JAX compile it), and shapes that must
# be refused before any computation.
# (On JAX a batch of one and a single image share one compiled shape.)
IMAGE_SHAPES = [(1, 8, 8, 3), (8, 8, 3)]
if not JAX:
    IMAGE_SHAPES += [(2, 8, 8, 3), (1, 5, 9, 3), (0, 8, 8, 3), (2, 1, 1, 3)]
BAD_IMAGE_SHAPES = [(8, 8), (2, 8, 8, 3, 1), (8,)]
BAD_CHANNELS = [(2, 8, 8, 2), (2, 8, 8, 4), (2, 8, 8, 1)]  # for the colour layers
OTHER_CHANNELS = [(2, 8, 8, 1), (2, 8, 8, 4)]  # the geometric layers take them
VALUE_RANGES = [(0, 255), (0, 1), (-1, 1)]
if not JAX:
    VALUE_RANGES += [(0.0, 65535.0), (-1000.0, 5.5)]
BAD_VALUE_RANGES = [(1, 0), (1, 1), "x", (0, NAN), (0, 1, 2)]

# name -> (factory(value_range, **options), option strategies (valid), invalid
# options). On JAX the valid options come from the first value of each list.
LAYERS = {
    "RandomResizedCrop": (
        lambda vr, size=6, scale=(0.08, 1.0), flip=False: KL.RandomResizedCrop(
            size, size + 1, scale=scale, horizontal_flip=flip, value_range=vr
        ),
        {
            "size": [6, 1, 16],
            "scale": [(0.08, 1.0), (1.0, 1.0), (0.5, 0.6)],
            "flip": [False, True],
        },
        [{"size": 0}, {"scale": (0.0, 1.0)}, {"scale": (0.5, 2.0)}, {"size": 2.5}],
    ),
    "RandomColorDistortion": (
        lambda vr, strength=0.5, jitter=0.8, gray=0.2: KL.RandomColorDistortion(
            strength, jitter_rate=jitter, grayscale_rate=gray, value_range=vr
        ),
        {"strength": [0.5, 0.0, 2.5], "jitter": [0.8, 0.0, 1.0], "gray": [0.2, 1.0]},
        [{"strength": 3.0}, {"jitter": 1.5}, {"gray": NAN}, {"strength": "1"}],
    ),
    "RandomGaussianBlur": (
        lambda vr, sigma=(0.1, 2.0), kernel=None, rate=0.5: KL.RandomGaussianBlur(
            sigma, kernel_size=kernel, rate=rate, value_range=vr
        ),
        {
            "sigma": [(0.1, 2.0), 0.0, (5.0, 50.0)],
            "kernel": [None, 3, (1, 21)],
            "rate": [0.5, 1.0],
        },
        [{"sigma": -1.0}, {"kernel": 4}, {"kernel": 0}, {"rate": -0.1}],
    ),
    "RandomGaussianNoise": (
        lambda vr, stddev=0.05, rate=1.0: KL.RandomGaussianNoise(
            stddev, rate=rate, value_range=vr
        ),
        {"stddev": [0.05, 0.0, (0.0, 10.0)], "rate": [1.0, 0.3]},
        [{"stddev": -0.1}, {"stddev": (0.2, 0.1)}, {"rate": 2.0}],
    ),
    "RandomCutout": (
        lambda vr, size=0.5, rate=1.0, fill=None: KL.RandomCutout(
            size, rate=rate, fill_value=fill, value_range=vr
        ),
        {"size": [0.5, 1.0, (0.01, 0.2)], "rate": [1.0, 0.0], "fill": [None, 0.0]},
        [{"size": 1.5}, {"size": 0.0 - 1}, {"fill": "black"}, {"rate": NAN}],
    ),
    "RandomApply": (
        lambda vr, rate=0.5, inner="noise": KL.RandomApply(
            KL.RandomGaussianNoise(value_range=vr)
            if inner == "noise"
            else KL.RandomResizedCrop(5, 5, value_range=vr),
            rate=rate,
        ),
        {"rate": [0.5, 0.0, 1.0], "inner": ["noise", "crop"]},
        [{"rate": 1.5}, {"rate": "x"}],
    ),
    "SimCLRAugmenter": (
        lambda vr, size=6, blur=True, strength=0.5: KL.SimCLRAugmenter(
            size, blur=blur, color_strength=strength, value_range=vr
        ),
        {"size": [6, (5, 9)], "blur": [True, False], "strength": [0.5, 1.0]},
        [{"size": 0}, {"size": (5,)}, {"blur": "yes"}, {"strength": -1.0}],
    ),
}
JAX_VALUE_RANGES = [(0, 255), (0, 1)]


@st.composite
def images(draw, shape, value_range):
    dtype = draw(st.sampled_from(IMAGE_DTYPES))
    kind = draw(
        st.sampled_from(
            ["in_range", "in_range", "unit", "zeros", "huge", "tiny", "outside"]
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low, high = value_range
    x = rng.uniform(0, 1, shape)
    if kind == "in_range":
        x = low + x * (high - low)
    elif kind == "unit":
        pass
    elif kind == "zeros":
        x = np.zeros(shape)
    elif kind == "huge":
        x = x * draw(st.sampled_from(SCALES["huge"]))
    elif kind == "tiny":
        x = x * draw(st.sampled_from(SCALES["tiny"]))
    else:
        x = rng.normal(0, 300, shape)
    if dtype in ("uint8", "uint16", "int64"):
        info = np.iinfo(dtype)
        x = np.clip(np.round(x), info.min, info.max)
    elif x.size and draw(st.integers(0, 3)) == 0:
        value = draw(st.sampled_from([NAN, INF, -INF]))
        x.reshape(-1)[rng.integers(0, x.size, draw(st.integers(1, 3)))] = value
    container = draw(st.sampled_from(["numpy", "tensor"]))
    if dtype == "uint16" and container == "tensor":
        container = "numpy"  # not every backend has uint16 tensors
    value, seen = _as_input(x, dtype, container)
    must_raise = (
        container == "numpy" and dtype == "uint16" and high <= 255 and x.size > 0
    )
    return value, not np.all(np.isfinite(seen)), must_raise


def fuzz_layer(data, name):
    factory, options, bad_options = LAYERS[name]
    invalid = data.draw(st.integers(0, 7)) == 0
    if JAX:  # one configuration per value range: each compiles once per shape
        chosen = {key: values[0] for key, values in options.items()}
        value_range = data.draw(st.sampled_from(JAX_VALUE_RANGES))
    else:
        chosen = {
            key: data.draw(st.sampled_from(values)) for key, values in options.items()
        }
        value_range = data.draw(st.sampled_from(VALUE_RANGES))
    if invalid:
        if data.draw(st.booleans()):
            chosen.update(data.draw(st.sampled_from(bad_options)))
        else:
            value_range = data.draw(st.sampled_from(BAD_VALUE_RANGES))
    rgb = name in ("RandomColorDistortion", "SimCLRAugmenter")
    if data.draw(st.integers(0, 9)) == 0:
        shapes = BAD_IMAGE_SHAPES + (BAD_CHANNELS if rgb else [])
        shape, bad_shape = data.draw(st.sampled_from(shapes)), True
    else:
        shapes = IMAGE_SHAPES + ([] if rgb or JAX else OTHER_CHANNELS)
        shape, bad_shape = data.draw(st.sampled_from(shapes)), False
    numeric = value_range if value_range in VALUE_RANGES else (0, 255)
    x, bad, uint16 = data.draw(images(shape, numeric))
    training = data.draw(st.sampled_from([True, True, False]))

    def call():
        return factory(value_range, **chosen)(x, training=training)

    check_outcome(name, call, bad, must_raise=invalid or bad_shape or uint16)


def fuzz_value_range_check(data):
    shape = data.draw(st.sampled_from([(2, 4, 4, 3), (3, 3), (0, 2), ()]))
    value_range = data.draw(st.sampled_from(VALUE_RANGES + BAD_VALUE_RANGES))
    numeric = value_range if value_range in VALUE_RANGES else (0, 255)
    x, bad, _ = data.draw(images(shape, numeric))
    check = KL.augmentation.check_images_against_value_range

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check(x, value_range)
        return np.zeros(1)

    check_outcome("check_images_against_value_range", call, bad)


# ----------------------------------------------------------------------------------
# The targets

TARGETS = (
    [("pair", name, False) for name in PAIR_LOSSES]
    + [("pair", name, True) for name in PAIR_LOSSES]
    + [("label", name, False) for name in LABEL_LOSSES]
    + [("label", name, True) for name in LABEL_LOSSES]
    + [("triplet_margin", "triplet_margin", False)]
    + [
        ("utility", name, False)
        for name in (
            "pairwise_distances",
            "cosine_similarity_matrix",
            "mix_hard_negatives",
        )
    ]
    + [("layer", name, False) for name in LAYERS]
    + [("value_range", "check_images_against_value_range", False)]
)
PER_TARGET = math.ceil(EXAMPLES / len(TARGETS))
SETTINGS = settings(
    max_examples=PER_TARGET,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def _target_id(target):
    kind, name, as_class = target
    return f"{name}-class" if as_class else name


@pytest.mark.parametrize("target", TARGETS, ids=_target_id)
def test_fuzz(target):
    kind, name, as_class = target
    start = time.time()

    @SETTINGS
    @given(data=st.data())
    def run(data):
        if kind == "pair":
            fuzz_pair(data, name, as_class)
        elif kind == "label":
            fuzz_label(data, name, as_class)
        elif kind == "triplet_margin":
            fuzz_triplet_margin(data)
        elif kind == "utility":
            fuzz_utility(data, name)
        elif kind == "layer":
            fuzz_layer(data, name)
        else:
            fuzz_value_range_check(data)

    run()
    counts = COUNTS.get(_target_key(target), {})
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(
                f"{BACKEND} {_target_id(target)} {counts} {time.time() - start:.1f}s\n"
            )
    # Each target's own share, so that `KC_FUZZ_EXAMPLES` in all reach the checks
    # however pytest-xdist spreads the targets over its workers.
    ran = counts.get("examples", 0)
    assert ran >= PER_TARGET, f"{_target_id(target)}: {ran} of {PER_TARGET} examples"


def _target_key(target):
    kind, name, as_class = target
    if as_class:
        table = PAIR_LOSSES if kind == "pair" else LABEL_LOSSES
        return table[name][2].__name__
    return name
