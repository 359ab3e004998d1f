"""channels_last_convolutions: conv and max pool as in NumPy, no layout copies."""

import importlib

import keras
import numpy as np
import pytest

from keras_contrastive.evaluation import compute_embeddings
from keras_contrastive.models import SimCLR, channels_last_convolutions
from tests.conftest import BACKEND

torch_only = pytest.mark.skipif(
    BACKEND != "torch", reason="the context changes nothing on this backend"
)


def numpy_conv2d(x, kernel, strides, padding, dilation):
    """Direct (N, H, W, C) convolution in float64, TensorFlow's "same" padding."""
    x, kernel = x.astype(np.float64), kernel.astype(np.float64)
    kh, kw, cin_group, cout = kernel.shape
    groups = x.shape[-1] // cin_group
    span = [(k - 1) * dilation + 1 for k in (kh, kw)]
    if padding == "same":
        pads = []
        for length, s, k in zip(x.shape[1:3], strides, span):
            out = -(-length // s)
            total = max(0, (out - 1) * s + k - length)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    out_h = (x.shape[1] - span[0]) // strides[0] + 1
    out_w = (x.shape[2] - span[1]) // strides[1] + 1
    per_group = cout // groups
    y = np.zeros((x.shape[0], out_h, out_w, cout))
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * strides[0], j * strides[1]
            patch = x[
                :,
                top : top + span[0] : dilation,
                left : left + span[1] : dilation,
            ]
            for g in range(groups):
                channels = patch[..., g * cin_group : (g + 1) * cin_group]
                weights = kernel[..., g * per_group : (g + 1) * per_group]
                y[..., i, j, g * per_group : (g + 1) * per_group] = np.einsum(
                    "nhwc,hwco->no", channels, weights
                )
    return y


CASES = {
    "3x3 same stride 1": dict(kernel=3, strides=(1, 1), padding="same"),
    "3x3 same stride 2, even size (asymmetric padding)": dict(
        kernel=3, strides=(2, 2), padding="same"
    ),
    "1x1 stride 2 valid (ResNet shortcut)": dict(
        kernel=1, strides=(2, 2), padding="valid"
    ),
    "4x4 same stride 1 (even kernel)": dict(kernel=4, strides=(1, 1), padding="same"),
    "3x3 same dilation 2": dict(kernel=3, strides=(1, 1), padding="same", dilation=2),
    "3x3 valid, strides (2, 1)": dict(kernel=3, strides=(2, 1), padding="valid"),
    "3x3 same, 2 groups": dict(kernel=3, strides=(1, 1), padding="same", groups=2),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_conv_matches_numpy(case, rng):
    groups, dilation = case.get("groups", 1), case.get("dilation", 1)
    x = rng.normal(size=(2, 8, 10, 4)).astype("float32")
    k = case["kernel"]
    kernel = rng.normal(size=(k, k, 4 // groups, 6)).astype("float32")
    with channels_last_convolutions():
        y = keras.ops.conv(
            x, kernel, case["strides"], case["padding"], dilation_rate=dilation
        )
    expected = numpy_conv2d(x, kernel, case["strides"], case["padding"], dilation)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(y), expected, rtol=1e-5, atol=1e-4
    )


POOLS = {
    "2x2 (MaxPooling2D's default)": dict(pool_size=2, strides=2),
    "3x3 stride 2, odd size": dict(pool_size=3, strides=2),
    "2x3 strides (1, 2)": dict(pool_size=(2, 3), strides=(1, 2)),
}


def _pair(value):
    return tuple(value) if isinstance(value, tuple) else (value, value)


@pytest.mark.parametrize("case", POOLS.values(), ids=POOLS.keys())
def test_max_pool_matches_numpy(case, rng):
    x = rng.normal(size=(2, 9, 10, 3)).astype("float32")
    ph, pw = _pair(case["pool_size"])
    sh, sw = _pair(case["strides"])
    out_h, out_w = (9 - ph) // sh + 1, (10 - pw) // sw + 1
    expected = np.zeros((2, out_h, out_w, 3), "float32")
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, i * sh : i * sh + ph, j * sw : j * sw + pw]
            expected[:, i, j] = window.max(axis=(1, 2))
    with channels_last_convolutions():
        y = keras.ops.max_pool(x, case["pool_size"], case["strides"], "valid")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y), expected)


