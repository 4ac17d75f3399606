"""The Numba tokenizer: corpus bytes in, word ids out, on several threads without the GIL.

One pass reads the corpus files (plain or .gz) in ``chunk_bytes`` reads and turns them into an
int32 stream of word ids (``-1`` after each line, and after a file's last line when it has tokens
but no newline) plus the count of every distinct word. No Python object is made per token: the
kernel decodes UTF-8 (an invalid sequence is one U+FFFD, as Python's decoder makes it), splits,
lowercases ASCII letters, and looks each token's bytes up in a hash table of its own thread. Ids are
in order of first appearance. The corpus is cut into byte ranges (``corpus.split_ranges``), one
share per thread; a share's words are merged into one table afterwards, in corpus order, so the ids
and counts are those of one pass over the whole corpus whatever the number of threads.

Words become Python strings once each, not once per token: a vocabulary decodes only the words it
keeps. With ``lowercase``, the kernel lowercases ASCII letters; when a token holds a non-ASCII
character, every distinct token is decoded once and the non-ASCII ones are lowercased by Python
(``str.lower``: Unicode rules, ``İ`` and final sigma included), and tokens that then coincide are
merged (their first appearance is the first of them).

The id stream is held in memory (4 bytes a token, in blocks of one read each) until the caller
takes it (``Tokens.iter_ids``), or, with ``spill_dir``, each share writes its ids to a file of its
own there as it goes, read back block by block once the vocabulary is known: preparing a corpus
then holds the word table and a few blocks, never the stream (the corpus is read once; its ids are
written twice, as first seen and then in the vocabulary's ids).

With a cap on the table (``count_pruned``, for ``max_vocab_size``) the corpus is read twice, as
word2vec.c reads it: a first pass on one thread counts, and whenever a new word takes the table
past the cap, the words counted ``min_reduce`` times or fewer go and ``min_reduce`` rises by one
(word2vec.c's ReduceVocab); it keeps no ids. The second pass (``encode_counted``, on every thread)
looks each token up in that table, frozen, and writes its entry id, or nothing for a word the
table lacks: memory is the capped table and a few blocks, whatever the corpus holds. With
``lowercase``, an uppercase non-ASCII spelling is counted on its own until the table is final
(then merged as above), so pruning may drop it where the Python reference, lowercasing first,
would keep the merged word.

Two modes (config ``tokenize``):

- ``whitespace``: a token is a maximal run of characters that are not whitespace in the sense of
  ``str.split()`` (ASCII blanks, U+001C-U+001F, U+0085, U+00A0, U+2000-U+200A, U+3000, ...).
  Today's behaviour; the Python path in ``corpus.iter_segments`` is its reference.
- ``words``: a token is a maximal run of word characters -- letters, combining marks and numbers
  (Unicode categories L*, M*, N*) and ``_`` -- where an apostrophe (' or U+2019) or a hyphen (- or
  U+2010/U+2011) between two word characters stays inside the word (``don't``, ``well-known``).
  Everything else (punctuation, symbols, whitespace, U+FFFD) separates. ``corpus.words_reference`` is
  its reference.

The kernels, the hash table of words and the code point classes are in w2v.scan; this module
reads the files, cuts the corpus into shares, runs them on threads and merges their tables.
"""

from __future__ import annotations

import codecs
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .corpus import (
    ByteRange,
    CorpusError,
    ReadStats,
    _open_binary,
    _refuse_binary,
    corpus_files,
    open_range,
    refuse_binary_later,
    split_ranges,
)
from .scan import (
    _BLOCK,
    _CAP,
    _DONE,
    _FROZEN,
    _GROW_TABLE,
    _INVALID,
    _LINES,
    _NEED_BLOCK,
    _NENT,
    _NEWLINE,
    _NOUT,
    _OPEN,
    _POS,
    _PRUNE,
    _STATE,
    _TOKENS,
    SENTENCE_END,
    _classes,
    _fill_block,
    _merge,
    _prune,
    _rehash,
    _scan,
    remap,
)

