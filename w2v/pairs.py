"""Skip-gram pairs: word2vec's subsampling and dynamic window over the encoded id stream.

The stream is cut into pieces: one sentence, or ``max_sentence_length`` in-vocabulary tokens of a
longer one. Each piece is subsampled first (so, as in word2vec.c, the window spans kept tokens),
then every kept token is a centre with contexts up to b positions each side, b uniform in
1..window. The pairs (centre, context) come out centre by centre; how they become NCE batches is the
``batch`` option:

- ``window``: one batch is one centre's window. The inputs are its context words, every row's label is
  the centre, and the S negatives are drawn once for the window (word2vec.c's skip-gram loop and
  pWord2Vec's orientation): the 1+S output rows are read once and shared by every context.
- ``pairs``: ``batch_size`` consecutive pairs per batch with input = centre, label = context, as
  TensorFlow's word2vec tutorial (batch_size 1: every pair draws its own negatives).

``iter_batches`` is the Python view of exactly the loop the trainer runs in Numba: the same
primitives, the same RNG streams, the same batch boundaries. ``w2v sample-pairs`` prints it.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from .kernel_cache import claim
from .rng import NEGATIVES, PAIRS, make_state, next_below, next_float

claim()  # the kernel directory made, held in use and the other versions' pruned


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec.c's keep probability (sqrt(f/(sN)) + 1) * sN/f, capped at 1; N = sum of counts."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0 or len(counts) == 0:
        return np.ones(len(counts))
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def worker_spans(n_ids: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous, disjoint [start, end) ranges of the stream, one per worker."""
    cuts = [n_ids * i // workers for i in range(workers + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=False))


@njit(cache=True, nogil=True)
def next_piece(ids, pos, end, max_len, keep_prob, rng, kept):
    """Read one piece from ids[pos:end]; subsample it into ``kept``.

    Returns (new pos, in-vocabulary tokens read, tokens kept). A sentence end (-1) closes the
    piece and is consumed; a piece cut at max_len leaves the rest of the sentence for the next.
    """
    n_words = 0
    n_kept = 0
    while pos < end and ids[pos] < 0:
        pos += 1
    while pos < end and n_words < max_len:
        w = ids[pos]
        pos += 1
        if w < 0:
            break
        n_words += 1
        p = keep_prob[w]
        if p >= 1.0 or next_float(rng) < p:
            kept[n_kept] = w
            n_kept += 1
    return pos, n_words, n_kept


@njit(cache=True, nogil=True)
def piece_pairs(kept, n_kept, window, rng, centres, contexts, window_of):
    """All (centre, context) pairs of a piece, centre by centre, contexts left to right;
    ``window_of[n]`` is the position of pair n's centre in the piece (its window)."""
    n = 0
    for i in range(n_kept):
        b = 1 + next_below(rng, window)  # word2vec.c: b = next_random % window; span window - b
        lo = max(0, i - b)
        hi = min(n_kept, i + b + 1)
        for j in range(lo, hi):
            if j != i:
                centres[n] = kept[i]
                contexts[n] = kept[j]
                window_of[n] = i
                n += 1
    return n


# cursor: the state of one worker's pair stream, an int64 array the kernels advance in place
POS, N_PAIRS, NEXT, PIECES = range(4)


def new_cursor(start: int) -> np.ndarray:
    return np.array([start, 0, 0, 0], dtype=np.int64)


# One worker's pair stream, as the kernels see it: the id stream and its span end, the settings
# that make pairs, the cursor and RNG that advance in place, and the buffers of the current piece.
PairStream = namedtuple("PairStream", [
    "ids", "end", "keep_prob", "window", "max_len", "by_window", "batch_size",
    "cursor", "rng", "kept", "centres", "contexts", "window_of"])


def pair_stream(ids, start: int, end: int, keep_prob, cfg, rng) -> PairStream:
    """A stream over ids[start:end) with fresh buffers sized for ``cfg``."""
    cap = cfg.max_sentence_length * 2 * cfg.window
    return PairStream(ids, end, keep_prob, cfg.window, cfg.max_sentence_length, cfg.batch == "window",
                      cfg.batch_size, new_cursor(start), rng, np.empty(cfg.max_sentence_length, np.int32),
                      np.empty(cap, np.int32), np.empty(cap, np.int32), np.empty(cap, np.int32))


def max_batch_rows(cfg) -> int:
    """The most rows one batch can have: a whole window, or batch_size pairs."""
    return 2 * cfg.window if cfg.batch == "window" else cfg.batch_size


@njit(cache=True, nogil=True)
def next_batch(st):
    """The next batch of stream ``st``: returns (b0, b1, words read); its pairs are
    centres/contexts[b0:b1].

    When the buffered piece is used up, reads pieces until one yields pairs (words read counts
    them all). b0 == b1 means the span [.., end) is exhausted. Batches never straddle pieces: a
    batch is one window (``by_window``) or up to batch_size pairs, so a piece's last may be short.
    The trainer and ``iter_batches`` both walk this function.
    """
    cursor = st.cursor
    words = 0
    while cursor[NEXT] >= cursor[N_PAIRS]:
        if cursor[POS] >= st.end:
            return 0, 0, words
        pos, n_words, n_kept = next_piece(st.ids, cursor[POS], st.end, st.max_len, st.keep_prob, st.rng, st.kept)
        cursor[POS] = pos
        cursor[PIECES] += 1
        words += n_words
        cursor[N_PAIRS] = piece_pairs(st.kept, n_kept, st.window, st.rng, st.centres, st.contexts, st.window_of)
        cursor[NEXT] = 0
    b0 = cursor[NEXT]
    if st.by_window:
        b1 = b0 + 1
        while b1 < cursor[N_PAIRS] and st.window_of[b1] == st.window_of[b0]:
            b1 += 1
    else:
        b1 = min(b0 + st.batch_size, cursor[N_PAIRS])
    cursor[NEXT] = b1
    return b0, b1, words


@dataclass
class Batch:
    """One SGD step's data. The pairs are (centre, context); ``inputs``/``labels`` say which side
    is the input row and which the NCE label in this layout."""
    centres: np.ndarray  # int32 [B]
    contexts: np.ndarray  # int32 [B]
    sampled: np.ndarray  # int64 [S] negatives shared by the batch
    num_tries: int  # draws the sampler made (duplicates included)
    piece: int  # index of the piece (sentence) the pairs come from
    by_window: bool  # True: inputs are the contexts, every label the centre

    @property
    def inputs(self) -> np.ndarray:
        return self.contexts if self.by_window else self.centres

    @property
    def labels(self) -> np.ndarray:
        return self.centres if self.by_window else self.contexts


def iter_batches(ids: np.ndarray, counts: np.ndarray, cfg, worker: int = 0, workers: int = 1,
                 negatives: bool = True, end: int | None = None) -> Iterator[Batch]:
    """The batches one worker trains on in its first epoch, in order, with their negatives."""
    from .sampler import draw_log_uniform, floor_table, stamp_size

    start, span_end = worker_spans(len(ids), workers)[worker]
    end = span_end if end is None else min(end, span_end)
    keep_prob = keep_probabilities(counts, cfg.sample)
    st = pair_stream(ids, start, end, keep_prob, cfg, make_state(cfg.seed, worker, PAIRS))
    rng_neg = make_state(cfg.seed, worker, NEGATIVES)
    vocab_size = len(counts)
    table = floor_table(vocab_size)
    stamp = np.zeros(stamp_size(vocab_size, cfg.num_sampled), dtype=np.int64)
    mark = 0
    while True:
        b0, b1, _ = next_batch(st)
        if b0 == b1:
            return
        sampled = np.empty(cfg.num_sampled, dtype=np.int64)
        tries = 0
        if negatives:
            mark += 1
            tries = draw_log_uniform(rng_neg, vocab_size, table, cfg.num_sampled, cfg.unique,
                                     sampled, stamp, mark)
        yield Batch(st.centres[b0:b1].copy(), st.contexts[b0:b1].copy(), sampled, tries,
                    int(st.cursor[PIECES]) - 1, st.by_window)
