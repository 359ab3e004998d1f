"""BERT WordPiece tokenisation in TensorFlow ops (for tf.data and SavedModel export).

The host tokenizer is Hugging Face's Rust `tokenizers`; this module reproduces it
with TensorFlow string and integer ops only, so that an exported SavedModel takes
raw strings and a `tf.data` map tokenises without calling back into Python.

1. Special tokens written in the text ("[MASK]") become private-use characters
   (plane 16) that survive normalisation and are looked up as those tokens.
2. Normalisation (clean text, CJK spacing, accents, lower case) is a per-character
   map. Its tables are read off the Rust `BertNormalizer` itself, one call on a
   string holding every code point, and stored compactly: runs of code points that
   are kept, deleted or turned into a space, plus an explicit table of the others
   (upper-case letters, accented letters, ...).
3. Pre-tokenisation: each character the Rust `BertPreTokenizer` isolates
   (punctuation, CJK after step 2) gets spaces around it; whitespace splits words.
4. WordPiece: greedy longest-match-first over all words of the batch at once, one
   `tf.while_loop` iteration per word piece; a word that cannot be covered by
   pieces, or has more than `max_input_chars_per_word` characters, is [UNK].
5. [CLS] pieces [SEP], truncated and padded to the sequence length.
"""

import functools
import os
import re

import numpy as np

SENTINEL_BASE = 0x100000  # Supplementary Private Use Area-B
_KEEP, _DELETE, _SPACE, _MAPPED = 0, 1, 2, 3
_ISOLATE, _WHITESPACE = 1, 2


def _all_codepoints():
    codepoints = np.arange(0x110000, dtype=np.int64)
    surrogate = (codepoints >= 0xD800) & (codepoints < 0xE000)
    return codepoints[~surrogate & (codepoints != ord("|"))]


def _runs(codepoints, classes):
    """Run-length form: `bounds[i]` starts a run of class `run_classes[i]`."""
    dense = np.zeros(0x110000, np.int32)
    dense[codepoints] = classes
    change = np.flatnonzero(np.diff(dense)) + 1
    bounds = np.concatenate([[0], change]).astype(np.int32)
    return bounds, dense[bounds].astype(np.int32)


def _cache_path(flags):
    import tokenizers

    folder = os.environ.get(
        "KERAS_CONTRASTIVE_CACHE",
        os.path.join(os.path.expanduser("~"), ".cache", "keras_contrastive"),
    )
    name = "wordpiece_tables_v2_{}_{}.npz".format(
        tokenizers.__version__, "_".join(str(flag) for flag in flags)
    )
    return os.path.join(folder, name)


@functools.lru_cache(maxsize=8)
def character_tables(lowercase, strip_accents, tokenize_chinese_chars, clean_text):
    """The normalisation and pre-tokenisation tables, read off the Rust tokenizer.

    Reading them takes a few seconds, so they are cached on disk (in
    `$KERAS_CONTRASTIVE_CACHE`, default `~/.cache/keras_contrastive`), one small
    file per `tokenizers` version and setting.
    """
    flags = (lowercase, strip_accents, tokenize_chinese_chars, clean_text)
    path = _cache_path(flags)
    try:
        with np.load(path) as cached:
            return {key: cached[key] for key in cached.files}
    except (OSError, ValueError, KeyError):
        pass
    tables = _read_character_tables(*flags)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp.npz"
        np.savez_compressed(partial, **tables)
        os.replace(partial, path)
    except OSError:
        pass
    return tables


