"""Phrases: join frequent adjacent word pairs into one token (``new york`` -> ``new_york``), as
word2vec's ``word2phrase`` does, so that training gives each phrase a vector of its own.

A pass counts every word and every adjacent pair within a line, then writes the corpus again with
a pair joined by the delimiter when its score exceeds the threshold::

    score(a, b) = (count(a b) - min_count) / count(a) / count(b) * total_words

(0 when a, b or the pair is seen fewer than ``min_count`` times; ``total_words`` is every token
of the pass's input). Pairs are taken left to right, and a word just joined to its left neighbour
does not join its right one (``a b c`` with both pairs above the threshold gives ``a_b c``). A line
end is a boundary: no pair spans it. ``passes=2`` runs the same over the first pass's output, with
the same threshold, so ``new_york times`` can become ``new_york_times``.

The corpus is read once (the Numba tokenizer, w2v.tokenize) and encoded to int32 ids in a temporary file beside
the output; counting and joining are Numba loops over those ids. Pairs are int64 keys
``a << 32 | b`` in an open-addressing hash table that grows up to room for ``max_pairs`` pairs;
past that, rare pairs are pruned while counting as word2vec.c's ``ReduceVocab`` does (drop the
pairs seen at most ``min_reduce`` times, then raise ``min_reduce`` by one), so memory stays bounded
whatever the corpus; counts of pairs that survive a prune may then be a little low. Words are not
pruned (a Python dict of the distinct words).

Where this differs from word2phrase.c (tmikolov/word2vec):

- word2phrase counts the pair made of a line's last word and the next line's first word (its
  ``start`` flag is reset before it is read) but never joins such a pair; here lines are
  boundaries for counting too, so a pair's count is the number of times it can be joined.
- word2phrase truncates words to 59 bytes and pairs to 59 bytes of ``a_b`` (different long
  pairs can then share one count); here words are whole.
- word2phrase splits on space, tab and newline only (and drops carriage returns); here tokens are
  ``w2v train``'s (``str.split()``'s, or with ``tokenize="words"`` words without punctuation).
  Output lines are the tokens joined by single spaces (the C tool starts every line with a space);
  every line ends with a newline.
- word2phrase computes the score in single precision; here in double (on big.txt the two join the
  same pairs).
- word2phrase's table holds 350M words and pairs together before it prunes (so never, in
  practice), and needs 2 GB for its hash index alone; here the pair table is bounded by
  ``max_pairs`` and words are never pruned.
- word2vec's demo-phrases.sh runs a second pass with a lower threshold (200, then 100); here every
  pass uses the same threshold. For the demo's schedule, run ``detect`` twice.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from .corpus import CorpusError, ReadStats, corpus_files
from .errors import ResourceError
from .io import OutputError, atomic_open
from .kernel_cache import claim
from .tokenize import MODES, tokenize

claim()  # the kernel directory made, held in use and the other versions' pruned

DEFAULT_MAX_PAIRS = 10_000_000
MAX_LOAD = 0.7  # a table is grown (or, at its largest, pruned) when fuller than this
_EMPTY = -1  # an unused slot's key (real keys are >= 0)
_LINE_END = -1  # in the id stream, after each line
_BLOCK = 1 << 20  # ids counted, joined or written per kernel call
_TEXT_BUFFER = 1 << 22  # bytes of output text per write (more if a word is longer)
_MIN_CAPACITY = 1 << 16
_SLOT_BYTES = 12  # an int64 key and a uint32 count
_MAX_COUNT = np.uint32(0xFFFFFFFF)  # a pair's count stops at 4.3 billion rather than wrap
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)


@dataclass
class PassStats:
    """What one pass counted and joined."""

    threshold: float
    tokens: int  # tokens the pass read (its total_words)
    words: int  # distinct words among them
    pairs: int  # distinct adjacent pairs in the table at the end of counting
    pruned_below: int  # 0, or: pairs seen fewer times than this were dropped while counting
    candidates: int  # distinct pairs scoring above the threshold
    phrases: int  # distinct pairs joined at least once
    joined: int  # joins made (the output has this many fewer tokens)
    top: list[tuple[str, int]] = field(default_factory=list)  # most often joined, up to 10
    seconds: float = 0.0


def table_capacity(max_pairs: int) -> int:
    """Slots of the largest pair table: the smallest power of two that holds ``max_pairs`` pairs
    at MAX_LOAD."""
    capacity = _MIN_CAPACITY
    while int(MAX_LOAD * capacity) < max_pairs:
        capacity *= 2
    return capacity


def memory_bound(max_pairs: int) -> int:
    """Bytes the pair table can take at most: its largest size plus the half-size one it grows
    from (both are held while it is copied; pruning works in place)."""
    return table_capacity(max_pairs) * _SLOT_BYTES * 3 // 2


# --- NumPy / Python references of the kernels (tests compare the kernels with these) ---------

def count_pairs_reference(ids, max_pairs: int = 0) -> dict[tuple[int, int], int]:
    """Adjacent pairs within lines of an id stream (_LINE_END separates lines) and their counts;
    with ``max_pairs``, pruned as word2vec.c's ReduceVocab whenever there are more."""
    counts: dict[tuple[int, int], int] = {}
    min_reduce, prev = 1, -1
    for b in np.asarray(ids).tolist():
        if b < 0:
            prev = -1
            continue
        if prev >= 0:
            counts[prev, b] = counts.get((prev, b), 0) + 1
            while max_pairs and len(counts) > max_pairs:
                counts = {pair: c for pair, c in counts.items() if c > min_reduce}
                min_reduce += 1
        prev = b
    return counts


