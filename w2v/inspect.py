"""What training sees: the pairs and negatives of the first epoch, and statistics of the stream.

Everything here walks the trainer's own primitives (``pairs.next_batch``, ``pairs.next_piece``,
``sampler.draw_log_uniform``) with the trainer's RNG streams, so it shows the truth.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numba import njit

from .config import Config, validate
from .dataset import Dataset
from .kernel_cache import claim
from .nce import accidental_hits
from .pairs import iter_batches, keep_probabilities, next_piece, piece_pairs
from .rng import PAIRS, make_state
from .sampler import draw_log_uniform, expected_count, floor_table, log_uniform_probs

claim()  # the kernel directory made, held in use and the other versions' pruned

INSPECT = 2  # RNG purpose of the sampler check, apart from the training streams


def sample_pairs(dataset: Dataset, cfg: Config, num: int = 20, skip: int = 0,
                 negatives: bool = False) -> Iterator[dict]:
    """Records of the first epoch (worker 0 of one): pair dicts with exactly ``center``,
    ``context``, ``center_id``, ``context_id``; with ``negatives``, after each batch's pairs a
    ``{"kind": "negatives", ...}`` record: the batch's layout (``inputs``: which side of the pairs
    is the input row; ``label`` of a window batch), the sampled ids with expected counts Q (NCE
    subtracts log Q), the true labels' Q, and where accidental hits fall."""
    validate(cfg, len(dataset.vocab))
    words, vocab_size = dataset.vocab.words, len(dataset.vocab)
    seen = 0
    for index, batch in enumerate(iter_batches(dataset.ids, dataset.vocab.counts, cfg, negatives=negatives)):
        first = seen
        seen += len(batch.centres)
        if seen <= skip:
            continue
        lo = max(0, skip - first)
        hi = min(len(batch.centres), skip + num - first)
        for c, x in zip(batch.centres[lo:hi].tolist(), batch.contexts[lo:hi].tolist(), strict=True):
            yield {"center": words[c], "context": words[x], "center_id": c, "context_id": x}
        if negatives:
            q_true = expected_count(batch.labels, vocab_size, cfg.num_sampled, batch.num_tries)
            q_sampled = expected_count(batch.sampled, vocab_size, cfg.num_sampled, batch.num_tries)
            hits = accidental_hits(batch.labels[:, None], batch.sampled)
            yield {
                "kind": "negatives", "batch": index, "first_pair": first, "pairs": len(batch.centres),
                "inputs": "context" if batch.by_window else "center",
                "label": words[int(batch.centres[0])] if batch.by_window else None,
                "num_tries": batch.num_tries,
                "sampled": [{"word": words[k], "id": k, "expected_count": float(q)}
                            for k, q in zip(batch.sampled.tolist(), q_sampled.tolist(), strict=True)],
                "true_expected_count": [float(q) for q in q_true.tolist()],
                "accidental_hits": [{"pair": first + int(r), "position": int(j)}
                                    for r, j in zip(*np.nonzero(hits), strict=True)],
                "removed": bool(cfg.remove_accidental_hits),
            }
        if seen >= skip + num:
            return


@njit(cache=True, nogil=True)
def _stream_counts(ids, end, max_len, keep_prob, window, rng, kept, centres, contexts, window_of, read, kept_counts):
    pos = 0
    pairs = 0
    pieces = 0
    while pos < end:
        pos, n_words, n_kept = next_piece(ids, pos, end, max_len, keep_prob, rng, kept)
        for i in range(n_kept):
            kept_counts[kept[i]] += 1
        pairs += piece_pairs(kept, n_kept, window, rng, centres, contexts, window_of)
        pieces += 1
    for i in range(end):
        if ids[i] >= 0:
            read[ids[i]] += 1
    return pairs, pieces


