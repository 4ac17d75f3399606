"""Judging vectors: neighbours, analogies (3CosAdd, 3CosMul) and word-similarity correlation.

The analogy and similarity scores follow gensim's ``evaluate_word_analogies`` and
``evaluate_word_pairs`` step by step (case-insensitive lookup where the most frequent casing
wins, float32 arithmetic, the same top-N search), so the same vectors get the same counts.
Reads any word2vec text or binary file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


class UnknownWord(KeyError):
    """A word a query needs is not in the vocabulary; ``other``: the same word in another case that is."""

    def __init__(self, word: str, other: str | None = None):
        super().__init__(word)
        self.word, self.other = word, other

    def __str__(self):
        hint = f"; '{self.other}' is" if self.other else ""
        return f"'{self.word}' is not in the vocabulary{hint}"


class Vectors:
    """Word vectors with their norms, for cosine queries (float32, as gensim computes them)."""

    def __init__(self, words: list[str], vectors: np.ndarray):
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.norms = np.linalg.norm(self.vectors, axis=1)
        self._folded: dict[str, str] | None = None

    @classmethod
    def load(cls, path) -> Vectors:
        from .io import read_vectors

        return cls(*read_vectors(path))

    def id(self, word: str) -> int:
        try:
            return self.index[word]
        except KeyError:
            raise UnknownWord(word, self._other_case(word)) from None

    def _other_case(self, word: str) -> str | None:
        """The most frequent word (first id) that equals ``word`` up to case, if any."""
        if self._folded is None:
            self._folded = {}
            for w in self.words:
                self._folded.setdefault(w.casefold(), w)
        return self._folded.get(word.casefold())

    def unit(self, i: int) -> np.ndarray:
        return self.vectors[i] / self.norms[i]

    def most_similar(self, word: str, k: int = 10) -> list[tuple[str, float]]:
        return self.nearest([self.id(word)], [], k)

    def query(self, positive: list[str], negative: list[str] = (), k: int = 10, method: str = "3cosadd"):
        """The k words nearest to the positive words and away from the negative ones, the inputs
        excluded: gensim's most_similar(positive, negative) (3cosadd: the mean of the unit vectors,
        negatives subtracted) or most_similar_cosmul (3cosmul)."""
        pos, neg = [self.id(w) for w in positive], [self.id(w) for w in negative]
        return self.nearest(pos, neg, k, method=method)

    def analogy(self, a: str, b: str, c: str, k: int = 10, method: str = "3cosadd") -> list[tuple[str, float]]:
        """a is to b as c is to ?: 3CosAdd, the nearest to unit(b) - unit(a) + unit(c), or 3CosMul."""
        return self.query([b, c], [a], k, method)

    def nearest(self, positive: list[int], negative: list[int], k: int, restrict: int | None = None,
                method: str = "3cosadd"):
        if method not in ("3cosadd", "3cosmul"):
            raise ValueError(f"unknown method {method!r}")
        dists = (self._cosadd if method == "3cosadd" else self._cosmul)(positive, negative, restrict)
        exclude = set(positive) | set(negative)
        best = _top(dists, k + len(exclude))
        return [(self.words[j], float(dists[j])) for j in best if j not in exclude][:k]

    def _cosadd(self, positive, negative, restrict):
        # gensim's get_mean_vector(pre_normalize=True, post_normalize=True), then most_similar's dists
        # (its float32 sum, then float64 division and normalisation, back to float32)
        mean = np.zeros(self.vectors.shape[1], np.float32)
        for i in positive:
            mean += self.unit(i)
        for i in negative:
            mean -= self.unit(i)
        mean64 = mean / float(len(positive) + len(negative))
        mean = (mean64 * (1.0 / np.linalg.norm(mean64))).astype(np.float32)
        end = restrict or len(self.words)
        return np.dot(self.vectors[:end], mean) / self.norms[:end]

    def _cosmul(self, positive, negative, restrict):
        # gensim's most_similar_cosmul: Levy & Goldberg's eq. (4) with cosines shifted to [0, 1];
        # unlike gensim's, candidates are the first ``restrict`` words, as for 3CosAdd
        end = restrict or len(self.words)
        vecs, norms = self.vectors[:end], self.norms[:end]
        pos = [(1 + np.dot(vecs, self.unit(i)) / norms) / 2 for i in positive]
        neg = [(1 + np.dot(vecs, self.unit(i)) / norms) / 2 for i in negative]
        return np.prod(pos, axis=0) / (np.prod(neg, axis=0) + 0.000001)


def _unitvec(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return (v * np.float32(1.0 / n)).astype(np.float32) if n > 0 else v


def _top(x: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest, largest first (gensim's matutils.argsort(reverse=True))."""
    x = -x
    if n >= x.size:
        return np.argsort(x)[:n]
    part = np.argpartition(x, n)[:n]
    return part.take(np.argsort(x.take(part)))