def score_reference(pair_count, count_a, count_b, total_words, min_count) -> float:
    """word2phrase's score of one pair."""
    if min(pair_count, count_a, count_b) < min_count:
        return 0.0
    return (pair_count - min_count) / count_a / count_b * total_words


def join_reference(lines: list[list[str]], joinable, delimiter: str = "_") -> list[list[str]]:
    """Join left to right: a pair in ``joinable`` becomes one token unless its left word was just
    joined to its own left neighbour."""
    out = []
    for line in lines:
        tokens, prev_joined = [], False
        for i, word in enumerate(line):
            if i and not prev_joined and (line[i - 1], word) in joinable:
                tokens[-1] += delimiter + word
                prev_joined = True
            else:
                tokens.append(word)
                prev_joined = False
        out.append(tokens)
    return out


def phrases_reference(lines: list[list[str]], min_count: int = 5, threshold: float = 100.0,
                      delimiter: str = "_", passes: int = 1) -> list[list[str]]:
    """The whole method on a list of tokenized lines, in plain Python (no pruning)."""
    for _ in range(passes):
        words: dict[str, int] = {}
        pairs: dict[tuple[str, str], int] = {}
        for line in lines:
            for w in line:
                words[w] = words.get(w, 0) + 1
            for pair in zip(line, line[1:], strict=False):
                pairs[pair] = pairs.get(pair, 0) + 1
        total = sum(words.values())
        joinable = {p for p, c in pairs.items()
                    if score_reference(c, words[p[0]], words[p[1]], total, min_count) > threshold}
        lines = join_reference(lines, joinable, delimiter)
    return lines


# --- Numba kernels ----------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _shift(capacity):
    bits = 0
    while (1 << bits) < capacity:
        bits += 1
    return np.uint64(64 - bits)


@njit(cache=True, nogil=True, inline="always")
def _slot(key, shift):
    # Multiply-xorshift-multiply mixes both words of the key into the top bits, which pick the slot.
    h = np.uint64(key) * _MIX1
    h ^= h >> np.uint64(29)
    h *= _MIX2
    return np.int64(h >> shift)


@njit(cache=True, nogil=True, inline="always")
def _find(keys, key, shift, mask):
    slot = _slot(key, shift)
    while True:
        k = keys[slot]
        if k == key:
            return slot
        if k == _EMPTY:
            return -1
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def _count_pairs(ids, start, keys, counts, size, limit, prev):
    """Count the adjacent pairs of ``ids[start:]`` into the table; ``prev`` is the last id before
    ``start`` (-1 at a line start). Stops just after the insertion that takes the table past
    ``limit`` pairs, so the caller can grow or prune it. Returns (next position, size, prev)."""
    shift = _shift(len(keys))
    mask = len(keys) - 1
    for i in range(start, len(ids)):
        b = np.int64(ids[i])
        if b < 0:
            prev = -1
            continue
        if prev >= 0:
            key = (prev << 32) | b
            slot = _slot(key, shift)
            while True:
                k = keys[slot]
                if k == key:
                    if counts[slot] < _MAX_COUNT:
                        counts[slot] += 1
                    break
                if k == _EMPTY:
                    keys[slot] = key
                    counts[slot] = 1
                    size += 1
                    break
                slot = (slot + 1) & mask
            if size > limit:
                return i + 1, size, b
        prev = b
    return len(ids), size, prev


