"""Vectors for downstream tools: word2vec text/binary, numpy, TensorBoard's projector."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .io import OutputError, atomic_open, read_vectors, write_word2vec_binary, write_word2vec_text

FORMATS = ("text", "binary", "npy", "projector")
VECTOR_FILES = {"text": "vectors.txt", "binary": "vectors.bin", "npy": "vectors.npy", "projector": "vectors.tsv"}


def write_vectors(out: Path, words: Sequence[str], counts, vectors: np.ndarray, fmt: str, threads: int = 1) -> Path:
    """Write vectors in ``fmt`` into directory ``out`` (the file name of a run); returns the main file.
    ``threads``: how many format text at once."""
    out = Path(out)
    target = out / VECTOR_FILES[fmt]
    if fmt in ("text", "binary"):
        write_file(target, words, vectors, fmt, threads)
    else:
        write_directory(out, words, counts, vectors, fmt)
    return target


def write_file(path: Path, words, vectors, fmt: str, threads: int = 1) -> None:
    if fmt == "text":
        write_word2vec_text(path, words, vectors, threads)
    else:
        write_word2vec_binary(path, words, vectors)


def write_directory(out: Path, words, counts, vectors, fmt: str) -> None:
    """npy: vectors.npy float32 [V, D] + vocab.txt; projector: vectors.tsv + metadata.tsv."""
    from .vocab import Vocab

    vectors = np.asarray(vectors, dtype=np.float32)
    counts = [int(c) for c in counts] if counts is not None else [0] * len(words)
    if fmt == "npy":
        with atomic_open(out / "vectors.npy", "wb") as fh:
            np.save(fh, vectors)
        Vocab(words, np.array(counts, dtype=np.int64)).save(out / "vocab.txt")
    else:
        fmt_row = "\t".join(["%.9g"] * vectors.shape[1])
        with atomic_open(out / "vectors.tsv", "w", encoding="utf-8") as fh:
            # in blocks: the whole matrix as Python floats was ~32 bytes a number (3.5 GiB at 1.16M x 100, worked out)
            for lo in range(0, len(vectors), 1024):
                fh.writelines(fmt_row % tuple(row) + "\n" for row in vectors[lo:lo + 1024].astype(np.float64).tolist())
        with atomic_open(out / "metadata.tsv", "w", encoding="utf-8") as fh:
            fh.write("word\tcount\n")
            fh.writelines(f"{w}\t{c}\n" for w, c in zip(words, counts, strict=True))


def load_source(source, which: str = "input") -> tuple[list[str], list[int] | None, np.ndarray]:
    """(words, counts or None, vectors) from a run directory (its checkpoint) or a vectors file.

    ``which``: input (the word vectors), output (NCE weights) or both (the two concatenated,
    [V, 2D]); output and both need a run directory.
    """
    from .checkpoint import CHECKPOINT, load_checkpoint

    source = Path(source)
    if source.is_dir():
        ck_path = source / CHECKPOINT
        if not ck_path.exists():
            raise OutputError(f"{source} is not a run directory (no {CHECKPOINT})")
        ck = load_checkpoint(ck_path)
        parts = {"input": [ck["emb_in"]], "output": [ck["emb_out"]], "both": [ck["emb_in"], ck["emb_out"]]}[which]
        return ck["words"].tolist(), ck["counts"].tolist(), np.concatenate(parts, axis=1)
    if not source.exists():
        raise OutputError(f"vectors path {source} does not exist")
    if which != "input":
        raise OutputError(f"--which {which} needs a run directory (output vectors are in its checkpoint)")
    try:
        words, vectors = read_vectors(source)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise OutputError(f"cannot read vectors {source}: {e}") from None
    return words, _counts_beside(source, words), vectors


def _counts_beside(source: Path, words: list[str]) -> list[int] | None:
    """Counts from the vocab.txt of the run a vectors file sits in, when it matches."""
    from .vocab import Vocab

    try:
        vocab = Vocab.load(source.parent / "vocab.txt")
    except (OSError, ValueError):
        return None
    return vocab.counts.tolist() if vocab.words == words else None


def export(source, to: str, out, which: str = "input", limit: int = 0) -> Path:
    """Export ``source`` (run directory or vectors file) as ``to`` into ``out`` (a file for text
    and binary, a directory for npy and projector); ``limit`` keeps the most frequent N words."""
    words, counts, vectors = load_source(source, which)
    if limit:
        words, vectors = words[:limit], vectors[:limit]
        counts = counts[:limit] if counts is not None else None
    out = Path(out)
    if to in ("text", "binary"):
        write_file(out, words, vectors, to, os.cpu_count() or 1)
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create {out}: {e.strerror or e}") from None
        write_directory(out, words, counts, vectors, to)
    return out
