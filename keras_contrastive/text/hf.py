"""Reading Hugging Face / sentence-transformers model folders, offline.

A folder in Hugging Face's layout holds `config.json` (the architecture),
`model.safetensors` (or `pytorch_model.bin`, read only when PyTorch is installed)
and the tokenizer (`tokenizer.json`, or `vocab.txt` with `tokenizer_config.json`).
A sentence-transformers folder adds `modules.json` (Transformer -> Pooling ->
optionally Normalize), the pooling config (`1_Pooling/config.json`) and
`sentence_bert_config.json` (`max_seq_length`, `do_lower_case`), which are
followed here. Only BERT-architecture checkpoints (`model_type: "bert"`, which
includes MiniLM and the all-MiniLM / multi-qa / paraphrase-MiniLM sentence
encoders) are read; others raise a `ValueError` naming what was found.
"""

import json
import os

import numpy as np

from keras_contrastive import _validation as v
from keras_contrastive.text.backbone import BertBackbone
from keras_contrastive.text.tokenizer import WordPieceTokenizer

_ST_PREFIX = "sentence_transformers.models."


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_hf_folder(path):
    return (
        os.path.isfile(os.path.join(path, "config.json"))
        and (_read_json(os.path.join(path, "config.json")) or {}).get("model_type")
        is not None
    )


def read_sentence_transformers_config(path):
    """The folder's transformer sub-folder, pooling, normalisation and length.

    Returns a dict with `transformer_path`, `pooling` ("mean", "cls", "max" or
    None when the folder has no modules.json), `normalize` (bool or None),
    `sequence_length` (int or None) and `lowercase` (bool or None).
    """
    result = {
        "transformer_path": path,
        "pooling": None,
        "normalize": None,
        "sequence_length": None,
        "lowercase": None,
    }
    modules = _read_json(os.path.join(path, "modules.json"))
    if modules is None:
        return result
    types = [module.get("type", "") for module in modules]
    if not types or not types[0].startswith(_ST_PREFIX + "Transformer"):
        v.fail(
            "path",
            "a sentence-transformers folder whose first module is a Transformer",
            path,
            detail=f"modules.json lists {types}",
        )
    supported = {"Transformer", "Pooling", "Normalize"}
    for module_type in types:
        short = module_type.replace(_ST_PREFIX, "")
        if short not in supported:
            v.fail(
                "path",
                "a sentence-transformers folder with Transformer, Pooling and "
                "Normalize modules only",
                path,
                detail=f"It has a {short} module, which is not supported",
            )
    result["normalize"] = any(t.endswith("Normalize") for t in types)
    transformer = modules[0]
    result["transformer_path"] = os.path.join(path, transformer.get("path", ""))
    for module in modules:
        if module.get("type", "").endswith("Pooling"):
            config = _read_json(
                os.path.join(path, module.get("path", ""), "config.json")
            )
            result["pooling"] = _pooling_mode(config or {}, path)
    st_config = None
    for folder in (result["transformer_path"], path):
        st_config = _read_json(os.path.join(folder, "sentence_bert_config.json"))
        if st_config is not None:
            break
    if st_config:
        if st_config.get("max_seq_length") is not None:
            result["sequence_length"] = int(st_config["max_seq_length"])
        if st_config.get("do_lower_case"):
            result["lowercase"] = True
    return result


def _pooling_mode(config, path):
    modes = {
        "pooling_mode_cls_token": "cls",
        "pooling_mode_mean_tokens": "mean",
        "pooling_mode_max_tokens": "max",
    }
    chosen = [mode for key, mode in modes.items() if config.get(key)]
    others = [
        key
        for key, value in config.items()
        if key.startswith("pooling_mode") and key not in modes and value
    ]
    if len(chosen) != 1 or others:
        v.fail(
            "path",
            "a sentence-transformers folder with one pooling mode of cls, mean or max",
            path,
            detail=f"Its pooling config sets {chosen + others}",
        )
    return chosen[0]