@njit(cache=True, nogil=True)
def _insert_all(src_keys, src_counts, keys, counts):
    """Insert the used entries of one table into another (empty, and large enough)."""
    shift = _shift(len(keys))
    mask = len(keys) - 1
    for i in range(len(src_keys)):
        key = src_keys[i]
        if key == _EMPTY:
            continue
        slot = _slot(key, shift)
        while keys[slot] != _EMPTY:
            slot = (slot + 1) & mask
        keys[slot] = key
        counts[slot] = src_counts[i]


@njit(cache=True, nogil=True)
def _prune_table(keys, counts, min_reduce):
    """Delete the pairs seen at most ``min_reduce`` times, in place: each deletion pulls the rest of
    its cluster back into the hole (backward-shift deletion), so every key left stays reachable
    from its home slot and no second table is needed. Returns how many were deleted."""
    shift = _shift(len(keys))
    mask = len(keys) - 1
    removed = 0
    i = 0
    while i < len(keys):
        if keys[i] == _EMPTY or counts[i] > min_reduce:
            i += 1
            continue
        hole = i
        j = (i + 1) & mask
        while keys[j] != _EMPTY:
            # the entry at j may fill the hole if the hole lies between its home slot and j
            if (j - _slot(keys[j], shift)) & mask >= (j - hole) & mask:
                keys[hole] = keys[j]
                counts[hole] = counts[j]
                hole = j
            j = (j + 1) & mask
        keys[hole] = _EMPTY
        counts[hole] = 0
        removed += 1  # slot i now holds an entry pulled back (or nothing): look at it again
    return removed


@njit(cache=True, nogil=True)
def _join_ids(ids, jkeys, jvals, phrase_ids, joins, out, state):
    """One pass's joins over a block of the id stream, written as the next pass's id stream.
    state = [prev id (-1 at a line start), prev was joined, pending id not yet written (-1: none)]:
    a joined pair replaces the pending id, which may be the last of the previous block. ``out``
    holds len(ids) + 1 ids. Returns how many were written."""
    shift = _shift(len(jkeys))
    mask = len(jkeys) - 1
    prev, prev_joined, pending = state[0], state[1], state[2]
    n = 0
    for i in range(len(ids)):
        b = np.int64(ids[i])
        if b < 0:
            if pending >= 0:
                out[n] = pending
                n += 1
            out[n] = _LINE_END
            n += 1
            prev, prev_joined, pending = -1, 0, -1
            continue
        joined = 0
        if prev >= 0 and prev_joined == 0:
            slot = _find(jkeys, (prev << 32) | b, shift, mask)
            if slot >= 0:
                joined = 1
                entry = jvals[slot]
                joins[entry] += 1
                pending = phrase_ids[entry]
        if joined == 0:
            if pending >= 0:
                out[n] = pending
                n += 1
            pending = b
        prev, prev_joined = b, joined
    state[0], state[1], state[2] = prev, prev_joined, pending
    return n


@njit(cache=True, nogil=True)
def _join_text(ids, start, jkeys, jvals, joins, blob, offsets, delimiter, out, state):
    """The last pass's joins over ``ids[start:]``, written as UTF-8 text into ``out``: words
    separated by a space or, when joined, by the delimiter; a newline for each line end.
    state = [prev id (-1 at a line start), prev was joined]. Stops when ``out`` has no room for
    the next word. Returns (next position, bytes written)."""
    shift = _shift(len(jkeys))
    mask = len(jkeys) - 1
    prev, prev_joined = state[0], state[1]
    n = 0
    room = len(out)
    for i in range(start, len(ids)):
        b = np.int64(ids[i])
        if b < 0:
            if n + 1 > room:
                state[0], state[1] = prev, prev_joined
                return i, n
            out[n] = 10
            n += 1
            prev, prev_joined = -1, 0
            continue
        lo, hi = offsets[b], offsets[b + 1]
        if n + len(delimiter) + (hi - lo) > room:
            state[0], state[1] = prev, prev_joined
            return i, n
        joined = 0
        if prev >= 0:
            if prev_joined == 0:
                slot = _find(jkeys, (prev << 32) | b, shift, mask)
                if slot >= 0:
                    joined = 1
                    joins[jvals[slot]] += 1
            if joined:
                for j in range(len(delimiter)):
                    out[n + j] = delimiter[j]
                n += len(delimiter)
            else:
                out[n] = 32
                n += 1
        for j in range(lo, hi):
            out[n] = blob[j]
            n += 1
        prev, prev_joined = b, joined
    state[0], state[1] = prev, prev_joined
    return len(ids), n


