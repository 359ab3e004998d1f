"""`load_stsb`: the STS Benchmark (Cer et al., 2017) from its tab-separated files."""

import os

import numpy as np

from keras_contrastive._validation import check_one_of

STSB_FILES = {"train": "sts-train.csv", "dev": "sts-dev.csv", "test": "sts-test.csv"}
_NUM_FIELDS = 7
_SCORE_FIELD, _FIRST_FIELD, _SECOND_FIELD = 4, 5, 6


def default_stsb_dir():
    """`$KERAS_HOME/datasets/stsb` (default `~/.keras/datasets/stsb`)."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "datasets", "stsb")


def _parse_line(raw, path, number):
    where = f"{path!r}, line {number}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{where}: not valid UTF-8 ({error}).") from None
    fields = line.rstrip("\r").split("\t")
    if len(fields) < _NUM_FIELDS:
        raise ValueError(
            f"{where}: expected at least {_NUM_FIELDS} tab-separated fields "
            "(genre, file, year, id, score, sentence1, sentence2), found "
            f"{len(fields)}: {line[:80]!r}."
        )
    try:
        score = float(fields[_SCORE_FIELD])
    except ValueError:
        score = float("nan")
    if not 0.0 <= score <= 5.0:
        raise ValueError(
            f"{where}: field 5 (the score) must be a number in [0, 5]; found "
            f"{fields[_SCORE_FIELD]!r}."
        )
    return fields[_FIRST_FIELD], fields[_SECOND_FIELD], score


def load_stsb(path=None, split="train"):
    """Reads an STS Benchmark split into sentence pairs and gold scores.

    The STS Benchmark (Cer et al., 2017, "SemEval-2017 Task 1: Semantic Textual
    Similarity Multilingual and Crosslingual Focused Evaluation"): English
    sentence pairs from captions, news and forums, each scored 0 (unrelated) to
    5 (equivalent) by annotators; evaluate with
    `keras_contrastive.evaluation.sts_spearman`.

    Each file is UTF-8 text, one pair per line, tab-separated with no header
    and no quoting: genre, file, year, id, score, sentence1, sentence2. Some
    lines carry extra trailing fields (source names), which are ignored; quote
    characters are part of the sentences; blank lines are skipped. A line with
    fewer than 7 fields or a score that is not a number in [0, 5] raises a
    `ValueError` naming the file and the line number.

    Args:
        path: the STS Benchmark folder (holding `sts-train.csv`, `sts-dev.csv`
            and/or `sts-test.csv`) or one such file. `None` means
            `$KERAS_HOME/datasets/stsb` (default `~/.keras/datasets/stsb`),
            where the files can be placed once.
        split: `"train"`, `"dev"` or `"test"`: which file of the folder (not
            used when `path` is a file).

    Returns:
        `(sentences1, sentences2, scores)`: two lists of str and a float32
        array of shape `(num_pairs,)`.

    Raises:
        FileNotFoundError: the folder or file does not exist.
        ValueError: a malformed line (the message names it), or an empty file.

    Example:

    ```python
    from keras_contrastive.datasets import load_stsb

    sentences1, sentences2, scores = load_stsb("stsb/", split="dev")
    len(sentences1), scores[:3]  # (1500, array([5. , 4.75, 5. ], dtype=float32))
    ```
    """
    split = check_one_of("split", split, tuple(STSB_FILES))
    folder_given = path is not None
    path = os.fspath(path) if folder_given else default_stsb_dir()
    if os.path.isdir(path):
        path = os.path.join(path, STSB_FILES[split])
    if not os.path.isfile(path):
        hint = (
            ""
            if folder_given
            else " Pass `path=` (the STS Benchmark folder or file), or put the "
            f"files in {default_stsb_dir()!r}."
        )
        raise FileNotFoundError(
            f"No STS Benchmark file at {path!r} (split {split!r} is "
            f"{STSB_FILES[split]!r}).{hint}"
        )
    sentences1, sentences2, scores = [], [], []
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            raw = raw.rstrip(b"\n")
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
            if not raw.strip():
                continue
            first, second, score = _parse_line(raw, path, number)
            sentences1.append(first)
            sentences2.append(second)
            scores.append(score)
    if not scores:
        raise ValueError(f"{path!r} holds no sentence pairs.")
    return sentences1, sentences2, np.asarray(scores, dtype=np.float32)
