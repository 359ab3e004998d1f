"""A training run for the kill-and-resume test (tests/methods/test_bad_batches.py).

    python -m tests.methods.kill_resume_run METHOD MODE DIR

MODE is `full` (3 epochs, uninterrupted), `killed` (the same run with
`BackupAndRestore`, which kills its own process with SIGKILL in the middle of the
second epoch) or `resume` (a fresh process resuming from DIR's backup). Every run
appends its epochs to DIR/history.csv and saves its final variables to
DIR/final.npz.
"""

import os
import signal
import sys

import keras
import numpy as np
from keras import ops

from tests.methods.harness import METHODS, flip_and_noise

EPOCHS = 3
BATCH = 4


class KillMidEpoch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def main(name, mode, folder):
    method = METHODS[name]
    keras.utils.set_random_seed(0 if mode != "resume" else 5)  # resume: other init
    model = method.model(flip_and_noise())
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    x = method.data(n=16)
    callbacks = method.callbacks() + [
        keras.callbacks.CSVLogger(os.path.join(folder, "history.csv"), append=True)
    ]
    if mode != "full":
        callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(folder, "b")))
    if mode == "killed":
        callbacks.append(KillMidEpoch())
    model.fit(
        x,
        batch_size=BATCH,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
    )
    variables = list(model.variables) + list(model.optimizer.variables)
    np.savez(
        os.path.join(folder, "final.npz"),
        *[np.asarray(ops.convert_to_numpy(v)) for v in variables],
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
