"""One worker alone against several at once, in slices of about a second alternating in one process.

    .venv/bin/python scripts/bench_slices.py CORPUS [--workers 2] [--jobs 20] [--rounds 12] [--private]

Whole runs (bench_workers.py) are minutes apart, and a shared host's speed changes from one minute
to the next, so their ratio is partly the host's. Here one trainer (CORPUS, the default config
with --workers threads) trains in rounds: --jobs kernel calls (a run's jobs: 50,000 words each on
a big corpus) on one worker's thread alone (the scratch a one-worker run has: no hot-row copies),
then --jobs calls on every worker's thread at once (the run's own scratch), at a fixed learning
rate. Each round prints both speeds in words/s of wall clock and their ratio; the summary gives
the mean and median ratio, and words per CPU-second of each (threads' CPU time: where several
threads at once need more CPU seconds for the same words, the work itself got slower, not split
worse). With --private, every thread steps its own copy of the parameters (a diagnosis: the
threads then train separate models): if the shared model were what slows several workers,
--private would scale better. Round 0 warms the caches and is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np
from bench_step import cpu_model  # scripts/ is on the path when a script of it runs
from bench_workers import avx512

from w2v.config import Config
from w2v.dataset import prepare
from w2v.nce import Params, step_scratch
from w2v.pairs import max_batch_rows
from w2v.train import Schedule, Trainer, _private, train_span


def summary(rounds: list[dict], workers: int) -> list[str]:
    """``rounds``: per round, "alone" and "together" as (words, wall s, thread CPU s)."""
    ratios = [(r["together"][0] / r["together"][1]) / (r["alone"][0] / r["alone"][1]) for r in rounds]

    def per_cpu(key):
        return sum(r[key][0] for r in rounds) / sum(r[key][2] for r in rounds) / 1e6

    return [f"1 -> {workers} workers, {len(rounds)} rounds: mean {statistics.mean(ratios):.2f}x, "
            f"median {statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}x-{max(ratios):.2f}x)",
            f"words per CPU-second: alone {per_cpu('alone'):.3f}M, together {per_cpu('together'):.3f}M"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=20, help="kernel calls per slice, per thread")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--private", action="store_true", help="each thread steps its own copy of the parameters")
    args = ap.parse_args()
    if args.workers < 2 or args.rounds < 1 or args.jobs < 1:
        ap.error("give at least two workers, one round and one job")
    print(f"CPU: {cpu_model()} ({avx512()}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    cfg = Config(workers=args.workers, epochs=1)
    tr = Trainer(prepare([args.corpus], cfg), cfg)
    m = tr.model
    params = ([Params(m.emb_in.copy(), m.emb_out.copy(), m.bias.copy()) for _ in tr.workers] if args.private
              else [Params(m.emb_in, m.emb_out, m.bias)] * len(tr.workers))
    alone_scratch = _private(step_scratch(max_batch_rows(cfg), cfg.num_sampled, cfg.dim))
    schedule = Schedule(cfg.alpha, cfg.min_alpha, 0, tr.progress.total_words, cfg.reduction == "mean")
    trace = np.zeros((0, 2), np.int32)

    def work(i, scratch, out):
        w = tr.workers[i]
        words, cpu = w.totals[0], time.thread_time()
        for _ in range(args.jobs):
            if train_span(params[i], w.stream, tr.sampler, schedule, w.neg, scratch, tr.job_words, w.totals, trace):
                w.rewind()
        out.append((w.totals[0] - words, time.thread_time() - cpu))

    def slice_(threads):
        out = []
        t = time.perf_counter()
        running = [threading.Thread(target=work, args=(i, scratch, out)) for i, scratch in threads]
        for th in running:
            th.start()
        for th in running:
            th.join()
        return sum(o[0] for o in out), time.perf_counter() - t, sum(o[1] for o in out)

    rounds = []
    for r in range(args.rounds + 1):
        alone = slice_([(r % args.workers, alone_scratch)])
        together = slice_([(i, w.scratch) for i, w in enumerate(tr.workers)])
        if r:
            rounds.append({"alone": alone, "together": together})
            a, b = alone[0] / alone[1] / 1e6, together[0] / together[1] / 1e6
            print(f"round {r}: alone {a:.2f}M words/s, {args.workers} at once {b:.2f}M: {b / a:.2f}x", flush=True)
    for line in summary(rounds, args.workers):
        print(line)


if __name__ == "__main__":
    main()
