"""Files out and in: atomic writes, free-space checks and the word2vec text and binary formats.

Readers check what they read before anyone uses it: sizes against the header before allocating,
every number finite. A damaged file is a ``DamagedFileError`` naming the file and what is wrong.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .textfloat import format_rows, max_row_bytes, row_text
from .words import Words

_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(OSError):
    """A file or directory of w2v's that cannot be written, used or read back; the CLI prints it as
    one line."""


class DamagedFileError(OutputError):
    """A file w2v reads back (checkpoint, vectors) is damaged or is not what it claims to be."""


# errors that mean the disk (or a quota) cannot take the file, as opposed to a wrong path
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG, errno.EROFS})


def write_failed(path, e: OSError) -> OutputError:
    """The one line for a failed write: the file and the system's reason."""
    err = OutputError(f"cannot write {path}: {e.strerror or e}")
    err.errno = e.errno
    return err


def check_free_space(directory, need: int, files: dict[str, int], hint: str = "") -> None:
    """Refuse, before any work, when ``need`` bytes (``files``: what is written, for the message)
    do not fit the free space of the filesystem holding ``directory`` (or that will hold it, when
    it is not made yet), as ``df`` shows it."""
    from .errors import ResourceError

    where = Path(directory).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return  # cannot tell: the writes themselves will say
    if need > free:
        parts = ", ".join(f"{what} {_mib(n)}" for what, n in files.items())
        raise ResourceError(f"not enough disk space in {directory}: this needs about {_mib(need)} MiB ({parts}) "
                            f"but {_mib(free)} MiB are free{hint}")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f}" if n >= 10 * 2**20 else f"{n / 2**20:,.1f}"


@contextmanager
def atomic_open(path, mode="w", **kwargs):
    """Write to a temporary name beside ``path`` and rename it into place only on success, so a
    crash leaves the previous file or none, never half of one."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as e:
        raise write_failed(path, e) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            # a full disk or quota may only show when the data reaches it (delayed allocation,
            # NFS): find out before the rename, while the previous file is still in place
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not isinstance(e, OutputError):
            raise write_failed(path, e) from None
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


_TEXT_BLOCK = 1024  # rows formatted at a time


def write_word2vec_text(path, words: Sequence[str], vectors: np.ndarray, threads: int = 1) -> None:
    """Header ``V D``, then ``word v1 ... vD`` per row. '%.9g' round-trips every float32; the
    numbers are formatted by a kernel (``textfloat.format_rows``) in blocks of rows, a row it
    does not handle (NaN, infinities, magnitudes under 1e-8 or over 1e9) by Python. With
    ``threads`` > 1, that many blocks are formatted at once (the kernel releases the GIL) and written
    in order, at most two a thread waiting."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    words = Words.of(words)
    blocks = range(0, n, _TEXT_BLOCK)
    with atomic_open(path, "wb") as fh:
        fh.write(f"{n} {dim}\n".encode())
        if threads <= 1 or n <= _TEXT_BLOCK:
            for lo in blocks:
                fh.writelines(_text_block(words, vectors, lo))
            return
        with ThreadPoolExecutor(threads) as pool:
            pending = deque()
            for lo in blocks:
                pending.append(pool.submit(_text_block, words, vectors, lo))
                if len(pending) > 2 * threads:
                    fh.writelines(pending.popleft().result())
            while pending:
                fh.writelines(pending.popleft().result())


def _text_block(words: Words, vectors: np.ndarray, lo: int) -> list:
    """The text of rows lo .. lo + _TEXT_BLOCK - 1 (fewer at the end), in pieces to write in order."""
    hi = min(len(vectors), lo + _TEXT_BLOCK)
    first, last = int(words.offsets[lo]), int(words.offsets[hi])
    # fresh, writable arrays: one signature for the kernel, whatever the caller holds
    utf8, offsets = np.array(words.utf8[first:last]), words.offsets[lo:hi + 1] - first
    bits = np.array(vectors[lo:hi], dtype=np.float32).view(np.uint32)
    out = np.empty(last - first + (hi - lo) * max_row_bytes(0, vectors.shape[1]), np.uint8)  # the words + numbers
    pieces, done, pos = [], 0, 0
    while done < hi - lo:
        nbytes, rows = format_rows(bits[done:], utf8, offsets[done:], 0, out[pos:])
        pieces.append(out[pos:pos + nbytes].data)
        pos += nbytes
        done += rows
        if done < hi - lo:
            pieces.append(row_text(words[lo + done], vectors[lo + done]).encode("utf-8"))
            done += 1
    return pieces


