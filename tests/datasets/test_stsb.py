import os

import numpy as np
import pytest

from keras_contrastive.datasets import load_stsb
from tests.conftest import SHARED_DATA

STSB = os.path.join(SHARED_DATA, "stsb")
needs_stsb = pytest.mark.skipif(
    not os.path.isdir(STSB), reason="shared STS-B data not present"
)


@needs_stsb
@pytest.mark.parametrize("split, size", [("train", 5749), ("dev", 1500)])
def test_shared_splits(split, size):
    sentences1, sentences2, scores = load_stsb(STSB, split=split)
    assert len(sentences1) == len(sentences2) == len(scores) == size
    assert scores.dtype == np.float32 and 0 <= scores.min() and scores.max() <= 5
    assert all(isinstance(s, str) and s for s in sentences1 + sentences2)
    # No field of a trailing source name leaks into the sentences.
    assert not any("\t" in s for s in sentences1 + sentences2)
    # Quote characters are kept as they are (no CSV unquoting).
    assert any('"' in s for s in sentences1 + sentences2)


@needs_stsb
def test_first_dev_line_and_a_line_with_extra_fields():
    sentences1, sentences2, scores = load_stsb(os.path.join(STSB, "sts-dev.csv"))
    assert sentences1[0] == "A man with a hard hat is dancing."
    assert sentences2[0] == "A man wearing a hard hat is dancing."
    assert scores[0] == 5.0
    path = os.path.join(STSB, "sts-train.csv")
    with open(path, encoding="utf-8") as file:
        lines = file.read().split("\n")
    number = next(i for i, line in enumerate(lines) if line.count("\t") > 6)
    fields = lines[number].split("\t")
    sentences1, sentences2, scores = load_stsb(path)
    assert (sentences1[number], sentences2[number]) == (fields[5], fields[6])
    assert scores[number] == pytest.approx(float(fields[4]))


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_format_quirks(tmp_path):
    text = (
        "main-news\theadlines\t2016\t0001\t3.2\tHe said \"yes\".\t'Yes,' he said\r\n"
        "main-forums\tdeft\t2014\t0002\t0\tA\tB\tsource one\tsource two\n"
        "\n"
        'main-captions\tMSRvid\t2012\t0003\t5.000\t"Quoted\t "\n'
    )
    _write(tmp_path, "sts-dev.csv", text)
    sentences1, sentences2, scores = load_stsb(tmp_path, split="dev")
    assert sentences1 == ['He said "yes".', "A", '"Quoted']
    assert sentences2 == ["'Yes,' he said", "B", ' "']
    np.testing.assert_allclose(scores, [3.2, 0.0, 5.0])


def test_malformed_lines_name_the_line(tmp_path):
    good = "g\tf\t2012\t1\t2.5\tone\ttwo\n"
    path = _write(tmp_path, "short.csv", good + "g\tf\t2012\t2\t2.5\tonly one\n")
    with pytest.raises(
        ValueError, match=r"short.csv', line 2: expected at least 7 tab-separated"
    ):
        load_stsb(path)
    path = _write(tmp_path, "score.csv", good * 2 + "g\tf\t2012\t3\tabc\ta\tb\n")
    with pytest.raises(
        ValueError,
        match=r"score.csv', line 3: field 5 \(the score\) must be a number in "
        r"\[0, 5\]; found 'abc'",
    ):
        load_stsb(path)
    path = _write(tmp_path, "range.csv", "g\tf\t2012\t3\t7\ta\tb\n")
    with pytest.raises(ValueError, match=r"line 1: field 5 .* found '7'"):
        load_stsb(path)
    path = tmp_path / "latin1.csv"
    path.write_bytes(good.encode() + "g\tf\t2012\t3\t1\tcaf\xe9\tb\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"line 2: not valid UTF-8"):
        load_stsb(path)
    with pytest.raises(ValueError, match=r"holds no sentence pairs"):
        load_stsb(_write(tmp_path, "empty.csv", "\n"))


def test_missing_files_and_bad_split(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"sts-train.csv"):
        load_stsb(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"No STS Benchmark file"):
        load_stsb(tmp_path / "nothing.csv")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(FileNotFoundError, match=r"Pass `path=`"):
        load_stsb()
    _write(tmp_path, "ok.csv", "g\tf\t2012\t1\t2.5\tone\ttwo\n")
    os.makedirs(tmp_path / "keras_home" / "datasets" / "stsb")
    os.replace(tmp_path / "ok.csv", tmp_path / "keras_home/datasets/stsb/sts-dev.csv")
    assert load_stsb(split="dev")[0] == ["one"]
    with pytest.raises(
        ValueError,
        match=r"`split` must be one of \('train', 'dev', 'test'\). Received: "
        r"split='validation'",
    ):
        load_stsb(tmp_path, split="validation")
