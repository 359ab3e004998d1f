"""BERT WordPiece tokenisation: on the host (Hugging Face `tokenizers`), and in a graph.

The tokenizer turns a batch of strings into the network's inputs, a dict of two
int32 arrays of shape (N, L): `token_ids` ([CLS] word pieces [SEP], then [PAD]s)
and `padding_mask` (1 for real tokens, 0 for padding). It is BERT's (Devlin et al.
2019): clean the text, isolate CJK characters, lower-case and strip accents
(uncased models), split on whitespace and punctuation, then greedy
longest-match-first WordPiece (Wu et al. 2016).

On the host it runs Hugging Face's Rust `tokenizers`, the library
sentence-transformers uses, so token ids match it exactly. `tokenize_graph` runs
the same tokenisation as TensorFlow ops (for `tf.data` maps and SavedModel export,
where no Python runs); its character tables are read off the Rust normaliser and
pre-tokeniser themselves, so both agree.
"""

import json
import os

import numpy as np

from keras_contrastive import _validation as v

_SPECIAL_NAMES = ("unk_token", "cls_token", "sep_token", "pad_token", "mask_token")


def _read_vocabulary(vocabulary):
    if isinstance(vocabulary, (str, os.PathLike)):
        path = os.fspath(vocabulary)
        if not os.path.isfile(path):
            v.fail(
                "vocabulary",
                "a list of tokens or the path of a vocab.txt file",
                vocabulary,
                detail="No such file",
            )
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    if isinstance(vocabulary, np.ndarray):
        vocabulary = vocabulary.tolist()
    if not isinstance(vocabulary, (list, tuple)) or not all(
        isinstance(token, str) for token in vocabulary
    ):
        v.fail(
            "vocabulary",
            "a list of tokens or the path of a vocab.txt file",
            vocabulary,
            TypeError,
        )
    return list(vocabulary)