@torch_only
def test_max_pool_gradients_equal_keras(rng):
    import torch

    x = rng.normal(size=(3, 8, 8, 5)).astype("float32")
    weights = torch.tensor(rng.normal(size=(3, 4, 4, 5)).astype("float32"))

    def gradient():
        xt = torch.tensor(x, requires_grad=True)
        (keras.ops.max_pool(xt, 2) * weights).sum().backward()
        return xt.grad

    keras_dx = gradient()
    with channels_last_convolutions():
        dx = gradient()
    np.testing.assert_array_equal(dx.numpy(), keras_dx.numpy())


@torch_only
@pytest.mark.parametrize("strides", [1, 2])
def test_gradients_equal_keras_conv(strides, rng):
    """The conv PyTorch runs is Keras' own, so gradients are the same numbers."""
    import torch

    x = rng.normal(size=(3, 8, 8, 5)).astype("float32")
    kernel = rng.normal(size=(3, 3, 5, 7)).astype("float32")
    weights = rng.normal(size=(3, 8 // strides, 8 // strides, 7)).astype("float32")

    def gradients():
        xt = torch.tensor(x, requires_grad=True)
        kt = torch.tensor(kernel, requires_grad=True)
        y = keras.ops.conv(xt, kt, strides, "same")
        (y * torch.tensor(weights)).sum().backward()
        return y.detach(), xt.grad, kt.grad

    keras_y, keras_dx, keras_dk = gradients()
    with channels_last_convolutions():
        y, dx, dk = gradients()
    np.testing.assert_allclose(y.numpy(), keras_y.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx.numpy(), keras_dx.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dk.numpy(), keras_dk.numpy(), rtol=1e-5, atol=1e-5)


def _activation_copies(layer, x):
    """aten::copy_ calls on activation-sized tensors in forward + backward."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    xt = torch.tensor(x, requires_grad=True)
    # A dense upstream gradient, as a loss gives (sum's would be a broadcast view).
    weights = torch.ones(layer.compute_output_shape(x.shape))
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        (layer(xt) * weights).sum().backward()
    sizes = {int(np.prod(x.shape)), int(np.prod(layer.compute_output_shape(x.shape)))}
    return sum(
        1
        for event in prof.events()
        if event.name == "aten::copy_"
        and event.input_shapes
        and int(np.prod(event.input_shapes[0] or [0])) in sizes
    )


@torch_only
@pytest.mark.parametrize(
    "layer",
    [
        keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
        keras.layers.MaxPooling2D(2),
    ],
    ids=["Conv2D", "MaxPooling2D"],
)
def test_no_activation_copies(layer, rng):
    x = rng.normal(size=(4, 16, 16, 8)).astype("float32")
    layer.build(x.shape)
    assert _activation_copies(layer, x) >= 1  # Keras' own layout change
    with channels_last_convolutions():
        assert _activation_copies(layer, x) == 0


class _ConvProbe(keras.layers.Layer):
    """Records whether Keras' PyTorch conv was replaced when the layer ran."""

    calls = []

    def call(self, x):
        module = importlib.import_module("keras.src.backend.torch.nn")
        if x.device.type != "meta":  # not Keras' shape inference
            _ConvProbe.calls.append(hasattr(module.conv, "keras_op"))
        return x


@torch_only
def test_fit_evaluate_and_embeddings_run_inside(rng):
    encoder = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            _ConvProbe(),
            keras.layers.Conv2D(8, 3, strides=2),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    x = rng.integers(0, 256, size=(16, 16, 16, 3), dtype=np.uint8)
    model = SimCLR(encoder)
    model.compile(optimizer="adam")
    _ConvProbe.calls.clear()
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    model.evaluate(x, batch_size=8, verbose=0)
    compute_embeddings(encoder, x)
    compute_embeddings(encoder, [(x[:8],), (x[8:],)])
    assert _ConvProbe.calls and all(_ConvProbe.calls)
    _ConvProbe.calls.clear()
    encoder(x[:2].astype("float32"))
    assert _ConvProbe.calls == [False]  # outside: Keras' own conv
