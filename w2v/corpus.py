"""Streaming tokenizer: files (plain or .gz, or a directory of them) -> whitespace tokens.

Text is read ``chunk_bytes`` at a time, so a 100 MB file with no newline (text8) needs bounded
memory. A token is never cut at a chunk border: the unfinished tail of a chunk is carried into the
next. Each line is a sentence (the window never crosses a line end); a line longer than a chunk is
yielded in several segments with ``ends_sentence=False`` on all but the last.
"""

from __future__ import annotations

import codecs
import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class CorpusError(ValueError):
    """A corpus problem a user must fix; the CLI prints it as one line."""


@dataclass
class ReadStats:
    files: int = 0
    bytes: int = 0
    tokens: int = 0
    lines: int = 0
    invalid_utf8: int = 0  # undecodable byte sequences, each replaced by U+FFFD


def corpus_files(paths) -> list[Path]:
    """Expand the user's paths: a directory means the (non-hidden) files in it, sorted."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise CorpusError(f"directory {p} holds no files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise CorpusError(f"{p} is not a regular file or directory")
        else:
            raise CorpusError(f"corpus path {p} does not exist")
    if not files:
        raise CorpusError("no corpus files given")
    return files


def _open_binary(path: Path):
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None


def iter_segments(paths, lowercase: bool = False, chunk_bytes: int = 1 << 20,
                  stats: ReadStats | None = None) -> Iterator[tuple[list[str], bool]]:
    """Yield ``(tokens, ends_sentence)``; joining all segments gives ``text.split()`` per file."""
    stats = stats if stats is not None else ReadStats()
    for path in corpus_files(paths):
        stats.files += 1
        with _open_binary(path) as fh:
            yield from _file_segments(fh, path, lowercase, chunk_bytes, stats)


def _refuse_binary(path, head: bytes, invalid: int) -> None:
    """A file whose first chunk has NUL bytes or is mostly undecodable is not text: refuse it
    rather than train on garbage (a little invalid UTF-8 is replaced and counted instead)."""
    nul = head.count(b"\0")
    if nul or invalid > max(8, len(head) // 10):
        what = f"{nul} NUL bytes" if nul else f"{invalid} invalid UTF-8 sequences"
        raise CorpusError(f"{path} looks like a binary file ({what} in its first {len(head)} bytes); "
                          "w2v reads UTF-8 text")


def _file_segments(fh, path, lowercase, chunk_bytes, stats):
    invalid = [0]

    def count_and_replace(err):
        invalid[0] += 1
        return "\ufffd", err.end

    # codecs knows error handlers only by name: register this file's counting closure under a
    # name of its own (a reused id simply re-registers it).
    handler = f"w2v-count-{id(invalid)}"
    codecs.register_error(handler, count_and_replace)
    decoder = codecs.getincrementaldecoder("utf-8")(errors=handler)
    carry = ""
    line_open = False  # segments of an unfinished line went out
    start_bytes = stats.bytes
    while True:
        try:
            raw = fh.read(chunk_bytes)
        except (OSError, EOFError, zlib.error) as e:  # zlib.error: damaged .gz data
            raise CorpusError(f"cannot read {path}: {e}") from None
        final = not raw
        first = stats.bytes == start_bytes
        stats.bytes += len(raw)
        text = carry + decoder.decode(raw, final=final)
        if first and raw:
            _refuse_binary(path, raw, invalid[0])
        if lowercase:
            text = text.lower()
        carry = ""
        lines = text.split("\n")
        tail = lines.pop()  # text after the last newline: an unfinished line
        for line in lines:
            tokens = line.split()
            stats.lines += 1
            stats.tokens += len(tokens)
            yield tokens, True
        if lines:
            line_open = False
        tokens = tail.split()
        if not final and tokens and not tail[-1].isspace():
            carry = tokens.pop()  # may continue in the next chunk
        if final:
            # close the file's last line even when its tokens went out in earlier segments (a
            # file ending in a space with no newline): a sentence never runs into the next file
            stats.lines += bool(tokens) or line_open
            stats.tokens += len(tokens)
            if tokens or line_open:
                yield tokens, True
            break
        if tokens:
            stats.tokens += len(tokens)
            line_open = True
            yield tokens, False
    stats.invalid_utf8 += invalid[0]
