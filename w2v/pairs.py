"""Skip-gram pairs: word2vec's subsampling and dynamic window over the encoded id stream.

The stream is cut into pieces: one sentence, or ``max_sentence_length`` in-vocabulary tokens of a
longer one. Each piece is subsampled first (so, as in word2vec.c, the window spans kept tokens),
then every kept token is a centre with contexts up to b positions each side, b uniform in
1..window. Pairs are (input = centre, label = context), as TensorFlow's word2vec tutorial.

``iter_batches`` is the Python view of exactly the loop the trainer runs in Numba: the same
primitives, the same RNG streams, the same batch boundaries. ``w2v sample-pairs`` prints it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from .rng import NEGATIVES, PAIRS, make_state, next_below, next_float


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
def piece_pairs(kept, n_kept, window, rng, centres, contexts):
    """All (centre, context) pairs of a piece, centre by centre, contexts left to right."""
    n = 0
    for i in range(n_kept):
        b = 1 + next_below(rng, window)  # word2vec.c: b = next_random % window; span window - b
        lo = max(0, i - b)
        hi = min(n_kept, i + b + 1)
        for j in range(lo, hi):
            if j != i:
                centres[n] = kept[i]
                contexts[n] = kept[j]
                n += 1
    return n


# cursor: the state of one worker's pair stream, an int64 array the kernels advance in place
POS, N_PAIRS, NEXT, PIECES = range(4)


def new_cursor(start: int) -> np.ndarray:
    return np.array([start, 0, 0, 0], dtype=np.int64)


@njit(cache=True, nogil=True)
def next_batch(ids, cursor, end, max_len, keep_prob, window, batch_size, rng, kept, centres, contexts):
    """The next batch of pairs: returns (b0, b1, words read); pairs are centres/contexts[b0:b1].

    When the buffered piece is used up, reads pieces until one yields pairs (words read counts
    them all). b0 == b1 means the span [.., end) is exhausted. Batches never straddle pieces, so
    a piece's last batch may be short. The trainer and ``iter_batches`` both walk this function.
    """
    words = 0
    while cursor[NEXT] >= cursor[N_PAIRS]:
        if cursor[POS] >= end:
            return 0, 0, words
        pos, n_words, n_kept = next_piece(ids, cursor[POS], end, max_len, keep_prob, rng, kept)
        cursor[POS] = pos
        cursor[PIECES] += 1
        words += n_words
        cursor[N_PAIRS] = piece_pairs(kept, n_kept, window, rng, centres, contexts)
        cursor[NEXT] = 0
    b0 = cursor[NEXT]
    b1 = min(b0 + batch_size, cursor[N_PAIRS])
    cursor[NEXT] = b1
    return b0, b1, words


@dataclass
class Batch:
    centres: np.ndarray  # int32 [B] input ids
    contexts: np.ndarray  # int32 [B] label ids
    sampled: np.ndarray  # int64 [S] negatives shared by the batch
    num_tries: int  # draws the sampler made (duplicates included)
    piece: int  # index of the piece (sentence) the pairs come from


def iter_batches(ids: np.ndarray, counts: np.ndarray, cfg, worker: int = 0, workers: int = 1,
                 negatives: bool = True, end: int | None = None) -> Iterator[Batch]:
    """The batches one worker trains on in its first epoch, in order, with their negatives."""
    from .sampler import draw_log_uniform, floor_table

    start, span_end = worker_spans(len(ids), workers)[worker]
    end = span_end if end is None else min(end, span_end)
    keep_prob = keep_probabilities(counts, cfg.sample)
    rng_pairs = make_state(cfg.seed, worker, PAIRS)
    rng_neg = make_state(cfg.seed, worker, NEGATIVES)
    vocab_size = len(counts)
    table = floor_table(vocab_size)
    kept = np.empty(cfg.max_sentence_length, dtype=np.int32)
    cap = cfg.max_sentence_length * 2 * cfg.window
    centres = np.empty(cap, dtype=np.int32)
    contexts = np.empty(cap, dtype=np.int32)
    stamp = np.zeros(vocab_size, dtype=np.int64)
    cursor = new_cursor(start)
    mark = 0
    while True:
        b0, b1, _ = next_batch(ids, cursor, end, cfg.max_sentence_length, keep_prob, cfg.window,
                               cfg.batch_size, rng_pairs, kept, centres, contexts)
        if b0 == b1:
            return
        sampled = np.empty(cfg.num_sampled, dtype=np.int64)
        tries = 0
        if negatives:
            mark += 1
            tries = draw_log_uniform(rng_neg, vocab_size, table, cfg.num_sampled, cfg.unique,
                                     sampled, stamp, mark)
        yield Batch(centres[b0:b1].copy(), contexts[b0:b1].copy(), sampled, tries, int(cursor[PIECES]) - 1)
