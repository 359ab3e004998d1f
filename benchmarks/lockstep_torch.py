"""Lock-step check of our SimCLR or MoCo step against a plain PyTorch program.

    KERAS_BACKEND=tensorflow python benchmarks/lockstep_torch.py [--steps 100]
        [--method simclr|moco]

Both sides start from the same weights and train on the same pre-made views, so
whatever differs between them is the implementation, not the recipe:

- the recipe's small CNN (`simclr_cifar10.small_cnn`) and
  `ProjectionHead((256,), 128)`, with PyTorch's batch-norm settings in both
  (momentum 0.9 in Keras' convention = PyTorch's 0.1, epsilon 1e-5); the Keras
  weights are copied into an independent `torch.nn` mirror (convolution kernels
  HWIO -> OIHW, dense kernels transposed);
- NT-Xent at temperature 0.5 written out in PyTorch here (Chen et al. 2020, eq. 1,
  averaged over the 2N anchors), not taken from the library;
- with `--method moco`, the recipe's MoCo (queue 4096, momentum 0.99,
  temperature 0.2) against He et al. (2020)'s Algorithm 1 written out here: the
  key networks a copy of the query networks at the first step, updated after
  every optimizer step by theta_k <- m theta_k + (1 - m) theta_q over the
  parameters (eq. 2; their batch-norm statistics follow their own forward
  passes, as lightly's `update_momentum` leaves them), InfoNCE of each query
  against its key, the batch's other keys (which the library's `MoCo` counts)
  and the queue, then the batch's keys enqueued over the oldest; the queue starts
  from our model's random unit rows. After the last step the key networks and
  the queue are compared too;
- views made once by `SimCLRAugmenter((32, 32), blur=False)` and fed to both as a
  (batch, 32, 32, 6) array: a `SimCLR` (or `MoCo`) whose `augment` only splits
  the channels, trained by `fit`, i.e. the library's own training step on the
  current backend.

It prints:

1. the step-1 loss on both sides, and the gradient of every weight: ours from one
   `fit` step with SGD(learning_rate=1e4) (the weight change over -1e4),
   PyTorch's from autograd; the median and largest relative difference
   ||g_ours - g_torch|| / ||g_torch|| over the weights, ours and PyTorch's
   float32 each against PyTorch in float64. A batch can hold pre-activations
   within float32 rounding of a ReLU's kink, which two float32 programs with
   different rounding put on different sides: then the layers below differ by
   up to ~1e-2 (a finite difference in float64 lands between the two one-sided
   gradients), a subgradient choice, not a different function
   (`lockstep_kinks.py` counts those elements and forces one program's
   choices on the other);
2. `--steps` Adam(1e-3, epsilon 1e-8) steps on both: the per-step losses (ours
   recovered from `fit`'s running mean), the largest absolute loss difference, and
   after the last step the relative difference of every weight and batch-norm
   moving statistic; beside them the float-noise floor: the same PyTorch program
   started from weights perturbed by 1e-6 (relative), against the unperturbed
   one. Training is chaotic (Adam's first steps are about lr * sign(g)), so two
   conforming programs part at the rate the floor shows, not at zero.

`--keras-batch-norm` keeps Keras' batch-norm defaults (0.99 / 1e-3) on our side
only, to show how far one convention moves the trajectory.
"""

import argparse
import copy
import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("keras_contrastive") is None:
    sys.path.insert(0, os.path.dirname(HERE))  # a checkout without `pip install`
sys.path.insert(0, HERE)  # the sibling recipe module

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _premade_views import FirstView, PremadeViews  # noqa: E402
from simclr_cifar10 import DEFAULT_DATA, small_cnn  # noqa: E402
from torch import nn  # noqa: E402

from keras_contrastive.datasets import load_jpeg_npz  # noqa: E402
from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter  # noqa: E402
from keras_contrastive.models import MoCo, SimCLR  # noqa: E402

TEMPERATURE = 0.5
#: The recipe's MoCo (`conventions_cifar10.py --method moco`).
MOCO = {"queue_size": 4096, "momentum": 0.99, "temperature": 0.2}
#: The learning rate of the one SGD step whose weight change gives our gradients.
SGD_RATE = 1e4


class PremadeViewsSimCLR(PremadeViews, SimCLR):
    """SimCLR whose inputs are both views stacked on the channels."""


class PremadeViewsMoCo(PremadeViews, MoCo):
    """MoCo whose inputs are both views (query, key) stacked on the channels."""