@njit(cache=True, nogil=True)
def end_of_first_tokens(ids, n):
    """The end of the stream's first ``n`` in-vocabulary ids (ids >= 0): the index just past the
    n-th, or the stream's length when it holds no more than ``n``. One pass, no array the size of
    the stream (a cumulative count took 8 bytes a token: 1.3 GB at 166M tokens)."""
    seen = end = 0
    for i in range(ids.shape[0]):
        if ids[i] >= 0:
            if seen == n:  # an (n+1)-th: the first n end at the n-th
                return end
            seen += 1
            end = i + 1
    return ids.shape[0]


def end_of_first_tokens_reference(ids: np.ndarray, n: int) -> int:
    in_vocab = np.cumsum(ids >= 0)
    return int(np.searchsorted(in_vocab, n, side="left")) + 1 if len(ids) and in_vocab[-1] > n else len(ids)


def pair_stats(dataset: Dataset, cfg: Config, max_tokens: int = 0, top: int = 10,
               sampler_draws: int = 200_000) -> dict:
    """Statistics of the first epoch's stream (one worker), over the corpus or its first
    ``max_tokens`` in-vocabulary tokens, plus a check of the sampler against P(k)."""
    vocab = dataset.vocab
    vocab_size = len(vocab)
    end = len(dataset.ids)
    if max_tokens:
        end = int(end_of_first_tokens(dataset.ids, max_tokens))
    keep_prob = keep_probabilities(vocab.counts, cfg.sample)
    read = np.zeros(vocab_size, np.int64)
    kept_counts = np.zeros(vocab_size, np.int64)
    cap = cfg.max_sentence_length
    pairs, pieces = _stream_counts(
        dataset.ids, end, cap, keep_prob, cfg.window, make_state(cfg.seed, 0, PAIRS), np.empty(cap, np.int32),
        np.empty(cap * 2 * cfg.window, np.int32), np.empty(cap * 2 * cfg.window, np.int32),
        np.empty(cap * 2 * cfg.window, np.int32), read, kept_counts)
    words_read, words_kept = int(read.sum()), int(kept_counts.sum())
    frequent = [{"word": vocab.words[i], "id": i, "read": int(read[i]), "kept": int(kept_counts[i]),
                 "observed_keep": float(kept_counts[i] / read[i]) if read[i] else None,
                 "formula_keep": float(keep_prob[i])} for i in range(min(top, vocab_size))]
    # sampler: empirical frequency of the top ids in independent draws against P(k)
    draws = np.empty(sampler_draws, np.int64)
    draw_log_uniform(make_state(cfg.seed, 0, INSPECT), vocab_size, floor_table(vocab_size), sampler_draws,
                     False, draws, np.zeros(vocab_size, np.int64), 1)
    freq = np.bincount(draws, minlength=vocab_size)[:top] / sampler_draws
    p = log_uniform_probs(vocab_size)[:top].astype(np.float64)
    unigram = vocab.counts[:top] / vocab.counts.sum()
    return {
        "kind": "stats",
        "tokens_read": int(dataset.stats["tokens"]) if end == len(dataset.ids) else words_read,
        "in_vocabulary_tokens": words_read,
        "vocabulary_size": vocab_size,
        "distinct_words": int(dataset.stats["distinct"]),
        "dropped_by_min_count": int(dataset.stats["dropped_words"]),
        "dropped_tokens": int(dataset.stats["dropped_tokens"]),
        "pieces": int(pieces),
        "tokens_kept": words_kept,
        "kept_fraction": words_kept / words_read if words_read else 0.0,
        "frequent_words": frequent,
        "pairs": int(pairs),
        "pairs_per_token_read": pairs / words_read if words_read else 0.0,
        "mean_effective_window": pairs / (2 * words_kept) if words_kept else 0.0,
        "sampler": {
            "draws": sampler_draws,
            "top": [{"id": i, "word": vocab.words[i], "observed": float(freq[i]), "p": float(p[i]),
                     "unigram": float(unigram[i])} for i in range(len(p))],
            "max_abs_error": float(np.abs(freq - p).max()),
            "max_rel_error": float((np.abs(freq - p) / p).max()),
        },
    }
