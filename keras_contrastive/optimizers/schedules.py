"""Learning-rate schedules and scaling rules for contrastive pre-training."""

import math

import keras

from keras_contrastive._validation import (
    check_int,
    check_number,
    check_one_of,
    check_positive_int,
    check_probability,
    legacy_type_errors,
)


@keras.saving.register_keras_serializable(package="keras_contrastive")
class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):
    """Linear warmup to a peak learning rate, then cosine decay (SimCLR, BYOL).

    With `step` the optimizer's iteration count (0 on the first update):

    ```python
    if step < warmup_steps:
        lr = start + (peak - start) * step / warmup_steps
    else:
        t = min(step - warmup_steps, decay_steps) / decay_steps
        lr = peak * (alpha + (1 - alpha) * 0.5 * (1 + cos(pi * t)))
    ```

    So the rate climbs linearly from `warmup_start_learning_rate` to
    `peak_learning_rate` over `warmup_steps` steps, then follows a half cosine
    (Loshchilov & Hutter 2017, without restarts) down to
    `alpha * peak_learning_rate` over the next `decay_steps` steps and stays
    there. `decay_steps` counts the steps *after* warmup; for a run of
    `total_steps`, pass `decay_steps=total_steps - warmup_steps`.

    This is `keras.optimizers.schedules.CosineDecay(warmup_start_learning_rate,
    decay_steps, alpha, warmup_target=peak_learning_rate,
    warmup_steps=warmup_steps)`, whose maths it runs. What it adds: the
    schedule named by its peak, as the SimCLR and BYOL papers state it (Keras
    calls the warmup's start `initial_learning_rate` and the peak
    `warmup_target`), `warmup_steps=0` meaning "start at the peak", and
    arguments checked when the schedule is made (Keras accepts, e.g., a
    negative `decay_steps` and fails later inside the step).

    Args:
        peak_learning_rate: Float >= 0, the rate reached at the end of warmup.
        warmup_steps: Int >= 0, the length of the linear warmup (0: none).
        decay_steps: Int >= 1, the length of the cosine decay after warmup.
        alpha: Float in `[0, 1]`, the final rate as a fraction of the peak.
            Defaults to `0.0`.
        warmup_start_learning_rate: Float >= 0, the rate at step 0 when
            `warmup_steps > 0`. Defaults to `0.0`.
        name: Optional name. Defaults to `"WarmupCosineDecay"`.

    Example:

    ```python
    import keras
    from keras_contrastive.optimizers import LARS, WarmupCosineDecay

    schedule = WarmupCosineDecay(1.2, warmup_steps=100, decay_steps=900)
    float(schedule(100))  # 1.2, the peak
    optimizer = LARS(learning_rate=schedule)
    ```
    """

    def __init__(
        self,
        peak_learning_rate,
        warmup_steps,
        decay_steps,
        alpha=0.0,
        warmup_start_learning_rate=0.0,
        name="WarmupCosineDecay",
    ):
        # Wrong types: a TypeError that is also the ValueError raised before.
        with legacy_type_errors():
            peak = check_number("peak_learning_rate", peak_learning_rate, minimum=0.0)
            warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
            decay_steps = check_positive_int("decay_steps", decay_steps)
            alpha = check_probability("alpha", alpha)
            start = check_number(
                "warmup_start_learning_rate", warmup_start_learning_rate, minimum=0.0
            )
        warm = warmup_steps > 0
        super().__init__(
            initial_learning_rate=start if warm else peak,
            decay_steps=decay_steps,
            alpha=alpha,
            name=name,
            warmup_target=peak if warm else None,
            warmup_steps=warmup_steps,
        )
        self.peak_learning_rate = peak
        self.warmup_start_learning_rate = start

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_start_learning_rate": self.warmup_start_learning_rate,
            "name": self.name,
        }


def scaled_learning_rate(
    base_learning_rate, global_batch_size, rule="linear", base_batch_size=None
):
    """The learning rate for a global batch, by SimCLR's linear or square-root rule.

    SimCLR (Chen et al. 2020, appendix B.1) scales the LARS learning rate with
    the global batch size `B` (the sum of every replica's batch) in one of two
    ways:

    - `rule="linear"`: `lr = base_learning_rate * B / base_batch_size`, with
      `base_batch_size=256` by default (SimCLR: `0.3 * B / 256`, 4.8 at 4096);
    - `rule="sqrt"`: `lr = base_learning_rate * sqrt(B / base_batch_size)`, with
      `base_batch_size=1` by default, i.e. `base_learning_rate * sqrt(B)`
      (SimCLR: `0.075 * sqrt(B)`, also 4.8 at 4096; the better rule for small
      batches and long runs).

    Pass `base_batch_size` to state the batch at which `base_learning_rate` was
    tuned instead: `scaled_learning_rate(0.3, 1024, "sqrt", base_batch_size=256)`
    is 0.6, the rate tuned at 256 carried to 1024 by the square-root rule.
    `keras_contrastive.distribute.scaled_learning_rate` is this function.

    Args:
        base_learning_rate: Float >= 0, the rate at `base_batch_size`.
        global_batch_size: Int >= 1, the batch of one optimizer step summed over
            every replica and worker (not the per-replica batch).
        rule: `"linear"` or `"sqrt"`. Defaults to `"linear"`.
        base_batch_size: Int >= 1, the reference batch of `base_learning_rate`.
            `None` (default) means SimCLR's reference: 256 for `"linear"`, 1 for
            `"sqrt"`.

    Returns:
        The scaled learning rate, a Python float.

    Example:

    ```python
    from keras_contrastive.optimizers import LARS, scaled_learning_rate

    scaled_learning_rate(0.3, 4096)  # 4.8
    scaled_learning_rate(0.075, 4096, rule="sqrt")  # 4.8
    optimizer = LARS(scaled_learning_rate(0.3, 1024), weight_decay=1e-6)
    ```
    """
    # Wrong types: a TypeError that is also the ValueError raised before.
    with legacy_type_errors():
        base_learning_rate = check_number(
            "base_learning_rate", base_learning_rate, minimum=0.0
        )
        global_batch_size = check_positive_int("global_batch_size", global_batch_size)
        rule = check_one_of("rule", rule, tuple(_REFERENCE_BATCH))
        if base_batch_size is None:
            base_batch_size = _REFERENCE_BATCH[rule]
        base_batch_size = check_positive_int("base_batch_size", base_batch_size)
    ratio = global_batch_size / base_batch_size
    if rule == "sqrt":
        ratio = math.sqrt(ratio)
    return base_learning_rate * ratio


# SimCLR's reference batch of each rule: 0.3 * B / 256 and 0.075 * sqrt(B / 1).
_REFERENCE_BATCH = {"linear": 256, "sqrt": 1}