def _ours(batch_norm, method="simclr"):
    encoder = small_cnn(**batch_norm)
    head = ProjectionHead(hidden_dims=(256,), output_dim=128)
    if method == "moco":
        model = PremadeViewsMoCo(encoder, head, FirstView(), **MOCO)
    else:
        model = PremadeViewsSimCLR(
            encoder,
            head,
            FirstView(),
            temperature=TEMPERATURE,
            batch_norm_views="per_view",
        )
    model.build((None, 32, 32, 6))
    return model


class _Mirror(nn.Module):
    """The same networks in plain PyTorch, weights copied from ours."""

    def __init__(self, model):
        super().__init__()
        layers, channels = [], 3
        for i, filters in enumerate((32, 64, 128, 256)):
            layers += [
                nn.Conv2d(channels, filters, 3, padding=1, bias=False),
                nn.BatchNorm2d(filters),
                nn.ReLU(),
            ]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            channels = filters
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.encoder = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(256, 256, bias=False),
            nn.BatchNorm1d(256),
            nn.ReLU(),
            nn.Linear(256, 128),
        )
        self.pairs = list(zip(_keras_weights(model), _torch_weights(self.trained)))
        with torch.no_grad():
            for (_, ours), (_, theirs) in self.pairs:
                theirs.copy_(torch.from_numpy(_to_torch_layout(ours)))

    def _views(self, views):
        dtype = self.head[0].weight.dtype
        x = torch.from_numpy(views).to(dtype).permute(0, 3, 1, 2) / 255.0
        return x[:, :3], x[:, 3:]

    def forward(self, views):
        z = [self.head(self.encoder(v)) for v in self._views(views)]
        return nt_xent(*z)

    @property
    def trained(self):
        return [self.encoder, self.head]

    def networks(self):
        """(label, our model's attributes, the mirror's modules) of each pair of
        networks compared after training."""
        return [("query networks", ("encoder", "projection_head"), self.trained)]

    def post_step(self):
        """State updates after the optimizer step (none for SimCLR)."""

    def report_state(self, model, perturbed, steps):
        """Prints how far the method's state (beside the networks) ended from
        `model`'s and from `perturbed`'s (none for SimCLR)."""


class _MoCoMirror(_Mirror):
    """He et al. (2020), Algorithm 1, on the mirror's networks; the queue starts
    from our model's."""

    def __init__(self, model):
        super().__init__(model)
        queue = keras.ops.convert_to_numpy(model.queue.keys)
        self.register_buffer("queue", torch.from_numpy(queue.copy()))
        self.pointer, self.key_networks, self.keys = 0, None, None

    def forward(self, views):
        if self.key_networks is None:  # copies of the query networks at step 1
            self.key_networks = copy.deepcopy(nn.ModuleList(self.trained))
            self.key_networks.requires_grad_(False)
        view_q, view_k = self._views(views)
        query = nn.functional.normalize(self.head(self.encoder(view_q)), dim=1)
        with torch.no_grad():
            key_encoder, key_head = self.key_networks
            self.keys = nn.functional.normalize(key_head(key_encoder(view_k)), dim=1)
        candidates = torch.cat([self.keys, self.queue.to(query.dtype)])
        logits = query @ candidates.T / MOCO["temperature"]
        return nn.functional.cross_entropy(logits, torch.arange(len(query)))

    def networks(self):
        keys = ("key networks", ("key_encoder", "key_head"), list(self.key_networks))
        return super().networks() + [keys]

    def report_state(self, model, perturbed, steps):
        """The queue, and where it writes next."""
        queue = self.queue.numpy()
        ours_queue = keras.ops.convert_to_numpy(model.queue.keys)
        print(f"after {steps} steps, the queue: relative difference ours "
              f"{_relative(ours_queue, queue):.2e}, floor "
              f"{_relative(perturbed.queue.numpy(), queue):.2e}; pointer ours "
              f"{int(keras.ops.convert_to_numpy(model.queue.pointer))}, PyTorch "
              f"{self.pointer}")  # fmt: skip

    def post_step(self):
        m = MOCO["momentum"]
        query_networks = nn.ModuleList(self.trained).parameters()
        with torch.no_grad():
            for key, query in zip(self.key_networks.parameters(), query_networks):
                key.mul_(m).add_(query, alpha=1 - m)
            rows = (self.pointer + torch.arange(len(self.keys))) % len(self.queue)
            self.queue[rows] = self.keys.to(self.queue.dtype)
        self.pointer = (self.pointer + len(self.keys)) % len(self.queue)


MIRRORS = {"simclr": _Mirror, "moco": _MoCoMirror}


def nt_xent(z_a, z_b):
    """NT-Xent (Chen et al. 2020, eq. 1), mean over the 2N anchors."""
    z = nn.functional.normalize(torch.cat([z_a, z_b]), dim=1)
    logits = z @ z.T / TEMPERATURE
    logits.fill_diagonal_(float("-inf"))
    n = z_a.shape[0]
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return nn.functional.cross_entropy(logits, positives)


