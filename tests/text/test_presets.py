"""SentenceEncoder.from_preset on hand-made folders: settings followed, clear errors."""

import json

import pytest

from keras_contrastive.text import SentenceEncoder, WordPieceTokenizer
from tests.text._tiny import VOCABULARY

TINY_CONFIG = {
    "model_type": "bert",
    "vocab_size": len(VOCABULARY),
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 16,
    "max_position_embeddings": 64,
}


def make_folder(root, config=None, modules=None, pooling=None, vocabulary=VOCABULARY):
    root.mkdir(exist_ok=True)
    (root / "config.json").write_text(json.dumps(config or TINY_CONFIG))
    (root / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    (root / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    if modules is not None:
        (root / "modules.json").write_text(json.dumps(modules))
        (root / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 24, "do_lower_case": False})
        )
    if pooling is not None:
        (root / "1_Pooling").mkdir()
        (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return str(root)


def st_modules(*names):
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize"}
    return [
        {
            "idx": i,
            "name": str(i),
            "path": paths.get(name, name),
            "type": f"sentence_transformers.models.{name}",
        }
        for i, name in enumerate(names)
    ]


def test_sentence_transformers_settings_are_followed(tmp_path):
    folder = make_folder(
        tmp_path / "st",
        modules=st_modules("Transformer", "Pooling", "Normalize"),
        pooling={"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
    )
    encoder = SentenceEncoder.from_preset(folder, load_weights=False)
    assert (encoder.pooling, encoder.normalize, encoder.sequence_length) == (
        "cls",
        True,
        24,
    )
    assert encoder.encode(["the man"], verbose=0).shape == (1, 8)
    plain = SentenceEncoder.from_preset(
        make_folder(tmp_path / "plain"), load_weights=False, pooling="max"
    )
    assert (plain.pooling, plain.normalize, plain.sequence_length) == ("max", False, 64)


def test_vocabulary_without_mask_token(tmp_path):
    vocabulary = [token for token in VOCABULARY if token != "[MASK]"]
    folder = make_folder(tmp_path / "nomask", vocabulary=vocabulary)
    assert WordPieceTokenizer.from_folder(folder).mask_token is None


@pytest.mark.parametrize(
    "kind, message",
    [
        ("roberta", 'model_type": "bert"'),
        ("dense", "It has a Dense module"),
        ("two_poolings", "one pooling mode"),
        ("no_weights", "model.safetensors or pytorch_model.bin"),
        ("empty", "a folder with config.json"),
    ],
)
def test_folder_errors(tmp_path, kind, message):
    root = tmp_path / kind
    if kind == "roberta":
        folder = make_folder(root, config={**TINY_CONFIG, "model_type": "roberta"})
    elif kind == "dense":
        folder = make_folder(root, modules=st_modules("Transformer", "Dense"))
    elif kind == "two_poolings":
        folder = make_folder(
            root,
            modules=st_modules("Transformer", "Pooling"),
            pooling={"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True},
        )
    elif kind == "no_weights":
        folder = make_folder(root)
    else:
        root.mkdir()
        folder = str(root)
    with pytest.raises(ValueError, match=message) as info:
        SentenceEncoder.from_preset(folder)
    assert "`name_or_folder`" in str(info.value) or "`path`" in str(info.value)


def test_unknown_preset_name_without_keras_hub():
    try:
        import keras_hub  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="keras-hub is not installed"):
            SentenceEncoder.from_preset("bert_base_en_uncased")
    else:  # pragma: no cover - keras-hub is not part of the test install
        pytest.skip("keras-hub installed")


def test_tokenizer_folder_needs_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="tokenizer.json or vocab.txt"):
        WordPieceTokenizer.from_folder(tmp_path)