# --- The pair table -----------------------------------------------------------------------------

class PairTable:
    """Counts of adjacent id pairs: grows up to room for ``max_pairs``, then prunes rare pairs."""

    def __init__(self, max_pairs: int, log=lambda msg: None):
        self.max_pairs = max_pairs
        self.max_capacity = table_capacity(max_pairs)
        capacity = min(_MIN_CAPACITY, self.max_capacity)
        self.keys = np.full(capacity, _EMPTY, dtype=np.int64)
        self.counts = np.zeros(capacity, dtype=np.uint32)
        self.size = 0
        self.min_reduce = 1
        self.pruned_below = 0
        self.log = log

    def _limit(self) -> int:
        if len(self.keys) >= self.max_capacity:
            return self.max_pairs
        return int(MAX_LOAD * len(self.keys))

    def add(self, ids: np.ndarray, prev: int) -> int:
        """Count the pairs of one block of the id stream; returns the block's last id (for the
        next block's first pair)."""
        pos = 0
        while True:
            pos, self.size, prev = _count_pairs(ids, pos, self.keys, self.counts, self.size,
                                                self._limit(), prev)
            while self.size > self._limit():
                if len(self.keys) < self.max_capacity:
                    self._grow()
                else:
                    self._prune()
            if pos >= len(ids):
                return prev

    def _grow(self):
        keys = np.full(2 * len(self.keys), _EMPTY, dtype=np.int64)
        counts = np.zeros(2 * len(self.keys), dtype=np.uint32)
        _insert_all(self.keys, self.counts, keys, counts)
        self.keys, self.counts = keys, counts

    def _prune(self):
        """word2vec.c's ReduceVocab: drop the pairs seen at most min_reduce times, raise it."""
        removed = _prune_table(self.keys, self.counts, self.min_reduce)
        self.log(f"pair table full ({self.size:,} pairs): dropped the {removed:,} "
                 f"seen at most {self.min_reduce} time(s)")
        self.size -= removed
        self.pruned_below = self.min_reduce + 1
        self.min_reduce += 1

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """The used keys and their counts."""
        used = self.keys != _EMPTY
        return self.keys[used], self.counts[used]


@njit(cache=True, nogil=True)
def _score_pairs(keys, counts, word_counts, total_words, min_count, threshold, chosen):
    """Mark in ``chosen`` the table's pairs whose score exceeds the threshold."""
    for i in range(len(keys)):
        key = keys[i]
        if key == _EMPTY or counts[i] < min_count:
            continue
        count_a, count_b = word_counts[key >> 32], word_counts[key & 0xFFFFFFFF]
        if count_a < min_count or count_b < min_count:
            continue
        chosen[i] = (np.int64(counts[i]) - min_count) / count_a / count_b * total_words > threshold


def _joinable(table: PairTable, word_counts: np.ndarray, total_words: int, min_count: int,
              threshold: float) -> np.ndarray:
    """The keys of the pairs scoring above the threshold, sorted."""
    chosen = np.zeros(len(table.keys), dtype=np.bool_)
    _score_pairs(table.keys, table.counts, word_counts, float(total_words), min_count, threshold, chosen)
    return np.sort(table.keys[chosen])