def _read_character_tables(
    lowercase, strip_accents, tokenize_chinese_chars, clean_text
):
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(
        clean_text=clean_text,
        handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    codepoints = _all_codepoints()
    chars = [chr(c) for c in codepoints.tolist()]
    normalized = normalizer.normalize_str("|".join(chars)).split("|")
    if len(normalized) != len(chars):  # pragma: no cover - guards the '|' trick
        raise RuntimeError("could not read the normaliser's character table")
    classes = np.zeros(len(chars), np.int32)
    map_keys, map_values, map_splits = [], [], [0]
    for i, (char, out) in enumerate(zip(chars, normalized)):
        if out == char:
            continue
        if out == "":
            classes[i] = _DELETE
        elif out == " ":
            classes[i] = _SPACE
        elif out == f" {char} ":
            continue  # CJK: kept here, isolated by the pre-tokenisation table
        else:
            classes[i] = _MAPPED
            map_keys.append(ord(char))
            map_values.extend(ord(c) for c in out)
            map_splits.append(len(map_values))
    norm_bounds, norm_classes = _runs(codepoints, classes)

    # Pre-tokenisation: "a" c "a" c ... "a"; c is isolated when it is a piece of
    # its own, whitespace when no piece covers it.
    text = "a" + "a".join(chars) + "a"
    pieces = pre_tokenizers.BertPreTokenizer().pre_tokenize_str(text)
    covered = np.zeros(len(text) + 1, np.int32)
    isolated = np.zeros(len(chars), bool)
    for _piece, (start, end) in pieces:
        covered[start] += 1
        covered[end] -= 1
        if end - start == 1 and start % 2 == 1:
            isolated[(start - 1) // 2] = True
    covered = np.cumsum(covered)[1 : 2 * len(chars) : 2] > 0
    pre_classes = np.where(isolated, _ISOLATE, np.where(covered, 0, _WHITESPACE))
    # CJK characters the normaliser spaces out are isolated as well.
    for i, (char, out) in enumerate(zip(chars, normalized)):
        if out == f" {char} ":
            pre_classes[i] = _ISOLATE
    # "|" served as the separator above: its own classes, read one at a time.
    if normalizer.normalize_str("|") != "|":  # pragma: no cover - BERT keeps "|"
        raise RuntimeError("could not read the normaliser's character table")
    bar = len(pre_tokenizers.BertPreTokenizer().pre_tokenize_str("a|a")) == 3
    codepoints = np.append(codepoints, ord("|"))
    pre_classes = np.append(pre_classes, _ISOLATE if bar else 0)
    pre_bounds, pre_run_classes = _runs(codepoints, pre_classes.astype(np.int32))
    return {
        "norm_bounds": norm_bounds,
        "norm_classes": norm_classes,
        "map_keys": np.array(map_keys, np.int32),
        "map_splits": np.array(map_splits, np.int32),
        "map_values": np.array(map_values, np.int32),
        "pre_bounds": pre_bounds,
        "pre_classes": pre_run_classes,
    }


def _run_class(tf, bounds, classes, codepoints):
    index = tf.searchsorted(bounds, codepoints, side="right") - 1
    return tf.gather(classes, index)


class GraphWordPiece:
    """The tokenizer's graph form: `graph(texts, sequence_length)` -> dict."""

    def __init__(self, tokenizer):
        import tensorflow as tf

        self.tokenizer = tokenizer
        tables = character_tables(
            tokenizer.lowercase,
            tokenizer.strip_accents,
            tokenizer.tokenize_chinese_chars,
            tokenizer.clean_text,
        )
        specials = sorted(tokenizer.special_tokens, key=len, reverse=True)
        self.sentinels = {
            token: chr(SENTINEL_BASE + k) for k, token in enumerate(specials)
        }
        norm_bounds, norm_classes = tables["norm_bounds"], tables["norm_classes"]
        pre_bounds, pre_classes = tables["pre_bounds"], tables["pre_classes"]
        # Sentinels: kept by normalisation, isolated by pre-tokenisation.
        for sentinel in self.sentinels.values():
            c = ord(sentinel)
            norm_bounds, norm_classes = _override(norm_bounds, norm_classes, c, _KEEP)
            pre_bounds, pre_classes = _override(pre_bounds, pre_classes, c, _ISOLATE)
        keys = list(tokenizer.token_to_id) + list(self.sentinels.values())
        values = list(tokenizer.token_to_id.values()) + [
            tokenizer.token_to_id[token] for token in self.sentinels
        ]
        with tf.init_scope():
            self.constants = {
                "norm_bounds": tf.constant(norm_bounds, tf.int32),
                "norm_classes": tf.constant(norm_classes, tf.int32),
                "map_keys": tf.constant(tables["map_keys"], tf.int32),
                "map_splits": tf.constant(tables["map_splits"], tf.int32),
                "map_values": tf.constant(tables["map_values"], tf.int32),
                "pre_bounds": tf.constant(pre_bounds, tf.int32),
                "pre_classes": tf.constant(pre_classes, tf.int32),
            }
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(keys, tf.string), tf.constant(values, tf.int64)
                ),
                default_value=-1,
            )

    def trackables(self):
        """What an export must track: the vocabulary table."""
        return [self.table]

    def _normalize(self, tf, texts):
        for token, sentinel in self.sentinels.items():
            texts = tf.strings.regex_replace(texts, re.escape(token), sentinel)
        chars = tf.strings.unicode_decode(
            texts, "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        flat = chars.flat_values
        k = self.constants
        norm_class = _run_class(tf, k["norm_bounds"], k["norm_classes"], flat)
        # Explicit map: the row of each mapped code point in map_keys.
        row = tf.searchsorted(k["map_keys"], flat, side="left")
        row = tf.minimum(row, tf.maximum(tf.size(k["map_keys"]) - 1, 0))
        starts = tf.gather(k["map_splits"], row)
        ends = tf.gather(k["map_splits"], row + 1)
        mapped = tf.equal(norm_class, _MAPPED)
        deleted = tf.equal(norm_class, _DELETE)
        spaced = tf.equal(norm_class, _SPACE)
        offset = tf.size(k["map_values"])
        source = tf.concat([k["map_values"], tf.where(spaced, 32, flat)], 0)
        own = offset + tf.range(tf.size(flat))
        first = tf.where(mapped, starts, own)
        count = tf.where(mapped, ends - starts, tf.where(deleted, 0, 1))
        out = tf.gather(source, tf.ragged.range(first, first + count).flat_values)
        # Pre-tokenisation: spaces around isolated characters.
        pre_class = _run_class(tf, k["pre_bounds"], k["pre_classes"], out)
        isolate = tf.equal(pre_class, _ISOLATE)
        centre = tf.where(tf.equal(pre_class, _WHITESPACE), 32, out)
        triple = tf.stack(
            [tf.fill(tf.shape(out), 32), centre, tf.fill(tf.shape(out), 32)], 1
        )
        keep = tf.stack([isolate, tf.ones_like(isolate), isolate], 1)
        spaced_out = tf.boolean_mask(triple, keep)
        per_char = tf.where(isolate, 3, 1)
        row_of_out = tf.repeat(tf.cast(chars.value_rowids(), tf.int32), count)
        new_counts = tf.math.unsorted_segment_sum(
            per_char, row_of_out, tf.cast(chars.nrows(), tf.int32)
        )
        ragged = tf.RaggedTensor.from_row_lengths(spaced_out, new_counts)
        strings = tf.strings.unicode_encode(ragged, "UTF-8")
        return tf.strings.split(strings)

    def _word_pieces(self, tf, words):
        tok = self.tokenizer
        flat = words.flat_values
        lengths = tf.strings.length(flat, unit="UTF8_CHAR")
        limit = tok.max_input_chars_per_word
        too_long = lengths > limit
        widest = tf.minimum(tf.reduce_max(tf.concat([lengths, [0]], 0)), limit)
        ks = tf.range(1, widest + 1)
        n = tf.size(flat)
        unk = tf.constant(tok.unk_token_id, tf.int64)
        prefix = tok.continuing_subword_prefix
        grid_words = tf.broadcast_to(flat[:, None], tf.stack([n, widest]))
        grid_k = tf.broadcast_to(ks[None, :], tf.stack([n, widest]))

        def body(i, start, done, failed, ids_array, valid_array):
            pos = tf.minimum(start, lengths)
            pos = tf.broadcast_to(pos[:, None], tf.stack([n, widest]))
            sub = tf.strings.substr(grid_words, pos, grid_k, unit="UTF8_CHAR")
            candidates = tf.where(pos > 0, prefix + sub, sub)
            ids = self.table.lookup(candidates)
            fits = grid_k <= (lengths - start)[:, None]
            found = fits & (ids >= 0)
            any_found = tf.reduce_any(found, axis=1)
            best = (
                widest
                - 1
                - tf.argmax(
                    tf.cast(tf.reverse(found, [1]), tf.int32),
                    axis=1,
                    output_type=tf.int32,
                )
            )
            best_id = tf.gather(ids, tf.maximum(best, 0), batch_dims=1)
            emit = ~done & any_found
            failed = failed | (~done & ~any_found)
            start = tf.where(emit, start + best + 1, start)
            done = done | failed | (start >= lengths)
            ids_array = ids_array.write(i, tf.where(emit, best_id, -1))
            valid_array = valid_array.write(i, emit)
            return i + 1, start, done, failed, ids_array, valid_array

        start = tf.zeros([n], tf.int32)
        done = too_long | tf.equal(lengths, 0)
        ids_array = tf.TensorArray(tf.int64, size=0, dynamic_size=True)
        valid_array = tf.TensorArray(tf.bool, size=0, dynamic_size=True)
        ids_array = ids_array.write(0, tf.fill([n], unk))
        valid_array = valid_array.write(0, tf.zeros([n], tf.bool))
        _, _, _, failed, ids_array, valid_array = tf.while_loop(
            lambda i, start, done, *_: tf.reduce_any(~done),
            body,
            (1, start, done, too_long, ids_array, valid_array),
        )
        ids = tf.transpose(ids_array.stack())
        valid = tf.transpose(valid_array.stack())
        first = tf.one_hot(0, tf.shape(valid)[1], on_value=True, off_value=False)
        valid = tf.where(failed[:, None], first[None, :], valid)
        ids = tf.where(failed[:, None], unk, ids)
        pieces = tf.ragged.boolean_mask(ids, valid)
        return words.with_flat_values(pieces).merge_dims(1, 2)

    def __call__(self, texts, sequence_length):
        import tensorflow as tf

        tok = self.tokenizer
        texts = tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1])
        words = self._normalize(tf, texts)
        pieces = self._word_pieces(tf, words)[:, : sequence_length - 2]
        batch = tf.shape(texts)[0]
        cls = tf.fill([batch, 1], tf.constant(tok.cls_token_id, tf.int64))
        sep = tf.fill([batch, 1], tf.constant(tok.sep_token_id, tf.int64))
        ids = tf.concat([cls, pieces, sep], axis=1)
        token_ids = ids.to_tensor(
            default_value=tf.constant(tok.pad_token_id, tf.int64),
            shape=[None, sequence_length],
        )
        mask = tf.sequence_mask(ids.row_lengths(), sequence_length, tf.int32)
        return {"token_ids": tf.cast(token_ids, tf.int32), "padding_mask": mask}


def _override(bounds, classes, codepoint, value):
    """Run-length tables with one code point set to `value`."""
    dense_start = np.searchsorted(bounds, codepoint, side="right") - 1
    before = classes[dense_start]
    new_bounds = list(bounds[: dense_start + 1])
    new_classes = list(classes[: dense_start + 1])
    if new_bounds[-1] == codepoint:
        new_classes[-1] = value
    else:
        new_bounds.append(codepoint)
        new_classes.append(value)
    if codepoint + 1 < 0x110000 and (
        dense_start + 1 >= len(bounds) or bounds[dense_start + 1] != codepoint + 1
    ):
        new_bounds.append(codepoint + 1)
        new_classes.append(before)
    new_bounds.extend(bounds[dense_start + 1 :])
    new_classes.extend(classes[dense_start + 1 :])
    return np.array(new_bounds, np.int32), np.array(new_classes, np.int32)