def _ok_vocab(vecs: Vectors, restrict: int) -> dict[str, int]:
    """Upper-cased words of the first ``restrict`` ids; for casings of one word the most frequent wins."""
    return {w.upper(): i for i, w in reversed(list(enumerate(vecs.words[:restrict])))}


def evaluate_analogies(vecs: Vectors, path, restrict_vocab: int = 30000, method: str = "3cosadd") -> dict:
    """Accuracy on a Google-analogy-format file (``: section`` headers, ``a b c d`` lines).

    ``total`` counts the questions answered (gensim's correct + incorrect), ``skipped`` those
    with a word outside the ``restrict_vocab`` most frequent, ``malformed`` lines not of 4 words.
    """
    if method not in ("3cosadd", "3cosmul"):
        raise ValueError(f"unknown analogy method {method!r}")
    ok = _ok_vocab(vecs, restrict_vocab)
    sections: list[dict] = []
    skipped = malformed = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(": "):
                sections.append({"section": line.lstrip(": ").strip(), "correct": 0, "total": 0})
                continue
            parts = line.upper().split()
            if not parts:
                continue
            if len(parts) != 4 or not sections:
                malformed += 1
                continue
            a, b, c, expected = parts
            if a not in ok or b not in ok or c not in ok or expected not in ok:
                skipped += 1
                continue
            ia, ib, ic = ok[a], ok[b], ok[c]
            if method == "3cosadd":
                dists = vecs._cosadd([ib, ic], [ia], restrict_vocab)
            else:
                dists = vecs._cosmul([ib, ic], [ia], restrict_vocab)
            exclude = {ia, ib, ic}
            # gensim asks for topn 5 + len(input keys): 3 for most_similar, distinct ids for cosmul
            extra = 3 if method == "3cosadd" else len(exclude)
            predicted = None
            for j in [j for j in _top(dists, 5 + extra) if j not in exclude][:5]:
                predicted = vecs.words[j].upper()
                if predicted in ok and predicted not in (a, b, c):
                    break
            sections[-1]["total"] += 1
            sections[-1]["correct"] += predicted == expected
    correct = sum(s["correct"] for s in sections)
    total = sum(s["total"] for s in sections)
    return {"file": str(path), "method": method, "correct": correct, "total": total,
            "accuracy": correct / total if total else 0.0, "skipped": skipped, "malformed": malformed,
            "sections": sections}


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (scipy's rankdata 'average')."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[0, np.flatnonzero(xs[1:] != xs[:-1]) + 1]
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, np.float64) - np.mean(x, dtype=np.float64)
    y = np.asarray(y, np.float64) - np.mean(y, dtype=np.float64)
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom else float("nan")


def evaluate_similarity(vecs: Vectors, path, restrict_vocab: int = 300000) -> dict:
    """Spearman and Pearson correlation of cosine similarity with human scores.

    Lines: two words and a score, tab- or space-separated; ``#`` starts a comment. ``oov`` counts
    pairs with a word outside the ``restrict_vocab`` most frequent, ``skipped`` malformed lines.
    """
    ok = _ok_vocab(vecs, restrict_vocab)
    gold, model = [], []
    oov = skipped = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.split()
            try:
                a, b, score = parts
                a, b, score = a.strip().upper(), b.strip().upper(), float(score)
            except ValueError:
                skipped += 1
                continue
            if a not in ok or b not in ok:
                oov += 1
                continue
            gold.append(score)
            model.append(np.dot(_unitvec(vecs.vectors[ok[a]]), _unitvec(vecs.vectors[ok[b]])))
    gold_arr, model_arr = np.array(gold, np.float64), np.array(model, np.float32).astype(np.float64)
    enough = len(gold) >= 2
    return {"file": str(path), "spearman": _pearson(_rank(gold_arr), _rank(model_arr)) if enough else float("nan"),
            "pearson": _pearson(gold_arr, model_arr) if enough else float("nan"), "pairs": len(gold), "oov": oov,
            "skipped": skipped}


def default_eval_files() -> tuple[list[Path], list[Path]]:
    """The evaluation sets shipped in data/ (a source checkout), when they are there."""
    analogies = [DATA / "questions-words.txt"]
    similarity = [DATA / "wordsim353.tsv"]
    return [p for p in analogies if p.exists()], [p for p in similarity if p.exists()]
