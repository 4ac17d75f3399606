"""Vocabulary: word counts, min_count / max_vocab_size, ids sorted by descending count.

Id 0 is the most frequent word; ties keep the order of first appearance. The log-uniform
sampler's P(k) = log((k+2)/(k+1)) / log(V+1) only approximates the unigram distribution in
this order. ``merge_vocab`` grows a trained run's vocabulary with a new corpus's words.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .corpus import CorpusError, ReadStats, iter_range_segments, iter_segments
from .scan import prune_reference
from .tokenize import count_pruned, tokenize
from .words import Words

# A token longer than this many bytes of UTF-8 is left out of the vocabulary, like a rare word
# (word2vec.c cuts words at 100 bytes): a 20,000-character "token" is a URL list, a base64 blob or
# text without spaces, never a word, and each word costs memory and disk in proportion to its bytes.
MAX_WORD_BYTES = 100


def is_long(word: str) -> bool:
    return len(word) * 4 > MAX_WORD_BYTES and len(word.encode("utf-8")) > MAX_WORD_BYTES  # chars are 1-4 bytes


# Any white space but the space and the newline of ``word count`` lines (as str.split sees it)
_OTHER_SPACE = re.compile(r"[^\S \n]")


@dataclass
class Vocab:
    words: Words  # given as any sequence of str, held packed (words.Words)
    counts: np.ndarray  # int64 [V], non-increasing

    def __post_init__(self):
        self.words = Words.of(self.words)
        self.counts = np.asarray(self.counts, dtype=np.int64)

    @property
    def index(self) -> dict[str, int]:
        """word -> id, made when first asked for. Not held by default: a dict of V words (and an
        int object per id) is ~70 bytes a word, 78 MiB at 1.2M words, and training never looks a
        word up; preparation builds its own and lets it go (``lookup``)."""
        if getattr(self, "_index", None) is None:
            self._index = self.lookup()
        return self._index

    def lookup(self) -> dict[str, int]:
        """A new word -> id dict, for a caller that uses it and lets it go."""
        return {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def save(self, path) -> None:
        """word2vec's ``-save-vocab`` format: ``word count`` lines, most frequent first. Written in
        blocks: the whole text at once made a string per line first (~90 MiB at 1.2M words, the
        peak of a large run's last seconds)."""
        from .io import atomic_open

        with atomic_open(path, "w", encoding="utf-8") as fh:
            lo = 0
            for block in self.words.blocks():
                counts = self.counts[lo:lo + len(block)].tolist()
                fh.write("".join(f"{w} {c}\n" for w, c in zip(block, counts, strict=True)))
                lo += len(block)

    @classmethod
    def load(cls, path) -> Vocab:
        """Read ``word count`` lines; the file as this w2v writes it (one space, ASCII digits, a
        newline after each line) is parsed with NumPy straight into packed words (reading
        lines made a list of strings first: 92 MiB held at 1.16M words; the arrays take 26); anything else
        line by line."""
        with open(path, "rb") as fh:
            data = fh.read()
        vocab = _parse_plain(data)
        return vocab if vocab is not None else cls._load_lines(path)

    @classmethod
    def _load_lines(cls, path) -> Vocab:
        words, counts = [], []
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    raise CorpusError(f"{path}:{n}: expected 'word count', got {line.strip()!r}")
                words.append(parts[0])
                counts.append(int(parts[1]))
        return cls(words, np.array(counts, dtype=np.int64))


def _parse_plain(data: bytes) -> Vocab | None:
    """``Vocab.load``'s result when every line of ``data`` is ``word count\\n`` with one space,
    a word without white space and 1-18 ASCII digits (what ``_load_lines`` reads the same way);
    None otherwise. Raises UnicodeDecodeError on bytes that are not UTF-8, as reading lines does."""
    if not data:
        return Vocab([], np.zeros(0, np.int64))
    if _OTHER_SPACE.search(data.decode("utf-8")) or not data.endswith(b"\n"):
        return None
    buf = np.frombuffer(data, np.uint8)
    space, newline = np.flatnonzero(buf == 32), np.flatnonzero(buf == 10)
    if len(space) != len(newline):
        return None
    starts = np.concatenate(([0], newline[:-1] + 1))
    if ((space <= starts) | (newline <= space + 1) | (newline - space > 19)).any():
        return None  # an empty word or count, two spaces on a line (or none), a number too long
    counts = np.zeros(len(space), np.int64)
    keep = np.ones(len(buf), bool)  # the words' bytes: all but each line's space, count and newline
    keep[space] = keep[newline] = False
    for k in range(int((newline - space).max()) - 1):  # the k-th digit of every count that has one
        more = space + 1 + k < newline
        at = (space + 1 + k)[more]
        digit = buf[at] - np.uint8(48)  # wraps round below '0'
        if (digit > 9).any():
            return None
        counts[more] = counts[more] * 10 + digit
        keep[at] = False
    offsets = np.concatenate(([0], np.cumsum(space - starts)))
    return Vocab(Words(buf[keep], offsets), counts)


@dataclass
class CountStats:
    read: ReadStats
    distinct: int = 0  # distinct tokens seen (after pruning, if any)
    pruned_below: int = 0  # max_vocab_size pruning dropped words with counts below this while counting
    dropped_words: int = 0  # distinct words under min_count or past max_vocab_size
    dropped_tokens: int = 0
    max_count: int = 0
    long_words: int = 0  # distinct tokens over MAX_WORD_BYTES, left out of the vocabulary
    long_tokens: int = 0  # and their occurrences


def table_cap(max_vocab_size: int) -> int:
    """The word table's bound while counting under ``max_vocab_size``: twice the vocabulary kept,
    so that pruning rarely reaches words the vocabulary keeps."""
    return 2 * max_vocab_size


def count_words(paths, lowercase=False, chunk_bytes=1 << 20, max_vocab_size=0, mode="whitespace", threads=1):
    """Count tokens with the Numba tokenizer (w2v.tokenize, on ``threads`` threads). With
    ``max_vocab_size`` one thread counts and, whenever a new word takes the table past
    ``table_cap(max_vocab_size)`` words, drops those counted ``min_reduce`` times or fewer, then
    raises ``min_reduce`` by one (word2vec.c's ReduceVocab: memory stays bounded; counts of words
    that survive a prune may be a little low); ``count_words_reference`` is its reference."""
    stats = CountStats(read=ReadStats())
    if not max_vocab_size:
        tokens = tokenize(paths, lowercase, mode, chunk_bytes, threads)
    else:
        tokens = count_pruned(paths, table_cap(max_vocab_size), lowercase, mode, chunk_bytes)
    return _note_long_words(_token_counts(tokens, stats), stats), stats


def count_ranges(ranges, lowercase=False, chunk_bytes=1 << 20, max_vocab_size=0, mode="whitespace"):
    """``count_words`` over byte ranges of the corpus files (corpus.split_ranges): the Ray backend
    counts each share of a corpus in a task of its own and merges them with ``merge_counts``."""
    stats = CountStats(read=ReadStats())
    if not max_vocab_size:
        tokens = tokenize(None, lowercase, mode, chunk_bytes, ranges=ranges)
    else:
        tokens = count_pruned(None, table_cap(max_vocab_size), lowercase, mode, chunk_bytes, ranges=ranges)
    return _note_long_words(_token_counts(tokens, stats), stats), stats


def count_words_reference(paths, lowercase=False, chunk_bytes=1 << 20, max_vocab_size=0, mode="whitespace",
                          ranges=None):
    """``count_words`` / ``count_ranges`` in plain Python (corpus.iter_segments), token by token."""
    stats = CountStats(read=ReadStats())
    segments = iter_segments(paths, lowercase, chunk_bytes, stats.read, mode) if ranges is None else \
        iter_range_segments(ranges, lowercase, chunk_bytes, stats.read, mode)
    counts: dict = {}
    cap, min_reduce = table_cap(max_vocab_size), 1
    for tokens, _ in segments:
        for t in tokens:
            if t in counts:
                counts[t] += 1
                continue
            counts[t] = 1
            if max_vocab_size and len(counts) > cap:
                counts = prune_reference(counts, min_reduce)
                stats.pruned_below = min_reduce + 1
                min_reduce += 1
    return _note_long_words(Counter(counts), stats), stats


def _token_counts(tokens, stats: CountStats) -> Counter:
    """The Numba tokenizer's counts as a Counter (words in order of first appearance)."""
    stats.read = tokens.stats
    stats.pruned_below = tokens.pruned_below
    return Counter(dict(zip(tokens.words(), tokens.counts.tolist(), strict=True)))


def _note_long_words(counts: Counter, stats: CountStats) -> Counter:
    long = [c for w, c in counts.items() if is_long(w)]
    stats.long_words, stats.long_tokens = len(long), sum(long)
    return counts


def merge_counts(parts, max_vocab_size=0) -> tuple[Counter, CountStats]:
    """Add up the ``(counts, stats)`` of consecutive shares of a corpus, in corpus order, so ties
    keep their order of first appearance and, without pruning, the vocabulary is the one
    ``count_words`` finds. Pruning works as in ``count_words``: whenever the sum holds more than
    twice ``max_vocab_size`` words, those at or below a rising threshold go, so the driver holds at
    most that many words plus one share's."""
    total: Counter = Counter()
    stats = CountStats(read=ReadStats())
    min_reduce = 1
    for counts, part in parts:
        total.update(counts)
        stats.read.add(part.read)
        stats.pruned_below = max(stats.pruned_below, part.pruned_below)
        if max_vocab_size and len(total) > table_cap(max_vocab_size):
            total = Counter(prune_reference(total, min_reduce))
            stats.pruned_below = max(stats.pruned_below, min_reduce + 1)
            min_reduce += 1
    return _note_long_words(total, stats), stats


def build_vocab(counts: Counter, min_count: int, max_vocab_size: int = 0) -> Vocab:
    """Words reaching ``min_count`` and at most MAX_WORD_BYTES long, most frequent first."""
    kept = [(w, c) for w, c in counts.items() if c >= min_count and not is_long(w)]
    kept.sort(key=lambda wc: -wc[1])  # stable: ties stay in order of first appearance
    if max_vocab_size:
        kept = kept[:max_vocab_size]
    return Vocab([w for w, _ in kept], np.array([c for _, c in kept], dtype=np.int64))


def merge_vocab(old: Vocab, new_counts: Counter, min_count: int, max_vocab_size: int = 0,
                prune: bool = False) -> tuple[Vocab, np.ndarray]:
    """The vocabulary of a run continued on new text, and where each old word went.

    Words: ``old``'s, plus the words of ``new_counts`` (the new corpus) that reach ``min_count``
    in it; counts: old + new. ``min_count`` and ``max_vocab_size`` apply to the merged counts,
    but ``old``'s words below them stay unless ``prune``. Sorted again by descending count; ties
    keep old words first in their old order, then new words in order of first appearance.
    Returns the vocabulary and ``old_to_new`` (int64 [len(old)], -1 for a pruned word).
    """
    words = list(old.words)
    counts = [c + new_counts.get(w, 0) for w, c in zip(words, old.counts.tolist(), strict=True)]
    n_old = len(words)
    for w, c in new_counts.items():
        if c >= min_count and w not in old.index and not is_long(w):
            words.append(w)
            counts.append(c)
    order = sorted(range(len(words)), key=lambda i: -counts[i])  # stable: the tie rule above
    kept, ranked = [], 0
    for i in order:
        within = counts[i] >= min_count and (not max_vocab_size or ranked < max_vocab_size)
        ranked += counts[i] >= min_count
        if within or (i < n_old and not prune):
            kept.append(i)
    old_to_new = np.full(n_old, -1, dtype=np.int64)
    for new_id, i in enumerate(kept):
        if i < n_old:
            old_to_new[i] = new_id
    return Vocab([words[i] for i in kept], np.array([counts[i] for i in kept], dtype=np.int64)), old_to_new
