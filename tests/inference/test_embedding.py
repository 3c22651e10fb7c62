"""The built-in all-MiniLM-L6-v2 runs the real weights and gives sentence-transformers' output."""

from __future__ import annotations

import numpy as np
import pytest

from veil.inference.embedding import DIMENSIONS, EmbeddingModel


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    return EmbeddingModel()


def test_matches_the_published_reference_vector(model: EmbeddingModel) -> None:
    # sentence-transformers' own output for this sentence (model card example), first values
    vectors, tokens = model.embed(["This is an example sentence"])
    reference = [0.0676569, 0.0634959, 0.0487131, 0.0793050, 0.0374480]
    assert np.allclose(vectors[0][:5], reference, atol=2e-6)
    assert tokens == 7  # [CLS] this is an example sentence [SEP]


def test_meaning_is_captured(model: EmbeddingModel) -> None:
    vectors, _ = model.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
        ]
    )
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.7
    assert similarity[0, 2] < 0.1 and similarity[1, 2] < 0.1


def test_padding_does_not_change_a_vector(model: EmbeddingModel) -> None:
    short = "short"
    long = "a much longer sentence that forces padding of the short one in the batch"
    together, _ = model.embed([short, long])
    alone, _ = model.embed([short])
    assert together.shape == (2, DIMENSIONS)
    assert np.allclose(together[0], alone[0], atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_long_input_is_truncated_to_256_tokens(model: EmbeddingModel) -> None:
    assert model.count_tokens(["word " * 1000]) == 256
    vectors, tokens = model.embed(["word " * 1000])
    assert tokens == 256 and vectors.shape == (1, DIMENSIONS)
    empty, none = model.embed([])
    assert empty.shape == (0, DIMENSIONS) and none == 0
