"""What the two distributed examples share: arguments, data, the SimCLR recipe.

Nothing here imports Keras at module level: the JAX example must set its device
flags and start JAX before Keras is first imported.
"""

import time


def add_recipe_arguments(parser):
    """The recipe's flags, the same in both examples."""
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--global-batch-size", type=int, default=256)
    parser.add_argument("--base-learning-rate", type=float, default=0.3)
    parser.add_argument("--rule", choices=("linear", "sqrt"), default="linear")
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--limit", type=int, default=None, help="use N images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="save the encoder (.keras)")


def check_divisible(global_batch_size, parts, what):
    if global_batch_size % parts:
        raise SystemExit(
            f"--global-batch-size {global_batch_size} must be a multiple of "
            f"the {parts} {what}."
        )


def load_global_batches(args):
    """The bundled sample, cut to a whole number of global batches.

    Every step needs a full global batch: a partial one would not split evenly
    over the devices.
    """
    from keras_contrastive.datasets import load_cifar10_sample

    (images, _), _ = load_cifar10_sample(test_fraction=0.0)
    images = images[: args.limit]
    usable = len(images) // args.global_batch_size * args.global_batch_size
    if usable == 0:
        raise SystemExit(
            f"--global-batch-size {args.global_batch_size} exceeds the "
            f"{len(images)} images."
        )
    return images[:usable]


def make_simclr(args, encoder, steps_per_epoch, synchronized_batch_norm=False):
    """SimCLR with LARS at the scaled peak rate, warmup then cosine decay.

    Under `tf.distribute`, call inside the strategy's scope.
    """
    from keras_contrastive.distribute import scaled_learning_rate
    from keras_contrastive.layers import ProjectionHead, SimCLRAugmenter
    from keras_contrastive.models import SimCLR
    from keras_contrastive.optimizers import LARS, WarmupCosineDecay

    model = SimCLR(
        encoder,
        projection_head=ProjectionHead(
            hidden_dims=(128,),
            output_dim=64,
            synchronized_batch_norm=synchronized_batch_norm,
        ),
        augmenter=SimCLRAugmenter((32, 32), crop_scale=(0.2, 1.0), blur=False),
        temperature=args.temperature,
    )
    peak = scaled_learning_rate(
        args.base_learning_rate, args.global_batch_size, rule=args.rule
    )
    total = args.epochs * steps_per_epoch
    warmup = total // 10
    schedule = WarmupCosineDecay(peak, warmup_steps=warmup, decay_steps=total - warmup)
    model.compile(optimizer=LARS(schedule, momentum=0.9, weight_decay=1e-6))
    return model, peak


def fit_and_report(model, x, batch_size, args, leader):
    """Trains; the leader (one process or worker) prints and saves."""
    start = time.perf_counter()
    history = model.fit(
        x, batch_size=batch_size, epochs=args.epochs, verbose=2 if leader else 0
    )
    seconds = time.perf_counter() - start
    if leader:
        steps = args.epochs * (len(x) // batch_size)
        print(
            f"{steps} steps in {seconds:.1f} s (compilation included); "
            f"final loss {history.history['loss'][-1]:.4f}",
            flush=True,
        )
        if args.output:
            model.encoder.save(args.output)
            print(f"saved the encoder to {args.output}")
    return history.history
