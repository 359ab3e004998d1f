"""`MomentumSchedule`: anneal the momentum of MoCo's / BYOL's momentum network."""

import keras

from keras_contrastive._validation import check_probability
from keras_contrastive.models.momentum import SCHEDULES


@keras.saving.register_keras_serializable(package="keras_contrastive")
class MomentumSchedule(keras.callbacks.Callback):
    """Sets the model's momentum per step from the training progress.

    With k the optimizer step and K the schedule's length, the momentum of the
    momentum network (MoCo's key encoder, BYOL's target) is

    - `"cosine"` (BYOL, Grill et al. 2020):
      m_k = end - (end - start) (cos(pi k / K) + 1) / 2, i.e. for end = 1
      BYOL's 1 - (1 - m_0)(cos(pi k / K) + 1) / 2;
    - `"linear"`: m_k = start + (end - start) k / K;
    - `"constant"`: m_k = start;

    and `end` after step K.

    The callback does not touch the model during training: when training begins
    it writes `start`, `end`, K and the schedule's kind into the model's
    non-trainable schedule variables (`model.set_momentum_schedule`), and the
    model computes m_k inside its compiled training step from its own step
    counter. A per-batch callback that assigns a model variable would force a full
    state sync on JAX at every batch. The step counter is model state, saved with
    the model, so a run resumed by `keras.callbacks.BackupAndRestore` or from a
    saved model continues at the right point of the schedule (the counter is
    never reset by this callback; a second `fit` continues from where the first
    stopped, and momentum stays at `end` once k >= K).

    Args:
        start: momentum at step 0.
        end: momentum at step K and after.
        schedule: "cosine", "linear" or "constant".
        total_steps: K. Default: `steps per epoch x epochs` of the `fit` call
            (the `epochs` argument, so a resumed run keeps the same K). Required
            when the number of steps per epoch is unknown (a dataset without
            known cardinality and no `steps_per_epoch`).

    Example:

    ```python
    from keras_contrastive.callbacks import MomentumSchedule

    model = BYOL(encoder, momentum=0.99)
    model.compile(optimizer="adam")
    model.fit(images, epochs=20, callbacks=[MomentumSchedule(0.99, 1.0)])
    ```
    """

    def __init__(self, start=0.996, end=1.0, schedule="cosine", total_steps=None):
        super().__init__()
        self.start = check_probability("start", start)
        self.end = check_probability("end", end)
        if schedule not in SCHEDULES:
            raise ValueError(
                f"`schedule` must be one of {SCHEDULES}; got {schedule!r}."
            )
        if total_steps is not None and (
            not isinstance(total_steps, int)
            or isinstance(total_steps, bool)
            or total_steps < 1
        ):
            raise ValueError(
                f"`total_steps` must be None or a positive int; got {total_steps!r}."
            )
        self.schedule = schedule
        self.total_steps = total_steps

    def schedule_length(self):
        """K: `total_steps`, else steps per epoch x epochs of the running `fit`."""
        if self.total_steps is not None:
            return self.total_steps
        params = self.params or {}
        steps, epochs = params.get("steps"), params.get("epochs")
        if not steps or not epochs:
            raise ValueError(
                "MomentumSchedule cannot tell how many steps training lasts (the "
                "dataset has no known length); pass `total_steps=` or "
                "`steps_per_epoch=` to `fit`."
            )
        return int(steps) * int(epochs)

    def on_train_begin(self, logs=None):
        setter = getattr(self.model, "set_momentum_schedule", None)
        if setter is None:
            raise TypeError(
                "MomentumSchedule drives models with a momentum network (MoCo, "
                f"BYOL); {type(self.model).__name__} has no "
                "`set_momentum_schedule` method."
            )
        setter(self.start, self.end, self.schedule_length(), self.schedule)

    def get_config(self):
        return {
            "start": self.start,
            "end": self.end,
            "schedule": self.schedule,
            "total_steps": self.total_steps,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
