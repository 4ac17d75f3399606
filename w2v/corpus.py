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
import unicodedata
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
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
    invalid_file: str = ""  # the first file that had some

    def add(self, other: ReadStats) -> None:
        """Add up another share's counts (the first file with invalid UTF-8 stays first)."""
        for name in ("files", "bytes", "tokens", "lines", "invalid_utf8"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.invalid_file = self.invalid_file or other.invalid_file


def invalid_utf8_warning(stats: dict) -> str | None:
    """The warning for a corpus with invalid UTF-8 (None: it had none), naming the first file and
    the likely encoding."""
    n = stats.get("invalid_utf8")
    if not n:
        return None
    where = stats.get("invalid_file")
    hint = (f" (first in {where}: is it in another encoding, e.g. Latin-1 or Windows-1252? convert it with "
            f"iconv -f WINDOWS-1252 -t UTF-8 {where} > {where}.utf8)") if where else ""
    return f"warning: replaced {n:,} invalid UTF-8 sequence(s) by U+FFFD{hint}"


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
                  stats: ReadStats | None = None, mode: str = "whitespace") -> Iterator[tuple[list[str], bool]]:
    """Yield ``(tokens, ends_sentence)``; joining all segments gives ``text.split()`` per file
    (``mode`` "words": ``words_reference``). The Python reference of w2v.tokenize."""
    stats = stats if stats is not None else ReadStats()
    for path in corpus_files(paths):
        stats.files += 1
        with _open_binary(path) as fh:
            yield from _closed(_file_segments(fh, path, lowercase, chunk_bytes, stats, mode), stats)


def _closed(segments, stats: ReadStats):
    """The segments of a whole file, its last line closed even when its tokens all went out in
    earlier segments (a file ending in a space with no newline): a sentence never runs on into the
    next file."""
    open_line = False
    for tokens, ends_sentence in segments:
        open_line = not ends_sentence
        yield tokens, ends_sentence
    if open_line:
        stats.lines += 1
        yield [], True


def _utf16(head: bytes) -> bool:
    """A byte-order mark of UTF-16, or a NUL in every other byte (ASCII text in UTF-16)."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    sample = head[:4096]
    even, odd = sorted((sample[0::2].count(0), sample[1::2].count(0)))
    return len(sample) >= 16 and odd > len(sample) // 4 and even <= len(sample) // 100


def _refuse_binary(path, head: bytes, invalid: int) -> None:
    """A file whose first chunk has NUL bytes or is mostly undecodable is not text: refuse it
    rather than train on garbage (a little invalid UTF-8 is replaced and counted instead)."""
    nul = head.count(b"\0")
    if _utf16(head):
        raise CorpusError(f"{path} looks like UTF-16 text (a byte-order mark, or a NUL byte in every other byte); "
                          f"w2v reads UTF-8: convert it first, e.g. iconv -f UTF-16 -t UTF-8 {path} > {path}.utf8")
    if nul or invalid > max(8, len(head) // 10):
        what = f"{nul} NUL bytes" if nul else f"{invalid} invalid UTF-8 sequences"
        raise CorpusError(f"{path} looks like a binary file ({what} in its first {len(head)} bytes); "
                          "w2v reads UTF-8 text")


def refuse_binary_later(path, nul: int, size: int, offset: int) -> None:
    """Past a file's first chunk: NUL bytes (which text never holds) in more than one byte in a
    thousand of a chunk (``nul`` of ``size`` bytes from ``offset``) mean binary data follows the
    text (an archive appended, a disk image): refuse it rather than train on garbage."""
    if nul > max(8, size // 1000):
        raise CorpusError(f"{path} holds binary data past its start ({nul:,} NUL bytes in bytes {offset:,} to "
                          f"{offset + size:,}); w2v reads UTF-8 text")


JOINERS = "'\u2019-\u2010\u2011"  # apostrophes and hyphens that stay inside a word (tokenize: words)


def is_word_char(ch: str) -> bool:
    """A character of a word in ``--tokenize words``: a letter, mark or number, or ``_``."""
    return ch == "_" or unicodedata.category(ch)[0] in "LMN"


def words_reference(text: str) -> list[str]:
    """``--tokenize words`` in plain Python on decoded text: maximal runs of word characters,
    an apostrophe or hyphen between two of them kept inside (the reference of w2v.tokenize)."""
    tokens, cur, pending = [], [], ""
    for ch in text:
        if is_word_char(ch):
            if pending:
                cur.append(pending)
                pending = ""
            cur.append(ch)
        elif ch in JOINERS and cur and not pending:
            pending = ch
        else:
            if cur:
                tokens.append("".join(cur))
            cur, pending = [], ""
    if cur:
        tokens.append("".join(cur))
    return tokens


def split_line(line: str, mode: str = "whitespace", lowercase: bool = False) -> list[str]:
    """The tokens of one decoded line: ``whitespace`` lowercases the text, then ``str.split()``s
    it; ``words`` splits first, then lowercases each token."""
    if mode == "whitespace":
        return (line.lower() if lowercase else line).split()
    tokens = words_reference(line)
    return [t.lower() for t in tokens] if lowercase else tokens


def _file_segments(fh, path, lowercase, chunk_bytes, stats, mode="whitespace"):
    words = mode == "words"
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
        elif raw:
            refuse_binary_later(path, raw.count(b"\0"), len(raw), stats.bytes - start_bytes - len(raw))
        if lowercase and not words:
            text = text.lower()
        carry = ""
        lines = text.split("\n")
        tail = lines.pop()  # text after the last newline: an unfinished line
        for line in lines:
            tokens = split_line(line, mode, lowercase) if words else line.split()
            stats.lines += 1
            stats.tokens += len(tokens)
            yield tokens, True
        if words:
            cut = len(tail)
            if not final:  # the text after the last separator may continue in the next chunk
                while cut and (is_word_char(tail[cut - 1]) or tail[cut - 1] in JOINERS):
                    cut -= 1
            tokens, carry = split_line(tail[:cut], mode, lowercase), tail[cut:]
        else:
            tokens = tail.split()
            if not final and tokens and not tail[-1].isspace():
                carry = tokens.pop()  # may continue in the next chunk
        if final:
            stats.lines += bool(tokens)
            stats.tokens += len(tokens)
            if tokens:
                yield tokens, True
            break
        if tokens:
            stats.tokens += len(tokens)
            yield tokens, False
    stats.invalid_utf8 += invalid[0]
    if invalid[0] and not stats.invalid_file:
        stats.invalid_file = str(path)


# Byte ranges: how the Ray backend shares a corpus out without reading it in one place. Every node
# reads its own ranges of the same files (a shared filesystem).

_ASCII_SPACE = b" \t\n\r\x0b\x0c"


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of one file; end -1 is the whole file (a .gz file is never cut)."""
    path: str
    start: int
    end: int


