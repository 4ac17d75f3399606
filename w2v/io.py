"""Files out and in: atomic writes and the word2vec text format."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


class OutputError(OSError):
    """An output path that cannot be written; the CLI prints it as one line."""


@contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Write to a temporary name beside ``path`` and rename it into place only on success, so a
    crash leaves the previous file or none, never half of one."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_word2vec_text(path, words: list[str], vectors: np.ndarray) -> None:
    """Header ``V D``, then ``word v1 ... vD`` per row. '%.9g' round-trips every float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    row_fmt = " ".join(["%.9g"] * dim)
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"{n} {dim}\n")
        step = 4096
        for lo in range(0, n, step):
            block = vectors[lo:lo + step].astype(np.float64).tolist()
            fh.write("".join(f"{w} {row_fmt % tuple(v)}\n" for w, v in zip(words[lo:lo + step], block, strict=False)))


def read_word2vec_text(path) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise ValueError(f"{path}: first line must be 'count dim', got {' '.join(header)!r}")
        n, dim = map(int, header)
        words = []
        vectors = np.empty((n, dim), dtype=np.float32)
        for i in range(n):
            parts = fh.readline().rstrip("\n").split(" ")
            if len(parts) != dim + 1:
                raise ValueError(f"{path}:{i + 2}: expected a word and {dim} numbers")
            words.append(parts[0])
            vectors[i] = np.array(parts[1:], dtype=np.float32)
    return words, vectors