MODES = ("whitespace", "words")


# --- one share on one thread --------------------------------------------------------------------

class _Table:
    def __init__(self, capacity: int = 1 << 14, pool_bytes: int = 1 << 16):
        self.slots = np.zeros(2 * capacity, dtype=np.uint64)  # see _find
        self.hashes = np.zeros(capacity // 2 + 1, dtype=np.uint64)
        self.offsets = np.zeros(capacity // 2 + 2, dtype=np.int64)
        self.counts = np.zeros(capacity // 2 + 1, dtype=np.int64)
        self.pool = np.zeros(pool_bytes, dtype=np.uint8)

    def grow(self, n_ent: int) -> None:
        capacity = len(self.slots)  # twice the slots: two words each
        self.slots = np.zeros(2 * capacity, dtype=np.uint64)
        for name in ("hashes", "offsets", "counts"):
            old = getattr(self, name)
            new = np.zeros(capacity // 2 + 1 + (name == "offsets"), dtype=old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)
        _rehash(self.slots, self.hashes, self.offsets, self.pool, n_ent)

    def grow_pool(self) -> None:
        new = np.zeros(2 * len(self.pool), dtype=np.uint8)
        new[:len(self.pool)] = self.pool
        self.pool = new


@dataclass
class _RangeResult:
    blocks: list = field(default_factory=list)  # int32 arrays of local entry ids (none when spilled)
    n_ids: int = 0  # ids the kernel wrote for the range (in ``blocks`` or in the share's spill file)
    newline: bool = False  # the range holds a newline
    open: bool = False  # tokens since its last newline (or its start)
    file_end: bool = False  # the range ends its file
    end_mark: bool = False  # a SENTENCE_END follows the range (its file's last line has no newline)


@dataclass
class _Share:
    table: _Table
    n_ent: int = 0
    min_reduce: int = 1  # the next prune drops entries counted this many times or fewer
    pruned_below: int = 0  # a prune dropped words counted fewer times than this
    ranges: list = field(default_factory=list)
    stats: ReadStats = field(default_factory=ReadStats)
    spill: Path | None = None  # the file the share's ids went to, if not to memory
    to_global: np.ndarray | None = None  # local entry id -> the corpus's word id (None: the same)


def _readinto(fh, view, path) -> int:
    got = 0
    try:
        while got < len(view):
            k = fh.readinto(view[got:])
            if not k:
                break
            got += k
    except (OSError, EOFError, zlib.error) as e:
        raise CorpusError(f"cannot read {path}: {e}") from None
    return got


def _head_invalid(head: bytes) -> int:
    """Invalid UTF-8 sequences in a file's first read, as corpus.py's incremental decoder counts
    them there (a sequence cut at the end of the read is not counted)."""
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=False)
    return text.count("\ufffd") - head.count(b"\xef\xbf\xbd")


def _scan_share(ranges, words: bool, lowercase: bool, chunk_bytes: int, check_every_range: bool,
                spill: Path | None = None, cap: int = 0, counted: _Share | None = None) -> _Share:
    """One share scanned: into a table of its own (pruned past ``cap`` entries, its ids then not
    kept), or with ``counted``, looked up in that share's table, frozen."""
    if counted is None:
        share = _Share(_Table(), spill=spill)
    else:
        frozen = _Table.__new__(_Table)  # the counted arrays, shared; the pool copied: its tail is scratch
        t = counted.table
        frozen.slots, frozen.hashes, frozen.offsets, frozen.counts = t.slots, t.hashes, t.offsets, t.counts
        frozen.pool = t.pool.copy()
        share = _Share(frozen, n_ent=counted.n_ent, spill=spill, to_global=counted.to_global)
    sink = open(spill, "wb") if spill is not None else None
    try:
        _scan_ranges(share, ranges, words, lowercase, chunk_bytes, check_every_range, sink, cap, counted is not None)
    except BaseException:
        if sink is not None:
            sink.close()
            spill.unlink(missing_ok=True)
        raise
    if sink is not None:
        sink.close()
    return share


def _scan_ranges(share: _Share, ranges, words, lowercase, chunk_bytes, check_every_range, sink, cap: int = 0,
                 frozen: bool = False) -> None:
    table = share.table
    fold = np.arange(128, dtype=np.uint8)
    if lowercase:
        fold[65:91] += 32
    st = np.zeros(_STATE, dtype=np.int64)
    st[_CAP], st[_FROZEN] = cap, frozen
    for r in ranges:
        path = Path(r.path)
        share.stats.files += r.start == 0
        result = _RangeResult()
        check = r.start == 0 or check_every_range
        with open_range(r) as (reader, result.file_end):
            if check and r.end >= 0 and r.start == 0 and r.end < chunk_bytes and not check_every_range:
                # the file's first read, as iter_segments makes it, goes past this range
                with _open_binary(path) as head_fh:
                    head = head_fh.read(chunk_bytes)
                if head:
                    _refuse_binary(path, head, _head_invalid(head))
                check = False
            buf = np.empty(2 * chunk_bytes, dtype=np.uint8)
            out = np.empty(2 * chunk_bytes + 1, dtype=np.int32)
            have = 0
            read_before = 0
            invalid_before = int(st[_INVALID])
            st[_OPEN] = 0
            st[_NEWLINE] = 0
            first = True
            while True:
                want = max(chunk_bytes, have)  # a token longer than a read: reads grow with it
                if len(buf) < have + want:
                    bigger = np.empty(2 * (have + want), dtype=np.uint8)
                    bigger[:have] = buf[:have]
                    buf = bigger
                    out = np.empty(len(buf) + 1, dtype=np.int32)
                got = _readinto(reader, memoryview(buf)[have:have + want], path)
                share.stats.bytes += got
                if first and check and got:
                    head = bytes(buf[:got])
                    _refuse_binary(path, head, _head_invalid(head))
                elif got:  # binary data after the text: NUL bytes in a later chunk
                    refuse_binary_later(path, got - int(np.count_nonzero(buf[have:have + got])), got,
                                        read_before + r.start)
                read_before += got
                first = False
                final = got == 0
                n = have + got
                st[_POS] = 0
                st[_NOUT] = 0
                st[_NENT] = share.n_ent
                while True:
                    status = _scan(buf, n, final, words, lowercase, _classes, fold, st, out, table.slots,
                                   table.hashes, table.offsets, table.counts, table.pool)
                    share.n_ent = int(st[_NENT])
                    if status == _DONE:
                        break
                    if status == _NEED_BLOCK:
                        _fill_block(int(st[_BLOCK]))
                    elif status == _GROW_TABLE:
                        table.grow(share.n_ent)
                    elif status == _PRUNE:
                        share.n_ent = _prune(table.slots, table.hashes, table.offsets, table.counts, table.pool,
                                             share.n_ent, share.min_reduce)
                        share.pruned_below = share.min_reduce + 1
                        share.min_reduce += 1
                        st[_NENT] = share.n_ent
                    else:
                        table.grow_pool()
                if cap:  # a count that prunes: its ids name entries since dropped or renumbered
                    st[_NOUT] = 0
                if st[_NOUT]:
                    k = int(st[_NOUT])
                    result.n_ids += k
                    if sink is not None:
                        sink.write(out[:k])
                    else:
                        result.blocks.append(out[:k].copy())
                pos = int(st[_POS])
                have = n - pos
                if have:
                    buf[:have] = buf[pos:n]
                if final:
                    break
            result.newline = bool(st[_NEWLINE])
            result.open = bool(st[_OPEN])
            if st[_INVALID] > invalid_before and not share.stats.invalid_file:
                share.stats.invalid_file = str(path)
        share.ranges.append(result)
    share.stats.tokens = int(st[_TOKENS])
    share.stats.lines = int(st[_LINES])
    share.stats.invalid_utf8 = int(st[_INVALID])


# --- the whole corpus ---------------------------------------------------------------------------

@dataclass
class Tokens:
    """A corpus tokenised: ``counts[i]`` of word i (ids in order of first appearance), what was
    read, and the id stream (-1 after each sentence), taken once with ``iter_ids``."""

    counts: np.ndarray
    stats: ReadStats
    _pool: np.ndarray | None = None
    _offsets: np.ndarray | None = None
    _words: list | None = None
    _shares: list = field(default_factory=list)
    pruned_below: int = 0  # count_pruned: words counted fewer times than this may have been dropped
    _counted: _Share | None = None  # count_pruned: its table, for encode_counted

    def __len__(self) -> int:
        return len(self.counts)

    def words(self, ids=None) -> list[str]:
        """The words with these ids (all of them by default), decoded only now."""
        if ids is None:
            ids = range(len(self.counts))
        if self._words is not None:
            return [self._words[i] for i in ids]
        pool, offsets = self._pool.tobytes(), self._offsets.tolist()
        return [pool[offsets[i]:offsets[i + 1]].decode("utf-8") for i in ids]

    def word_bytes(self) -> np.ndarray:
        """Each word's length in bytes of UTF-8 (int64), without decoding the words."""
        if self._words is not None:
            return np.array([len(w.encode("utf-8")) for w in self._words], dtype=np.int64)
        return np.diff(self._offsets).astype(np.int64)

    def n_ids(self) -> int:
        """Ids in the stream (before ``iter_ids`` drops any)."""
        return sum(r.n_ids + r.end_mark for s in self._shares for r in s.ranges)

    def iter_ids(self, mapping: np.ndarray | None = None, block_ids: int = 1 << 20):
        """The id stream in corpus order, in int32 blocks: word ids, or with ``mapping`` (int32,
        one entry per word) ``mapping[id]``, the ids mapped to -2 dropped. Once only: each block
        held in memory is let go as it is yielded, a spilled share is read back from its file in
        blocks of ``block_ids`` and the file removed."""
        if mapping is not None and len(mapping) != len(self.counts):
            raise ValueError(f"mapping has {len(mapping)} entries for {len(self.counts)} words")
        shares, self._shares = self._shares, []
        try:
            while shares:
                yield from _share_ids(shares[0], mapping, block_ids)
                shares.pop(0)
        finally:
            for s in shares:
                if s.spill is not None:
                    s.spill.unlink(missing_ok=True)

    def stream(self) -> np.ndarray:
        blocks = list(self.iter_ids())
        return np.concatenate(blocks) if blocks else np.zeros(0, np.int32)


def _share_ids(share: _Share, mapping, block_ids: int):
    m = share.to_global
    if mapping is not None:
        m = mapping if m is None else mapping[m]
    fh = open(share.spill, "rb") if share.spill is not None else None
    try:
        for r in share.ranges:
            if fh is None:
                blocks, r.blocks = r.blocks, []
                blocks.reverse()
                while blocks:
                    b = blocks.pop()
                    yield b if m is None else b[:remap(b, m)]
            else:
                left = r.n_ids
                while left:
                    b = np.fromfile(fh, dtype=np.int32, count=min(left, block_ids))
                    # the kernel indexes ``m`` unchecked: a short or altered file stops here
                    if not len(b) or (m is not None and int(b.max()) >= len(m)):
                        raise CorpusError(f"the tokenizer's file {share.spill} changed while it was read back")
                    left -= len(b)
                    yield b if m is None else b[:remap(b, m)]
            if r.end_mark:
                yield np.array([SENTENCE_END], dtype=np.int32)
    finally:
        if fh is not None:
            fh.close()
            share.spill.unlink(missing_ok=True)


def tokenize(paths, lowercase: bool = False, mode: str = "whitespace", chunk_bytes: int = 1 << 20,
             threads: int = 1, ranges=None, spill_dir: Path | None = None) -> Tokens:
    """Tokenise the corpus at ``paths`` (files, .gz files, directories), cut into ``threads``
    shares read in parallel; or, with ``ranges`` (ByteRanges, a Ray share), those ranges alone,
    each as ``corpus.iter_range_segments`` reads it (its own binary check; its own last line).
    With ``spill_dir`` (an existing directory) each share's ids go to a file there
    (``tokens-K.int32``, removed once read back by ``Tokens.iter_ids``), not to memory."""
    words = _words_mode(mode)
    shares, files = _share_ranges(paths, threads, chunk_bytes, ranges)
    done = _scan_shares(shares, words, lowercase, chunk_bytes, ranges is not None, spill_dir)
    tokens = _combine(done, lowercase, ranges is not None)
    if files is not None:
        tokens.stats.files = len(files)  # empty files are in no share
    return tokens


def count_pruned(paths, cap: int, lowercase: bool = False, mode: str = "whitespace", chunk_bytes: int = 1 << 20,
                 ranges=None) -> Tokens:
    """The counts of the corpus (or of ``ranges``) on one thread, the table pruned whenever a new
    word takes it past ``cap`` entries (see the module docstring), ids not kept: the Tokens that
    ``encode_counted`` then encodes the corpus with. ``pruned_below``: the words counted fewer
    times than this may have been dropped (0: none was)."""
    words = _words_mode(mode)
    shares, files = _share_ranges(paths, 1, chunk_bytes, ranges)
    share = _scan_share(shares[0] if shares else [], words, lowercase, chunk_bytes, ranges is not None, cap=cap)
    table = share.table
    tokens = _combine([share], lowercase, ranges is not None)
    share.table, share.ranges = table, []  # the table kept, frozen, for encode_counted
    tokens._shares, tokens._counted, tokens.pruned_below = [], share, share.pruned_below
    if files is not None:
        tokens.stats.files = len(files)
    return tokens


def encode_counted(counted: Tokens, paths, lowercase: bool = False, mode: str = "whitespace",
                   chunk_bytes: int = 1 << 20, threads: int = 1, ranges=None, spill_dir: Path | None = None) -> Tokens:
    """The corpus read again (on ``threads`` threads) and each token looked up in ``counted``'s
    table, which stays as it is: Tokens with ``counted``'s words and counts and the id stream of
    the words it holds (a word it lacks is left out; its line still ends with -1). The same
    corpus and options as ``count_pruned`` had."""
    if counted._counted is None:
        raise ValueError("encode_counted needs the Tokens of count_pruned")
    words = _words_mode(mode)
    shares, _ = _share_ranges(paths, threads, chunk_bytes, ranges)
    done = _scan_shares(shares, words, lowercase, chunk_bytes, ranges is not None, spill_dir, counted._counted)
    stats = ReadStats()
    for sh in done:
        stats.add(sh.stats)
        sh.table = None
    _mark_ends(done, stats, ranges is not None)
    return Tokens(counted.counts, counted.stats, counted._pool, counted._offsets, counted._words, done)


def _words_mode(mode: str) -> bool:
    if mode not in MODES:
        raise ValueError(f"tokenize must be one of {', '.join(MODES)}, got {mode!r}")
    return mode == "words"


def _share_ranges(paths, threads: int, chunk_bytes: int, ranges) -> tuple[list, list | None]:
    """The shares (lists of ByteRanges) to scan, one a thread, and the corpus files (None for ``ranges``)."""
    if ranges is not None:
        return [list(ranges)], None
    files = corpus_files(paths)
    shares = split_ranges(files, max(1, threads), chunk_bytes) if threads > 1 else \
        [[ByteRange(str(f), 0, -1) for f in files]]
    return [sh for sh in shares if sh], files


def _scan_shares(shares, words: bool, lowercase: bool, chunk_bytes: int, per_range: bool, spill_dir,
                 counted: _Share | None = None) -> list[_Share]:
    spills = [None if spill_dir is None else Path(spill_dir) / f"tokens-{k}.int32" for k in range(len(shares))]
    if len(shares) <= 1:
        return [_scan_share(sh, words, lowercase, chunk_bytes, per_range, f, counted=counted)
                for sh, f in zip(shares, spills, strict=True)]
    with ThreadPoolExecutor(len(shares), thread_name_prefix="w2v-tokenize") as pool:
        futures = [pool.submit(_scan_share, sh, words, lowercase, chunk_bytes, False, f, counted=counted)
                   for sh, f in zip(shares, spills, strict=True)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in spills:
                if f is not None:
                    f.unlink(missing_ok=True)
            raise


def _combine(shares: list[_Share], lowercase: bool, per_range: bool) -> Tokens:
    total = sum(s.n_ent for s in shares)
    pool_bytes = sum(int(s.table.offsets[s.n_ent]) for s in shares)
    stats = ReadStats()
    for s in shares:
        stats.add(s.stats)
    if len(shares) == 1:
        t = shares[0].table
        n = shares[0].n_ent
        counts, pool, offsets = t.counts[:n].copy(), t.pool[:int(t.offsets[n])], t.offsets[:n + 1]
        maps = [None]
    else:
        capacity = 1 << max(4, int(2 * total + 1).bit_length())
        gslots = np.zeros(2 * capacity, dtype=np.uint64)
        ghashes = np.zeros(total + 1, dtype=np.uint64)
        goffsets = np.zeros(total + 2, dtype=np.int64)
        gcounts = np.zeros(total + 1, dtype=np.int64)
        gpool = np.zeros(max(1, pool_bytes), dtype=np.uint8)
        gstate = np.zeros(1, dtype=np.int64)
        maps = []
        for s in shares:
            t = s.table
            local = np.zeros(max(1, s.n_ent), dtype=np.int32)
            _merge(t.pool, t.offsets, t.hashes, t.counts, s.n_ent, gslots, ghashes, goffsets, gcounts, gpool, gstate,
                   local)
            maps.append(local)
        n = int(gstate[0])
        counts, pool, offsets = gcounts[:n], gpool[:int(goffsets[n])], goffsets[:n + 1]
    words = None
    if lowercase and n and (pool >= 0x80).any():
        # non-ASCII words lowercased by Python (once per distinct word); words that coincide merge
        raw = Tokens(counts, stats, pool, offsets).words()
        index: dict[str, int] = {}
        to_word = np.empty(n, dtype=np.int32)
        for i, w in enumerate(raw):
            if not w.isascii():
                w = w.lower()
            to_word[i] = index.setdefault(w, len(index))
        merged = np.zeros(len(index), dtype=np.int64)
        np.add.at(merged, to_word, counts)
        counts, words = merged, list(index)
        maps = [to_word if m is None else to_word[m] for m in maps]
    for s, mapping in zip(shares, maps, strict=True):
        s.table, s.to_global = None, mapping
    _mark_ends(shares, stats, per_range)
    return Tokens(counts, stats, pool, offsets, words, shares)


def _mark_ends(shares: list[_Share], stats: ReadStats, per_range: bool) -> None:
    """A sentence end after each file whose last line has tokens but no newline (counted as a line)."""
    line_open = False
    for s in shares:
        for r in s.ranges:
            if per_range:
                line_open = r.open
            else:
                line_open = r.open if r.newline else (line_open or r.open)
            if r.file_end:
                r.end_mark = line_open
                stats.lines += line_open
                line_open = False