def _lookup_table(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A small hash table of the joinable pairs: slot -> key, and slot -> index into ``keys``."""
    capacity = 16
    while MAX_LOAD * capacity < len(keys) + 1:
        capacity *= 2
    jkeys = np.full(capacity, _EMPTY, dtype=np.int64)
    jvals = np.zeros(capacity, dtype=np.int64)
    _insert_all(keys, np.arange(len(keys), dtype=np.int64), jkeys, jvals)
    return jkeys, jvals


# --- The pipeline -------------------------------------------------------------------------------

class _Index(dict):
    """word -> id, a new word getting the next id (so ``list(index)`` is the words by id)."""

    def __missing__(self, word):
        self[word] = id_ = len(self)
        return id_


def _validate(min_count, threshold, delimiter, passes, max_pairs, chunk_bytes, mode="whitespace"):
    from .config import ConfigError

    checks = [
        (isinstance(min_count, int) and min_count >= 1, f"min_count must be an integer >= 1, got {min_count!r}"),
        (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0,
         f"threshold must be a number >= 0, got {threshold!r}"),
        (isinstance(delimiter, str) and delimiter != "" and not any(c.isspace() for c in delimiter),
         f"delimiter must be a non-empty string without whitespace, got {delimiter!r}"),
        (isinstance(passes, int) and passes >= 1, f"passes must be an integer >= 1, got {passes!r}"),
        (isinstance(max_pairs, int) and max_pairs >= 1, f"max_pairs must be an integer >= 1, got {max_pairs!r}"),
        (isinstance(chunk_bytes, int) and chunk_bytes >= 64,
         f"chunk_bytes must be an integer >= 64, got {chunk_bytes!r}"),
        (mode in MODES, f"tokenize must be one of {', '.join(MODES)}, got {mode!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def detect(paths, output, min_count: int = 5, threshold: float = 100.0, delimiter: str = "_",
           passes: int = 1, lowercase: bool = False, max_pairs: int = DEFAULT_MAX_PAIRS,
           chunk_bytes: int = 1 << 20, log=lambda msg: None, tokenize: str = "whitespace") -> list[PassStats]:
    """Write ``output``: the corpus at ``paths`` (files, .gz files, directories) with each pair
    scoring above ``threshold`` joined by ``delimiter``, ``passes`` times over. Returns each
    pass's statistics. ``log`` receives progress lines (the memory bound first). ``tokenize``:
    how text splits into words, as in ``w2v train`` (whitespace or words)."""
    _validate(min_count, threshold, delimiter, passes, max_pairs, chunk_bytes, tokenize)
    files = corpus_files(paths)
    output = Path(output)
    if output.is_dir():
        raise OutputError(f"cannot write {output}: it is a directory")
    work_dir = output.parent
    try:
        with atomic_open(output, "wb") as out:
            _check_memory(max_pairs, log)
            return _run(files, out, work_dir, min_count, float(threshold), delimiter, passes, lowercase,
                        max_pairs, chunk_bytes, log, tokenize)
    except OSError as e:
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"cannot write {output} (or its temporary files in {work_dir}): "
                          f"{e.strerror or e}") from None


def _check_memory(max_pairs: int, log) -> None:
    bound = memory_bound(max_pairs)
    log(f"memory: the pair table takes at most {bound / 2**20:,.0f} MiB (room for {max_pairs:,} pairs; "
        "rarer pairs are pruned past that), the words about 150 bytes each")
    try:
        have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return
    if bound > have:
        raise ResourceError(f"the pair table may take {bound / 2**20:,.0f} MiB but this machine has "
                            f"{have / 2**20:,.0f} MiB: lower max_pairs ({max_pairs:,})")


def _run(files, out, work_dir, min_count, threshold, delimiter, passes, lowercase, max_pairs,
         chunk_bytes, log, mode="whitespace") -> list[PassStats]:
    index = _Index()
    ids_file = tempfile.TemporaryFile(dir=work_dir, prefix=".w2v-phrases-")
    try:
        started = time.perf_counter()
        table = PairTable(max_pairs, log)
        read = ReadStats()
        word_counts, tokens = _encode(files, lowercase, chunk_bytes, index, table, ids_file, read, mode, work_dir)
        if tokens == 0:
            raise CorpusError(f"the corpus is empty (no tokens in {read.files} file(s), {read.bytes} bytes)")
        if read.invalid_utf8:
            log(f"warning: replaced {read.invalid_utf8} invalid UTF-8 sequence(s) by U+FFFD")
        words = list(index)
        all_stats = []
        for p in range(1, passes + 1):
            keys = _joinable(table, word_counts, tokens, min_count, threshold)
            stats = PassStats(threshold, tokens, int(np.count_nonzero(word_counts)), table.size,
                              table.pruned_below, len(keys), 0, 0)
            del table
            jkeys, jvals = _lookup_table(keys)
            joins = np.zeros(len(keys), dtype=np.int64)
            ids_file.seek(0)
            if p == passes:
                _write_text(ids_file, jkeys, jvals, joins, words, delimiter, out)
            else:
                phrase_ids = np.array([index[words[k >> 32] + delimiter + words[k & 0xFFFFFFFF]]
                                       for k in keys.tolist()], dtype=np.int64)
                words = list(index)
                table = PairTable(max_pairs, log)
                read_from, ids_file = ids_file, tempfile.TemporaryFile(dir=work_dir, prefix=".w2v-phrases-")
                try:
                    word_counts, tokens = _rejoin(read_from, jkeys, jvals, phrase_ids, joins, len(words),
                                                  table, ids_file)
                finally:
                    read_from.close()
            stats.phrases = int(np.count_nonzero(joins))
            stats.joined = int(joins.sum())
            top = np.argsort(-joins, kind="stable")[:10]
            stats.top = [(words[k >> 32] + delimiter + words[k & 0xFFFFFFFF], int(joins[i]))
                         for i, k in zip(top.tolist(), keys[top].tolist(), strict=True) if joins[i]]
            stats.seconds = time.perf_counter() - started
            started = time.perf_counter()
            log(_summary(p, stats))
            all_stats.append(stats)
        return all_stats
    finally:
        ids_file.close()


def _summary(p: int, st: PassStats) -> str:
    pruned = f", pruned below {st.pruned_below}" if st.pruned_below else ""
    return (f"pass {p}: {st.tokens:,} tokens, {st.words:,} words, {st.pairs:,} distinct pairs{pruned}; "
            f"{st.candidates:,} score above {st.threshold:g}, {st.phrases:,} joined "
            f"({st.joined:,} times) in {st.seconds:.1f} s")


def _encode(files, lowercase, chunk_bytes, index, table, ids_file, read, mode="whitespace", work_dir=None):
    """Read the corpus once with the Numba tokenizer (w2v.tokenize, on every core): ids in order
    of first appearance to ``ids_file`` (_LINE_END after each line and each file), words into
    ``index``, pairs into ``table``. Returns (word counts by id, tokens). The tokenizer's shares
    spill their ids to files in ``work_dir``: the stream is never held in memory."""
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".w2v-phrases-") as spill:
        return _encode_spilled(files, lowercase, chunk_bytes, index, table, ids_file, read, mode, Path(spill))


def _encode_spilled(files, lowercase, chunk_bytes, index, table, ids_file, read, mode, spill: Path):
    tokens = tokenize(files, lowercase, mode, chunk_bytes, max(1, os.cpu_count() or 1), spill_dir=spill)
    for name in ("files", "bytes", "tokens", "lines", "invalid_utf8"):
        setattr(read, name, getattr(read, name) + getattr(tokens.stats, name))
    for word in tokens.words():
        index.setdefault(word, len(index))
    prev = -1
    for block in tokens.iter_ids():
        if len(block):
            prev = table.add(block, prev)
            ids_file.write(block.data)
    return tokens.counts, int(tokens.stats.tokens)


def _read_blocks(fh):
    while True:
        raw = fh.read(_BLOCK * 4)
        if not raw:
            return
        yield np.frombuffer(raw, dtype=np.int32)


def _rejoin(ids_file, jkeys, jvals, phrase_ids, joins, n_words, table, next_file):
    """A pass that is not the last: its joins written as the next pass's id stream, whose words
    and pairs are counted on the way. Returns (word counts by id, tokens) of the new stream."""
    state = np.array([-1, 0, -1], dtype=np.int64)
    word_counts = np.zeros(n_words, dtype=np.int64)
    prev, tokens = -1, 0
    for block in _read_blocks(ids_file):
        out = np.empty(len(block) + 1, dtype=np.int32)
        n = _join_ids(block, jkeys, jvals, phrase_ids, joins, out, state)
        out = out[:n]
        words = out[out >= 0]
        tokens += len(words)
        word_counts += np.bincount(words, minlength=n_words)
        prev = table.add(out, prev)
        next_file.write(out.data)
    if state[2] >= 0:  # not reached: the stream ends with a line end, which writes the pending id
        last = np.array([state[2]], dtype=np.int32)
        word_counts[last[0]] += 1
        tokens += 1
        next_file.write(last.data)
    return word_counts, tokens


def _write_text(ids_file, jkeys, jvals, joins, words, delimiter, out_fh):
    encoded = [w.encode("utf-8") for w in words]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    if not len(blob):
        blob = np.zeros(1, dtype=np.uint8)
    delim = np.frombuffer(delimiter.encode("utf-8"), dtype=np.uint8)
    buf = np.empty(max(_TEXT_BUFFER, 2 * (int(lengths.max(initial=0)) + len(delim) + 1)), dtype=np.uint8)
    state = np.array([-1, 0], dtype=np.int64)
    for block in _read_blocks(ids_file):
        pos = 0
        while pos < len(block):
            pos, n = _join_text(block, pos, jkeys, jvals, joins, blob, offsets, delim, buf, state)
            out_fh.write(buf[:n].data)