class WordPieceTokenizer:
    """BERT's WordPiece tokenizer: strings -> `{"token_ids", "padding_mask"}`.

    Args:
        vocabulary: the word pieces, a list of strings (index = token id) or the
            path of a `vocab.txt` (one token per line).
        sequence_length: the most tokens per text, [CLS] and [SEP] included;
            longer texts are truncated (their first `sequence_length - 2` word
            pieces are kept), as sentence-transformers does.
        lowercase: lower-case the text (uncased models).
        strip_accents: remove accents (Unicode NFD, then drop combining marks);
            `None` follows `lowercase`, as in BERT.
        tokenize_chinese_chars: make every CJK ideograph a word of its own.
        clean_text: drop control characters and turn all whitespace into spaces.
        unk_token, cls_token, sep_token, pad_token, mask_token: the special
            tokens; each must be in the vocabulary (`mask_token` may be None). A
            special token written literally in a text ("The [MASK] sat.") becomes
            that token, as in Hugging Face's tokenizers.
        max_input_chars_per_word: a longer word becomes `unk_token`.
        continuing_subword_prefix: marks a word piece that continues a word.

    Calling it (`tokenizer(texts, sequence_length=None)`) tokenises on the host:
    `texts` is a string, a list or tuple of strings, a NumPy array of strings or
    an eager TensorFlow string tensor. The arrays are padded to the longest text
    of the batch rounded up to a multiple of 8 (at most `sequence_length`), or to
    exactly `sequence_length` when given: pass a fixed length when shapes must not
    change between batches (a jitted training step on JAX). The empty string
    tokenises to `[CLS] [SEP]`.
    """

    def __init__(
        self,
        vocabulary,
        sequence_length=512,
        lowercase=True,
        strip_accents=None,
        tokenize_chinese_chars=True,
        clean_text=True,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        max_input_chars_per_word=100,
        continuing_subword_prefix="##",
    ):
        self.vocabulary = _read_vocabulary(vocabulary)
        if not self.vocabulary:
            v.fail("vocabulary", "a non-empty list of tokens", vocabulary)
        self.sequence_length = v.check_int("sequence_length", sequence_length, 2)
        self.lowercase = v.check_bool("lowercase", lowercase)
        if strip_accents is not None:
            strip_accents = v.check_bool("strip_accents", strip_accents)
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = v.check_bool(
            "tokenize_chinese_chars", tokenize_chinese_chars
        )
        self.clean_text = v.check_bool("clean_text", clean_text)
        self.max_input_chars_per_word = v.check_positive_int(
            "max_input_chars_per_word", max_input_chars_per_word
        )
        self.continuing_subword_prefix = v.check_instance(
            "continuing_subword_prefix", continuing_subword_prefix, str, "a string"
        )
        self.token_to_id = {}
        for index, token in enumerate(self.vocabulary):
            self.token_to_id.setdefault(token, index)
        specials = dict(
            unk_token=unk_token,
            cls_token=cls_token,
            sep_token=sep_token,
            pad_token=pad_token,
            mask_token=mask_token,
        )
        for name, token in specials.items():
            if token is None and name == "mask_token":
                continue
            v.check_instance(name, token, str, "a string")
            if token not in self.token_to_id:
                v.fail(
                    name,
                    "a token of the vocabulary",
                    token,
                    detail=f"The vocabulary has {len(self.vocabulary)} tokens",
                )
        self.unk_token = unk_token
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        self.mask_token = mask_token
        self._rust = None
        self._graph = None

    # -- ids --

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    @property
    def special_tokens(self):
        """The special tokens, in the order unk, cls, sep, pad, mask."""
        tokens = [getattr(self, name) for name in _SPECIAL_NAMES]
        return [token for token in tokens if token is not None]

    @property
    def pad_token_id(self):
        return self.token_to_id[self.pad_token]

    @property
    def cls_token_id(self):
        return self.token_to_id[self.cls_token]

    @property
    def sep_token_id(self):
        return self.token_to_id[self.sep_token]

    @property
    def unk_token_id(self):
        return self.token_to_id[self.unk_token]

    @property
    def mask_token_id(self):
        return None if self.mask_token is None else self.token_to_id[self.mask_token]

    # -- the Rust tokenizer --

    def _normalizer_and_pre_tokenizer(self):
        from tokenizers import normalizers, pre_tokenizers

        normalizer = normalizers.BertNormalizer(
            clean_text=self.clean_text,
            handle_chinese_chars=self.tokenize_chinese_chars,
            strip_accents=self.strip_accents,
            lowercase=self.lowercase,
        )
        return normalizer, pre_tokenizers.BertPreTokenizer()

    @property
    def rust_tokenizer(self):
        """The `tokenizers.Tokenizer` that tokenises on the host (built lazily)."""
        if self._rust is None:
            try:
                from tokenizers import Tokenizer, models
            except ImportError as error:  # pragma: no cover - depends on the install
                raise ImportError(
                    "keras_contrastive.text needs the Hugging Face `tokenizers` "
                    'package: pip install "keras_contrastive[text]"'
                ) from error
            tokenizer = Tokenizer(
                models.WordPiece(
                    vocab=self.token_to_id,
                    unk_token=self.unk_token,
                    max_input_chars_per_word=self.max_input_chars_per_word,
                    continuing_subword_prefix=self.continuing_subword_prefix,
                )
            )
            tokenizer.normalizer, tokenizer.pre_tokenizer = (
                self._normalizer_and_pre_tokenizer()
            )
            tokenizer.add_special_tokens(self.special_tokens)
            tokenizer.no_padding()
            tokenizer.no_truncation()
            self._rust = tokenizer
        return self._rust

    def word_pieces(self, texts):
        """The word-piece ids of each text: a list of lists, no [CLS]/[SEP]."""
        texts = v.check_strings("texts", texts, allow_empty=True)
        if not texts:
            return []
        encodings = self.rust_tokenizer.encode_batch(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def lengths(self, texts):
        """Tokens each text takes, [CLS] and [SEP] included, before truncation."""
        return np.array([len(ids) + 2 for ids in self.word_pieces(texts)], np.int64)

    def __call__(self, texts, sequence_length=None):
        texts = v.check_strings("texts", texts)
        return self.pack(self.word_pieces(texts), sequence_length)

    def pack(self, pieces, sequence_length=None):
        """Lists of word-piece ids -> `{"token_ids", "padding_mask"}` (int32)."""
        limit = self.sequence_length
        if sequence_length is not None:
            limit = v.check_int("sequence_length", sequence_length, 2)
        kept = [ids[: limit - 2] for ids in pieces]
        longest = max(len(ids) for ids in kept) + 2
        if sequence_length is None:
            length = min(limit, -(-longest // 8) * 8)
        else:
            length = limit
        token_ids = np.full((len(kept), length), self.pad_token_id, np.int32)
        padding_mask = np.zeros((len(kept), length), np.int32)
        for row, ids in enumerate(kept):
            count = len(ids) + 2
            token_ids[row, 0] = self.cls_token_id
            token_ids[row, 1 : count - 1] = ids
            token_ids[row, count - 1] = self.sep_token_id
            padding_mask[row, :count] = 1
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    def detokenize(self, token_ids):
        """Ids -> tokens (a list of lists of strings), padding dropped."""
        rows = np.asarray(token_ids)
        if rows.ndim == 1:
            rows = rows[None]
        return [
            [self.vocabulary[i] for i in row if i != self.pad_token_id]
            for row in rows.tolist()
        ]

    # -- TensorFlow graph --

    def tokenize_graph(self, texts, sequence_length=None):
        """Tokenises a TensorFlow string tensor with TensorFlow ops only.

        `texts`: a `tf.string` tensor of shape (N,) (or a scalar). Returns a dict
        of int32 tensors of shape (N, sequence_length) (padded to exactly that
        length, `self.sequence_length` by default). Works inside `tf.function`,
        `tf.data` maps and exported SavedModels on any Keras backend (it needs
        TensorFlow installed, not the TensorFlow backend). The ids equal the
        host tokenizer's (tests/text compares them), except for characters of
        Unicode's supplementary private-use plane B (U+100000 and up), which
        stand for the special tokens inside the graph.
        """
        length = self.sequence_length
        if sequence_length is not None:
            length = v.check_int("sequence_length", sequence_length, 2)
        return self.graph_tokenizer()(texts, length)

    def graph_tokenizer(self):
        """The TensorFlow form (built once: its tables take a few seconds)."""
        from keras_contrastive.text import _graph_wordpiece

        if self._graph is None:
            self._graph = _graph_wordpiece.GraphWordPiece(self)
        return self._graph

    # -- config --

    def get_config(self):
        return {
            "vocabulary": list(self.vocabulary),
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "clean_text": self.clean_text,
            "unk_token": self.unk_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "mask_token": self.mask_token,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "continuing_subword_prefix": self.continuing_subword_prefix,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __getstate__(self):  # picklable (PyDataset workers): rebuild lazily
        return self.get_config()

    def __setstate__(self, state):
        self.__init__(**state)

    def __repr__(self):
        return (
            f"WordPieceTokenizer(vocabulary_size={self.vocabulary_size}, "
            f"sequence_length={self.sequence_length}, lowercase={self.lowercase})"
        )

    @classmethod
    def from_folder(cls, path, sequence_length=None):
        """The tokenizer of a Hugging Face model folder.

        Reads `tokenizer.json` (its BertNormalizer settings, WordPiece vocabulary
        and special tokens) when present, otherwise `vocab.txt` with
        `tokenizer_config.json` (`do_lower_case`, `strip_accents`,
        `tokenize_chinese_chars`). `sequence_length` defaults to the folder's
        `model_max_length` (capped at 512).
        """
        path = os.fspath(path)
        config = _read_json(os.path.join(path, "tokenizer_config.json")) or {}
        kwargs = {}
        for name in _SPECIAL_NAMES:
            token = config.get(name)
            if isinstance(token, dict):
                token = token.get("content")
            if isinstance(token, str):
                kwargs[name] = token
        tokenizer_json = _read_json(os.path.join(path, "tokenizer.json"))
        if tokenizer_json is not None:
            kwargs.update(_settings_from_tokenizer_json(tokenizer_json, path))
        else:
            vocab_path = os.path.join(path, "vocab.txt")
            if not os.path.isfile(vocab_path):
                v.fail(
                    "path",
                    "a folder with tokenizer.json or vocab.txt",
                    path,
                    detail="Neither file is there",
                )
            kwargs["vocabulary"] = vocab_path
            kwargs["lowercase"] = bool(config.get("do_lower_case", True))
            kwargs["strip_accents"] = config.get("strip_accents")
            kwargs["tokenize_chinese_chars"] = bool(
                config.get("tokenize_chinese_chars", True)
            )
        if sequence_length is None:
            sequence_length = config.get("model_max_length", 512)
            if not v.is_int(sequence_length) or sequence_length > 512:
                sequence_length = 512
        kwargs["sequence_length"] = sequence_length
        kwargs["vocabulary"] = _read_vocabulary(kwargs["vocabulary"])
        if kwargs.get("mask_token", "[MASK]") not in set(kwargs["vocabulary"]):
            kwargs["mask_token"] = None  # a vocabulary without a mask token
        return cls(**kwargs)


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _settings_from_tokenizer_json(spec, path):
    model = spec.get("model") or {}
    normalizer = spec.get("normalizer") or {}
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    if (
        model.get("type") != "WordPiece"
        or normalizer.get("type") != "BertNormalizer"
        or pre_tokenizer.get("type") != "BertPreTokenizer"
    ):
        v.fail(
            "path",
            "a folder whose tokenizer.json is BERT's (WordPiece model, "
            "BertNormalizer, BertPreTokenizer)",
            path,
            detail=(
                f"Found model={model.get('type')}, "
                f"normalizer={normalizer.get('type')}, "
                f"pre_tokenizer={pre_tokenizer.get('type')}"
            ),
        )
    vocab = model["vocab"]
    vocabulary = [None] * (max(vocab.values()) + 1)
    for token, index in vocab.items():
        vocabulary[index] = token
    for index, token in enumerate(vocabulary):
        if token is None:
            vocabulary[index] = f"[unused_id_{index}]"
    settings = {
        "vocabulary": vocabulary,
        "lowercase": bool(normalizer.get("lowercase", True)),
        "strip_accents": normalizer.get("strip_accents"),
        "tokenize_chinese_chars": bool(normalizer.get("handle_chinese_chars", True)),
        "clean_text": bool(normalizer.get("clean_text", True)),
        "unk_token": model.get("unk_token", "[UNK]"),
        "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100)),
        "continuing_subword_prefix": model.get("continuing_subword_prefix", "##"),
    }
    processor = spec.get("post_processor") or {}
    if processor.get("type") == "TemplateProcessing":
        single = processor.get("single") or []
        names = [
            item["SpecialToken"]["id"] for item in single if "SpecialToken" in item
        ]
        if len(names) == 2:
            settings["cls_token"], settings["sep_token"] = names
    elif processor.get("type") == "BertProcessing":
        settings["cls_token"] = processor["cls"][0]
        settings["sep_token"] = processor["sep"][0]
    padding = spec.get("padding") or {}
    if padding.get("pad_token"):
        settings["pad_token"] = padding["pad_token"]
    added = {token["content"] for token in spec.get("added_tokens") or []}
    if "[MASK]" in added:
        settings.setdefault("mask_token", "[MASK]")
    return settings
