"""Files out and in: atomic writes and the word2vec text format."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


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
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
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
        step = 1024
        for lo in range(0, n, step):
            block = vectors[lo:lo + step].astype(np.float64).tolist()
            fh.write("".join(f"{w} {row_fmt % tuple(v)}\n" for w, v in zip(words[lo:lo + step], block, strict=False)))


def write_word2vec_binary(path, words: list[str], vectors: np.ndarray) -> None:
    """word2vec.c's binary format: ``V D\n``, then per word its UTF-8 bytes, a space, D
    little-endian float32 and a newline."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    n, dim = vectors.shape
    with atomic_open(path, "wb") as fh:
        fh.write(f"{n} {dim}\n".encode())
        for word, row in zip(words, vectors, strict=True):
            fh.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")


def read_word2vec_binary(path) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise ValueError(f"{path}: first line must be 'count dim'")
        n, dim = map(int, header)
        data = fh.read()
    words, vectors = [], np.empty((n, dim), dtype=np.float32)
    pos, width = 0, 4 * dim
    for i in range(n):
        while data[pos:pos + 1] in (b"\n", b" "):  # the C tool writes a newline after each vector
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + width > len(data):
            raise ValueError(f"{path}: truncated at word {i + 1} of {n}")
        words.append(data[pos:space].decode("utf-8", errors="replace"))
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + width
    return words, vectors


def read_word2vec_text(path) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise ValueError(f"{path}: first line must be 'count dim', got {' '.join(header)!r}")
        n, dim = map(int, header)
        words = []
        vectors = np.empty((n, dim), dtype=np.float32)
        for i in range(n):
            parts = fh.readline().rstrip().split(" ")
            if len(parts) != dim + 1:
                raise ValueError(f"{path}:{i + 2}: expected a word and {dim} numbers")
            words.append(parts[0])
            vectors[i] = np.array(parts[1:], dtype=np.float32)
    return words, vectors


def read_vectors(path) -> tuple[list[str], np.ndarray]:
    """Any word2vec file, text or binary (told apart by the bytes after the header)."""
    with open(path, "rb") as fh:
        fh.readline()
        first = fh.readline(1 << 22)
    try:
        line = first.decode("utf-8")
        [float(v) for v in line.split()[1:]]
        binary = len(line.split()) < 2
    except (UnicodeDecodeError, ValueError):
        binary = True
    return read_word2vec_binary(path) if binary else read_word2vec_text(path)
