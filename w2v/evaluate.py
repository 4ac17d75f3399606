"""Looking at vectors: nearest neighbours by cosine similarity (text or binary word2vec files)."""

from __future__ import annotations

import numpy as np


class UnknownWord(KeyError):
    def __str__(self):
        return f"'{self.args[0]}' is not in the vocabulary"


class Vectors:
    """Word vectors with unit-normalised rows for cosine queries."""

    def __init__(self, words: list[str], vectors: np.ndarray):
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.unit = self.vectors / np.maximum(norms, 1e-12)

    @classmethod
    def load(cls, path) -> Vectors:
        from .io import read_vectors

        return cls(*read_vectors(path))

    def id(self, word: str) -> int:
        try:
            return self.index[word]
        except KeyError:
            raise UnknownWord(word) from None

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        i = self.id(word)
        scores = self.unit @ self.unit[i]
        scores[i] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.words[j], float(scores[j])) for j in top]