def _keras_weights(model, networks=("encoder", "projection_head")):
    """(name, numpy value) of every weight of `networks` (attributes of `model`),
    in that order, the batch-norm moving statistics included (as PyTorch's
    buffers)."""
    out = []
    for network in (getattr(model, name) for name in networks):
        for layer in network._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.BatchNormalization):
                names = ("gamma", "beta", "moving_mean", "moving_variance")
                out += [(f"{layer.name}.{n}", getattr(layer, n)) for n in names]
            elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
                out.append((f"{layer.name}.kernel", layer.kernel))
                if layer.use_bias:
                    out.append((f"{layer.name}.bias", layer.bias))
    return [(name, keras.ops.convert_to_numpy(v)) for name, v in out]


def _torch_weights(modules):
    """The counterpart of `_keras_weights` for a list of `torch.nn` modules."""
    out = []
    for module in nn.ModuleList(modules).modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            out += [
                ("weight", module.weight),
                ("bias", module.bias),
                ("running_mean", module.running_mean),
                ("running_var", module.running_var),
            ]
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            out.append(("weight", module.weight))
            if module.bias is not None:
                out.append(("bias", module.bias))
    return out


def _to_torch_layout(value):
    if value.ndim == 4:  # HWIO -> OIHW
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    if value.ndim == 2:  # (in, out) -> (out, in)
        return np.ascontiguousarray(value.T)
    return np.ascontiguousarray(value)


def _relative(ours, theirs):
    return float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))


def make_views(images, steps, batch_size, seed, color_strength=0.5):
    """`steps` batches of two views each, stacked on the channels (float32)."""
    augmenter = SimCLRAugmenter(
        (32, 32), blur=False, color_strength=color_strength, seed=seed
    )
    out = []
    for step in range(steps):
        batch = images[step * batch_size : (step + 1) * batch_size]
        pair = [keras.ops.convert_to_numpy(augmenter(batch)) for _ in range(2)]
        out.append(np.concatenate(pair, axis=-1).astype("float32"))
    return np.concatenate(out)


class _StepLosses(keras.callbacks.Callback):
    """Each step's loss, recovered from the running mean `fit` logs."""

    def on_train_begin(self, logs=None):
        self.losses, self._total = [], 0.0

    def on_train_batch_end(self, batch, logs=None):
        total = logs["loss"] * (batch + 1)
        self.losses.append(total - self._total)
        self._total = total


def _gradients(mirror, views):
    loss = mirror(views)
    loss.backward()
    grads = [p.grad for _, p in _torch_weights(mirror.trained)]
    return loss.item(), [None if g is None else g.double().numpy() for g in grads]


def our_gradients(model, batch, callbacks=(), run_eagerly=False):
    """(name, gradient) of every entry of `_keras_weights`, in PyTorch's layout
    (float64): the weight change of one `fit` step of SGD at `SGD_RATE` on
    `batch`, over -`SGD_RATE` (meaningless for the batch-norm statistics)."""
    before = [v for _, v in _keras_weights(model)]
    # A large step, so that the weight change (minus the gradient times the
    # learning rate) is not lost to the float32 rounding of the weights.
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=SGD_RATE),
        run_eagerly=run_eagerly,
    )
    model.fit(batch, batch_size=len(batch), epochs=1, shuffle=False, verbose=0,
              callbacks=list(callbacks))  # fmt: skip
    return [
        (name, _to_torch_layout(old - new).astype("float64") / SGD_RATE)
        for old, (name, new) in zip(before, _keras_weights(model))
    ]


def gradient_check(model, views, batch_size, mirror_class=_Mirror):
    """Step-1 gradients: ours and PyTorch's float32, each against PyTorch in
    float64 (the float32 rounding of two conforming programs is the floor)."""
    batch = views[:batch_size]
    torch32_loss, torch32 = _gradients(mirror_class(model), batch)
    torch64_loss, torch64 = _gradients(mirror_class(model).double(), batch)
    losses = _StepLosses()
    ours = our_gradients(model, batch, callbacks=[losses])
    print(f"step-1 loss: ours {losses.losses[0]:.6f}, PyTorch {torch32_loss:.6f} "
          f"(float64 {torch64_loss:.6f})")  # fmt: skip
    gaps = {"ours": [], "float32 PyTorch": []}
    for (name, change), g32, g64 in zip(ours, torch32, torch64):
        if g64 is None:  # a batch-norm buffer
            continue
        gaps["ours"].append((_relative(change, g64), name))
        gaps["float32 PyTorch"].append((_relative(g32, g64), name))
    print("gradients, relative difference from float64 PyTorch:")
    for label, values in gaps.items():
        worst, name = max(values)
        median = np.median([v for v, _ in values])
        print(f"  {label}: median {median:.2e}, largest {worst:.2e} ({name})")
    return gaps


