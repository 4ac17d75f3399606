"""Where a pair's nanoseconds go, by subtraction (for machines without hardware counters).

    .venv/bin/python scripts/profile_pair.py CORPUS [--words 4300000] [--start 0.0] [--repeat 3]

One thread, the same stretch of CORPUS's encoded stream (through the corpus cache) each time, from
``--start`` (a fraction of the stream) for ``--words`` words: the pairs alone (reading, subsampling,
windows), the pairs with the negatives drawn and their log Q, the whole ``train_span``, and
``train_span`` on the same stream with every id taken modulo 512 (the same batches' arithmetic with
every input and label row in cache: the difference with the whole run is what memory costs).
Prints the best of ``--repeat`` for each, in ns a pair.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit

from w2v.pairs import next_batch
from w2v.sampler import draw_log_uniform, log_expected_count


@njit(nogil=True)
def _pairs_only(stream, word_budget):
    words = pairs = 0
    while words < word_budget:
        b0, b1, n = next_batch(stream)
        if b0 == b1:
            break
        words += n
        pairs += b1 - b0
    return pairs


@njit(nogil=True)
def _pairs_and_negatives(stream, sampler, neg, word_budget, vocab_size):
    words = pairs = 0
    total = 0.0  # used, so the log Q are computed
    while words < word_budget:
        b0, b1, n = next_batch(stream)
        if b0 == b1:
            break
        words += n
        neg.mark[0] += 1
        tries = draw_log_uniform(neg.rng, vocab_size, sampler.table, sampler.num_sampled, sampler.unique,
                                 neg.sampled, neg.stamp, neg.mark[0])
        for s in range(sampler.num_sampled):
            total += log_expected_count(neg.sampled[s], tries, sampler.num_sampled, sampler.log_p, sampler.log1m_p,
                                        sampler.log_num_sampled)
        total += log_expected_count(stream.centres[b0], tries, sampler.num_sampled, sampler.log_p, sampler.log1m_p,
                                    sampler.log_num_sampled)
        pairs += b1 - b0
    return pairs + (total > 1e300)


def main() -> None:
    from w2v.config import load_config
    from w2v.dataset import prepare
    from w2v.pairs import new_cursor
    from w2v.train import Trainer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--words", type=int, default=4_300_000)
    ap.add_argument("--start", type=float, default=0.0, help="where to start, a fraction of the stream")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache-dir", default="~/.cache/w2v")
    args = ap.parse_args()
    cfg = load_config(overrides={"workers": 1, "cache_dir": args.cache_dir})
    dataset = prepare([args.corpus], cfg)
    trainer = Trainer(dataset, cfg)
    trainer.job_words = args.words
    w = trainer.workers[0]
    start = int(len(dataset.ids) * args.start)
    w.cursor[:] = new_cursor(start)
    snapshot = (w.cursor.copy(), w.stream.rng.copy(), w.neg.rng.copy())
    empty = np.zeros((0, 2), np.int32)

    def best(run) -> float:
        times = []
        for _ in range(args.repeat + 1):  # the first compiles or loads the kernels
            w.cursor[:], w.stream.rng[:], w.neg.rng[:] = snapshot
            w.totals[:] = 0
            t = time.perf_counter()
            pairs = run()
            times.append((time.perf_counter() - t) / max(pairs, 1) * 1e9)
        return min(times[1:])

    vocab_size = len(dataset.vocab)
    def full() -> int:
        trainer._train_job(w, 0, empty)
        return int(w.totals[1])

    print(f"pairs alone: {best(lambda: _pairs_only(w.stream, args.words)):.1f} ns a pair")
    print(f"pairs and negatives: "
          f"{best(lambda: _pairs_and_negatives(w.stream, trainer.sampler, w.neg, args.words, vocab_size)):.1f}")
    print(f"train_span: {best(full):.1f}")
    ids = np.asarray(dataset.ids[:start + 4 * args.words])  # the stretch read, and more
    w.stream = w.stream._replace(ids=np.where(ids >= 0, ids % 512, ids).astype(np.int32), end=len(ids))
    print(f"train_span, every row id < 512 (rows in cache): {best(full):.1f}")
    print(f"vocabulary {vocab_size:,} words, from {args.start:.2f} of {len(dataset.ids):,} ids, {args.words:,} words")


if __name__ == "__main__":
    main()