def write_word2vec_binary(path, words: Sequence[str], vectors: np.ndarray) -> None:
    """word2vec.c's binary format: ``V D\n``, then per word its UTF-8 bytes, a space, D
    little-endian float32 and a newline."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    n, dim = vectors.shape
    with atomic_open(path, "wb") as fh:
        fh.write(f"{n} {dim}\n".encode())
        for word, row in zip(words, vectors, strict=True):
            fh.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")


def _header(path, line: bytes, file_size: int, min_row_bytes) -> tuple[int, int]:
    """``count dim`` from the first line, checked against the file's size before anything is
    allocated: each row needs at least ``min_row_bytes(dim)`` bytes."""
    header = line.split()
    if len(header) != 2 or not all(h.isdigit() and len(h) <= 18 for h in header):
        shown = line[:60].decode("utf-8", errors="replace").strip()
        raise DamagedFileError(f"{path} is not a word2vec file: the first line must be 'count dim', got {shown!r}")
    n, dim = map(int, header)
    if dim < 1:
        raise DamagedFileError(f"{path}: the header says dimension {dim}")
    if n * min_row_bytes(dim) > file_size:
        raise DamagedFileError(f"{path} is truncated or damaged: its header says {n} x {dim} vectors, which need "
                               f"at least {n * min_row_bytes(dim):,} bytes, but the file has {file_size:,}")
    return n, dim


def _check_words(path, words: list[str], what: str, first_number: int) -> None:
    """Each word once: with a repeated word, a lookup would silently take one of its rows."""
    if len(set(words)) == len(words):
        return
    first: dict[str, int] = {}
    for i, w in enumerate(words):
        if w in first:
            raise DamagedFileError(f"{path}: the word {w!r} appears twice ({what} {first[w] + first_number} and "
                                   f"{i + first_number}); a vectors file holds each word once")
        first[w] = i


def _more_rows(path, n: int, where: str) -> DamagedFileError:
    return DamagedFileError(f"{path}: the header says {n} vectors but the file holds more ({where}): it is damaged, "
                            "or its header is wrong")


def _check_finite(path, vectors: np.ndarray, first_line: int) -> None:
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise DamagedFileError(f"{path}: vector {row + 1} (line {row + first_line}) has a non-finite value")


def read_word2vec_binary(path, repeated_words: bool = False) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        # a row: a word of at least one byte, a space, dim float32
        n, dim = _header(path, fh.readline(), size, lambda d: 4 * d + 2)
        data = fh.read()
    words, vectors = [], np.empty((n, dim), dtype=np.float32)
    pos, width = 0, 4 * dim
    for i in range(n):
        while data[pos:pos + 1] in (b"\n", b" "):  # the C tool writes a newline after each vector
            pos += 1
        space = data.find(b" ", pos)
        if space < 0 or space + 1 + width > len(data):
            raise DamagedFileError(f"{path} is truncated: it ends in word {i + 1} of {n}")
        words.append(data[pos:space].decode("utf-8", errors="replace"))
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + width
    if data[pos:].strip():
        raise _more_rows(path, n, f"{len(data) - pos:,} bytes after vector {n}")
    if not repeated_words:
        _check_words(path, words, "vectors", 1)
    _check_finite(path, vectors, 2)
    return words, vectors


def read_word2vec_text(path, repeated_words: bool = False) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        # a row: a word of at least one character, then dim numbers of at least one digit, each
        # after a space, and a newline
        n, dim = _header(path, fh.readline(), size, lambda d: 2 * d + 2)
        words = []
        vectors = np.empty((n, dim), dtype=np.float32)
        for i in range(n):
            raw = fh.readline()
            try:
                parts = raw.decode("utf-8").rstrip().split(" ")
                if len(parts) != dim + 1:
                    raise ValueError
                vectors[i] = np.array(parts[1:], dtype=np.float32)
            except UnicodeDecodeError:
                raise DamagedFileError(f"{path}:{i + 2}: not UTF-8 text") from None
            except ValueError:
                what = "the file ends" if not raw else f"expected a word and {dim} numbers"
                raise DamagedFileError(f"{path}:{i + 2}: {what} (vector {i + 1} of {n})") from None
            words.append(parts[0])
        line = n + 2
        while rest := fh.readline(1 << 16):
            if rest.strip():
                raise _more_rows(path, n, f"line {line} holds another")
            line += 1
    if not repeated_words:
        _check_words(path, words, "lines", 2)
    _check_finite(path, vectors, 2)
    return words, vectors


def read_vectors(path, repeated_words: bool = False) -> tuple[list[str], np.ndarray]:
    """Any word2vec file, text or binary (told apart by the bytes after the header). A word that
    appears twice is a DamagedFileError unless ``repeated_words`` (the caller picks a row)."""
    with open(path, "rb") as fh:
        fh.readline()
        first = fh.readline(1 << 22)
    try:
        line = first.decode("utf-8")
        [float(v) for v in line.split()[1:]]
        binary = len(line.split()) < 2
    except (UnicodeDecodeError, ValueError):
        binary = True
    return read_word2vec_binary(path, repeated_words) if binary else read_word2vec_text(path, repeated_words)
