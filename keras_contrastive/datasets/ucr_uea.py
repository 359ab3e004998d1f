"""`load_ucr_uea`: UCR/UEA time-series classification sets from their `.ts` files."""

import importlib.util
import os

import numpy as np

from keras_contrastive._validation import check_one_of, check_string

#: Python packages whose wheels bundle small UCR/UEA sets (BasicMotions,
#: JapaneseVowels, ArrowHead, GunPoint, ...) as `.ts` files under
#: `<package>/datasets/data/<name>/`, searched in this order. Only their folders
#: are read: the packages are never imported.
BUNDLING_PACKAGES = ("sktime", "aeon")


def bundled_ts_dir(name):
    """The folder of set `name` inside an installed sktime or aeon, or None.

    Found with `importlib.util.find_spec`, without importing the package (which
    needs pandas and scikit-learn; `pip install --no-deps sktime` is enough for
    its data files).
    """
    for package in BUNDLING_PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            folder = os.path.join(root, "datasets", "data", name)
            if os.path.isdir(folder):
                return folder
    return None


def _parse_value(text, where):
    text = text.strip()
    if text in ("?", "NaN", "nan", ""):
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number.") from None


def read_ts(path):
    """Reads one `.ts` file (the UCR/UEA archive's format, Bagnall et al. 2018).

    The format: comment lines start with `#`; a header of `@key value` lines
    (`@problemName`, `@dimensions`, `@classLabel true <names...>`, ...) ends with
    `@data`; then one series per line, its dimensions separated by `:`, the
    values of a dimension by `,`, and the class label as the last `:` field.
    Missing values are `?`. Time stamps (`@timeStamps true`) are not supported.

    Args:
        path: the `.ts` file.

    Returns:
        `(series, labels, class_names)`: float32 `(num_series, length,
        dimensions)` (channels last; series shorter than the longest are padded
        at the end with NaN, as are missing values), int32 labels indexing
        `class_names` (the `@classLabel` names in the header's order).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed header or line (the message names the line).
    """
    header, rows, names = {}, [], None
    with open(path, encoding="utf-8") as f:
        in_data = False
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path!r}, line {number}"
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{where}: expected an @key header line.")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                elif key == "classlabel":
                    words = value.split()
                    if not words or words[0].lower() != "true" or len(words) < 2:
                        raise ValueError(
                            f"{where}: a classification set needs "
                            "'@classLabel true <class names>'."
                        )
                    names = words[1:]
                else:
                    header[key] = value.strip()
                continue
            if names is None:
                raise ValueError(f"{where}: no '@classLabel true ...' header line.")
            if header.get("timestamps", "false").lower() == "true":
                raise ValueError(f"{where}: time-stamped .ts files are not supported.")
            *dims, label = line.split(":")
            if not dims:
                raise ValueError(f"{where}: expected dimensions and a class label.")
            if label.strip() not in names:
                raise ValueError(
                    f"{where}: class label {label.strip()!r} is not one of the "
                    f"header's {names}."
                )
            values = [[_parse_value(v, where) for v in dim.split(",")] for dim in dims]
            rows.append((values, names.index(label.strip())))
    if not rows:
        raise ValueError(f"{path!r}: no series after '@data'.")
    num_dims = len(rows[0][0])
    for i, (values, _) in enumerate(rows):
        if len(values) != num_dims:
            raise ValueError(
                f"{path!r}: series {i} has {len(values)} dimensions, the first "
                f"has {num_dims}."
            )
    length = max(len(dim) for values, _ in rows for dim in values)
    series = np.full((len(rows), length, num_dims), np.nan, dtype="float32")
    for i, (values, _) in enumerate(rows):
        for d, dim in enumerate(values):
            series[i, : len(dim), d] = dim
    labels = np.array([label for _, label in rows], dtype="int32")
    return series, labels, list(names)


def load_ucr_uea(name, split="train", path=None):
    """Loads a UCR/UEA time-series classification set from its `.ts` files.

    The UCR and UEA archives (Dau et al. 2019; Bagnall et al. 2018) hold
    labelled univariate and multivariate series with a fixed train/test split.
    Small ones ship inside the `sktime` and `aeon` wheels, so they load offline:
    BasicMotions (6-D accelerometer and gyroscope of a smart watch, 100 steps,
    4 activities, 40 + 40 series), JapaneseVowels (12-D LPC cepstra, 7-29 steps,
    9 speakers, 270 + 370), ArrowHead, GunPoint, ItalyPowerDemand, OSULeaf
    (univariate). Only the data files are read (`read_ts`, NumPy only): install
    `pip install keras_contrastive[timeseries]`, or just the files with
    `pip install --no-deps sktime`.

    Args:
        name: the set's name as in the archive, e.g. `"BasicMotions"`.
        split: `"train"` or `"test"`.
        path: `None` (the set bundled with an installed sktime or aeon), a folder
            holding `<name>_TRAIN.ts` / `<name>_TEST.ts` (or a `<name>/`
            subfolder with them, as the archive's download unpacks), or one
            `.ts` file (then `split` is not used).

    Returns:
        `(series, labels, class_names)`: float32 `(num_series, length,
        dimensions)` channels last (shorter series padded at the end with NaN),
        int32 labels and the list of class names they index.

    Raises:
        FileNotFoundError: the set is not installed or not in `path`.
        ValueError: a bad `split`, or a malformed file.

    Example:

    ```python
    from keras_contrastive.datasets import load_ucr_uea

    series, labels, names = load_ucr_uea("BasicMotions", "train")
    series.shape, names  # (40, 100, 6), ['Standing', 'Running', ...]
    ```
    """
    name = check_string("name", name)
    split = check_one_of("split", split, ("train", "test"))
    filename = f"{name}_{split.upper()}.ts"
    if path is None:
        folder = bundled_ts_dir(name)
        if folder is None:
            raise FileNotFoundError(
                f"The UCR/UEA set {name!r} is not bundled with an installed "
                f"{' or '.join(BUNDLING_PACKAGES)}. Install one "
                "(`pip install keras_contrastive[timeseries]`, or only its data "
                "files: `pip install --no-deps sktime`), or pass `path`, a "
                f"folder holding {filename}."
            )
        candidates = [os.path.join(folder, filename)]
    elif os.path.isfile(path):
        candidates = [path]
    else:
        candidates = [
            os.path.join(path, filename),
            os.path.join(path, name, filename),
        ]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return read_ts(candidate)
    raise FileNotFoundError(f"No {filename} at {' or '.join(candidates)}.")