def split_ranges(paths, parts: int, chunk_bytes: int = 1 << 20) -> list[list[ByteRange]]:
    """Cut the corpus files, taken one after another, into ``parts`` contiguous shares of about
    equal size. A cut moves forward to just past the next newline, so lines stay whole; in a line
    longer than ``chunk_bytes`` (text8 has a single one) it moves to just past the next ASCII
    whitespace instead, so no token is ever cut (the line then ends a sentence there). A .gz file is
    never cut: a cut inside one moves to its end. Shares may be empty when the corpus is small."""
    files = corpus_files(paths)
    sizes = [f.stat().st_size for f in files]
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    total = offsets[-1]
    cuts = [0]
    for k in range(1, parts):
        target = max(cuts[-1], total * k // parts)
        i = next((j for j in range(len(files)) if offsets[j] <= target < offsets[j + 1]), None)
        if i is None:
            cut = total
        elif files[i].suffix == ".gz":
            cut = offsets[i + 1] if target > offsets[i] else offsets[i]
        else:
            cut = offsets[i] + _line_cut(files[i], target - offsets[i], chunk_bytes)
        cuts.append(max(cuts[-1], cut))
    cuts.append(total)
    shares = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        share = []
        for f, start, size in zip(files, offsets, sizes, strict=False):
            a, b = max(lo, start), min(hi, start + size)
            if a < b:
                whole = f.suffix == ".gz" or (a == start and b == start + size)
                share.append(ByteRange(str(f), 0, -1) if whole else ByteRange(str(f), a - start, b - start))
        shares.append(share)
    return shares


def _line_cut(path: Path, pos: int, chunk_bytes: int) -> int:
    """The first offset at or after ``pos`` that starts a line (or follows a whitespace byte, if no
    newline comes within ``chunk_bytes``); the file's size if none does."""
    if pos == 0:
        return 0
    try:
        with open(path, "rb") as fh:
            fh.seek(pos - 1)
            head = fh.read(chunk_bytes + 1)
            newline = head.find(b"\n")
            if newline >= 0:
                return pos + newline
            block, at = head, pos - 1
            while block:
                hit = next((j for j, byte in enumerate(block) if byte in _ASCII_SPACE), -1)
                if hit >= 0:
                    return at + hit + 1
                at += len(block)
                block = fh.read(chunk_bytes)
            return at
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None


class _Window:
    """The first ``size`` bytes a binary file object reads from where it stands."""

    def __init__(self, fh, size: int):
        self.fh, self.left = fh, size

    def read(self, n: int) -> bytes:
        data = self.fh.read(min(n, self.left)) if self.left > 0 else b""
        self.left -= len(data)
        return data

    def readinto(self, view) -> int:
        if self.left <= 0:
            return 0
        k = self.fh.readinto(view[:min(len(view), self.left)])
        self.left -= k
        return k


@contextmanager
def open_range(r: ByteRange):
    """(a reader of the range's bytes, whether the range reaches the file's end); ``end < 0`` is
    the whole file."""
    path = Path(r.path)
    with _open_binary(path) as fh:
        if r.end < 0:
            yield fh, True
            return
        try:
            fh.seek(r.start)
        except OSError as e:
            raise CorpusError(f"cannot read {path}: {e.strerror or e}") from None
        yield _Window(fh, r.end - r.start), r.end >= path.stat().st_size


def iter_range_segments(ranges, lowercase: bool = False, chunk_bytes: int = 1 << 20,
                        stats: ReadStats | None = None, mode: str = "whitespace") -> Iterator[tuple[list[str], bool]]:
    """``iter_segments`` over byte ranges: the segments of consecutive ranges of a file, joined,
    are the segments of the file (the last segment of a range always ends a sentence)."""
    stats = stats if stats is not None else ReadStats()
    for r in ranges:
        path = Path(r.path)
        stats.files += r.start == 0
        with open_range(r) as (reader, file_end):
            segments = _file_segments(reader, path, lowercase, chunk_bytes, stats, mode)
            if file_end:  # the file's last range: as iter_segments
                segments = _closed(segments, stats)
            yield from segments