def backbone_from_config(config, path):
    """A `BertBackbone` for a Hugging Face `config.json` dict (weights random)."""
    if config.get("model_type") != "bert":
        v.fail(
            "path",
            'a folder of a BERT-architecture model (config.json "model_type": "bert")',
            path,
            detail=f"Its model_type is {config.get('model_type')!r}",
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        v.fail(
            "path",
            "a BERT model with absolute position embeddings",
            path,
            detail=f"It has {config['position_embedding_type']!r}",
        )
    return BertBackbone(
        vocabulary_size=config["vocab_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        hidden_dim=config["hidden_size"],
        intermediate_dim=config["intermediate_size"],
        dropout=config.get("hidden_dropout_prob", 0.1),
        attention_dropout=config.get("attention_probs_dropout_prob", 0.1),
        max_sequence_length=config.get("max_position_embeddings", 512),
        num_segments=config.get("type_vocab_size", 2),
        activation=config.get("hidden_act", "gelu"),
        layer_norm_epsilon=config.get("layer_norm_eps", 1e-12),
        initializer_range=config.get("initializer_range", 0.02),
    )


def read_weights(path):
    """The checkpoint's tensors as NumPy arrays, names without a `bert.` prefix."""
    safetensors_path = os.path.join(path, "model.safetensors")
    if os.path.isfile(safetensors_path):
        from safetensors.numpy import load_file

        tensors = load_file(safetensors_path)
    elif os.path.isfile(os.path.join(path, "pytorch_model.bin")):
        try:
            import torch
        except ImportError:
            v.fail(
                "path",
                "a folder with model.safetensors (pytorch_model.bin needs PyTorch)",
                path,
            )
        state = torch.load(
            os.path.join(path, "pytorch_model.bin"),
            map_location="cpu",
            weights_only=True,
        )
        tensors = {name: value.float().numpy() for name, value in state.items()}
    else:
        v.fail("path", "a folder with model.safetensors or pytorch_model.bin", path)
    cleaned = {}
    for name, value in tensors.items():
        for prefix in ("bert.", "model."):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight")
        name = name.replace("LayerNorm.beta", "LayerNorm.bias")
        cleaned[name] = np.asarray(value)
    return cleaned


def _weight_pairs(backbone):
    """(Keras variable, Hugging Face name, transpose) for every backbone weight."""
    emb = backbone.get_layer("embeddings")
    pairs = [
        (emb.token_embedding.embeddings, "embeddings.word_embeddings.weight", False),
        (
            emb.position_embedding.embeddings,
            "embeddings.position_embeddings.weight",
            False,
        ),
        (
            emb.segment_embedding.embeddings,
            "embeddings.token_type_embeddings.weight",
            False,
        ),
        (emb.layer_norm.gamma, "embeddings.LayerNorm.weight", False),
        (emb.layer_norm.beta, "embeddings.LayerNorm.bias", False),
    ]
    for i in range(backbone.num_layers):
        layer = backbone.get_layer(f"transformer_layer_{i}")
        prefix = f"encoder.layer.{i}."
        dense = {
            "query": (layer.query, "attention.self.query"),
            "key": (layer.key, "attention.self.key"),
            "value": (layer.value, "attention.self.value"),
            "attention_output": (layer.attention_output, "attention.output.dense"),
            "intermediate": (layer.intermediate, "intermediate.dense"),
            "output": (layer.output_dense, "output.dense"),
        }
        for keras_layer, name in dense.values():
            pairs.append((keras_layer.kernel, prefix + name + ".weight", True))
            pairs.append((keras_layer.bias, prefix + name + ".bias", False))
        for norm, name in (
            (layer.attention_norm, "attention.output.LayerNorm"),
            (layer.output_norm, "output.LayerNorm"),
        ):
            pairs.append((norm.gamma, prefix + name + ".weight", False))
            pairs.append((norm.beta, prefix + name + ".bias", False))
    return pairs


def load_weights(backbone, tensors, path):
    """Assigns a checkpoint's tensors to a `BertBackbone`; every weight must match."""
    for variable, name, transpose in _weight_pairs(backbone):
        if name not in tensors:
            v.fail(
                "path",
                "a BERT checkpoint with every weight of the model",
                path,
                detail=f"{name} is missing",
            )
        value = tensors[name].T if transpose else tensors[name]
        if tuple(value.shape) != tuple(variable.shape):
            v.fail(
                "path",
                "a checkpoint whose shapes match its config.json",
                path,
                detail=f"{name} has shape {value.shape}, the model {variable.shape}",
            )
        variable.assign(value.astype(variable.dtype))


def load_folder(path, sequence_length=None, load_weights_=True):
    """Everything `SentenceEncoder.from_preset` needs from a local folder."""
    st = read_sentence_transformers_config(path)
    model_path = st["transformer_path"]
    config = _read_json(os.path.join(model_path, "config.json"))
    if config is None:
        v.fail("path", "a folder with config.json", model_path)
    backbone = backbone_from_config(config, model_path)
    if load_weights_:
        load_weights(backbone, read_weights(model_path), model_path)
    length = sequence_length or st["sequence_length"]
    if length is None:
        length = min(512, backbone.max_sequence_length)
    tokenizer = WordPieceTokenizer.from_folder(model_path, sequence_length=length)
    if st["lowercase"]:
        config = tokenizer.get_config()
        config["lowercase"] = True
        tokenizer = WordPieceTokenizer.from_config(config)
    return {
        "backbone": backbone,
        "tokenizer": tokenizer,
        "pooling": st["pooling"] or "mean",
        "normalize": bool(st["normalize"]),
        "sequence_length": length,
    }