def _torch_trajectory(mirror, views, batch_size, steps):
    optimizer = torch.optim.Adam(mirror.parameters(), lr=1e-3, eps=1e-8)
    losses = []
    for step in range(steps):
        loss = mirror(views[step * batch_size : (step + 1) * batch_size])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mirror.post_step()
        losses.append(loss.item())
    return np.array(losses)


def _weight_gap(values, modules):
    gaps = [
        (name, _relative(_to_torch_layout(value), param.detach().numpy()))
        for (name, value), (_, param) in zip(values, _torch_weights(modules))
    ]
    return max(gaps, key=lambda x: x[1]), float(np.median([g for _, g in gaps]))


def trajectory(model, views, batch_size, steps, mirror_class=_Mirror, noise=1e-6):
    """`steps` Adam steps on both sides, and the float-noise floor: PyTorch
    against PyTorch from weights perturbed by `noise` (relative, Gaussian)."""
    mirror, perturbed = mirror_class(model), mirror_class(model)
    with torch.no_grad():
        for p in perturbed.parameters():
            p.mul_(1 + noise * torch.randn_like(p))
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8))
    losses = _StepLosses()
    model.fit(views, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[losses])  # fmt: skip
    ours = np.array(losses.losses)
    theirs = _torch_trajectory(mirror, views, batch_size, steps)
    floor = _torch_trajectory(perturbed, views, batch_size, steps)
    print(f"{'step':>5} {'ours':>9} {'PyTorch':>9} {'PyTorch, perturbed':>19}")
    for step in sorted({0, 1, 9, 49, steps - 1} & set(range(steps))):
        print(f"{step + 1:5d} {ours[step]:9.5f} {theirs[step]:9.5f} "
              f"{floor[step]:19.5f}")  # fmt: skip
    gap, noise_gap = np.abs(ours - theirs), np.abs(floor - theirs)
    print(f"largest loss difference over {steps} steps: ours {gap.max():.2e}; "
          f"the float-noise floor {noise_gap.max():.2e}")  # fmt: skip
    for (label, names, modules), (_, _, floor_modules) in zip(
        mirror.networks(), perturbed.networks()
    ):
        gaps = (
            ("ours", _weight_gap(_keras_weights(model, names), modules)),
            ("floor", _weight_gap(_keras_weights_of(floor_modules), modules)),
        )
        for side, ((name, worst), median) in gaps:
            print(f"after {steps} steps, {label}, {side}: relative weight "
                  f"difference median {median:.2e}, largest {worst:.2e} "
                  f"({name})")  # fmt: skip
    mirror.report_state(model, perturbed, steps)
    return gap.max(), noise_gap.max()


def _keras_weights_of(modules):
    """The modules' weights in `_keras_weights`' layout, for `_weight_gap`."""
    out = []
    for name, value in _torch_weights(modules):
        value = value.detach().numpy()
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        out.append((name, value))
    return out


def add_common_arguments(parser):
    """--batch-size, --seed, --method and --data (shared with
    `lockstep_kinks.py`)."""
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", choices=sorted(MIRRORS), default="simclr")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 JPEG-npz file")


def seeded_views(args, steps):
    """Seeds Keras and PyTorch with `args.seed`, then makes `steps` batches of
    views of the first images of a fixed shuffle of `args.data`."""
    keras.utils.set_random_seed(args.seed)
    torch.manual_seed(args.seed)
    images, _, _ = load_jpeg_npz(args.data)
    order = np.random.default_rng(0).permutation(len(images))
    images = images[order[: steps * args.batch_size]]
    return make_views(images, steps, args.batch_size, args.seed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--keras-batch-norm", action="store_true")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    views = seeded_views(args, args.steps)
    batch_norm = {} if args.keras_batch_norm else {
        "batch_norm_momentum": 0.9, "batch_norm_epsilon": 1e-5}  # fmt: skip
    print(f"backend {keras.backend.backend()}, batch {args.batch_size}, "
          f"batch norm {batch_norm or 'Keras defaults'}")  # fmt: skip
    mirror_class = MIRRORS[args.method]
    gradient_check(_ours(batch_norm, args.method), views, args.batch_size,
                   mirror_class)  # fmt: skip
    keras.utils.set_random_seed(args.seed)
    trajectory(_ours(batch_norm, args.method), views, args.batch_size, args.steps,
               mirror_class)  # fmt: skip


if __name__ == "__main__":
    main()
