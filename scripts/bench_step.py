"""Microbenchmark of the training kernel: nanoseconds per pair of ``train_span`` on a real corpus.

    .venv/bin/python scripts/bench_step.py CORPUS [--workers 1] [--words 2000000] [--repeat 3] [key=value ...]

Encodes CORPUS (through the corpus cache), then runs the kernel directly (no progress bar, logs or
checkpoints) on the first ``--words`` words of each worker's span, ``--repeat`` times from the same
start, and prints the best ns per pair and words/s. Extra ``key=value`` arguments override the config
(e.g. ``batch=pairs num_sampled=10``). Warm-up compiles or loads the cached kernel first. Thread CPU
time per pair is printed beside wall time: on a machine shared with other processes it is the steadier
figure (it still includes cache misses, not time spent waiting for a core).
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time

import numpy as np
import yaml


def main() -> None:
    from w2v.config import apply_overrides, load_config
    from w2v.dataset import prepare
    from w2v.train import Trainer

    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--words", type=int, default=2_000_000, help="words per worker per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache-dir", default="~/.cache/w2v")
    ap.add_argument("overrides", nargs="*", help="config key=value")
    args = ap.parse_intermixed_args()
    extra = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    cfg = apply_overrides(load_config(overrides={"workers": args.workers, "cache_dir": args.cache_dir}), extra,
                          "command line")
    ds = prepare([args.corpus], cfg)
    trainer = Trainer(ds, cfg)
    trainer.job_words = args.words
    empty = np.zeros((0, 2), np.int32)
    snapshot = [(w.cursor.copy(), w.stream.rng.copy(), w.neg.rng.copy()) for w in trainer.workers]

    def one_round():
        for w, (cur, r1, r2) in zip(trainer.workers, snapshot, strict=True):
            w.cursor[:], w.stream.rng[:], w.neg.rng[:] = cur, r1, r2
            w.totals[:] = 0
        cpu = []

        def job(w):
            t0 = time.thread_time()
            trainer._train_job(w, 0, empty)
            cpu.append(time.thread_time() - t0)

        threads = [threading.Thread(target=job, args=(w,)) for w in trainer.workers]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        pairs = sum(w.totals[1] for w in trainer.workers)
        words = sum(w.totals[0] for w in trainer.workers)
        return wall, pairs, words, sum(cpu)

    trainer.job_words = 1000
    one_round()  # compile or load the cached kernel
    trainer.job_words = args.words
    results = [one_round() for _ in range(args.repeat)]
    wall, pairs, words, cpu = min(results)
    print(f"batch={cfg.batch} num_sampled={cfg.num_sampled} dim={cfg.dim} workers={args.workers}: "
          f"{wall / pairs * 1e9 * args.workers:.0f} ns/pair per worker (wall), {cpu / pairs * 1e9:.0f} ns/pair of "
          f"thread CPU time, {words / wall:,.0f} words/s, "
          f"{pairs / words:.2f} pairs/word (best of {args.repeat}: " + ", ".join(f"{r[0]:.2f}s" for r in results) + ")")
    from llvmlite import binding

    print(f"CPU: {cpu_model()} (LLVM target {binding.get_host_cpu_name()}); load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")


def cpu_model() -> str:
    """lscpu's model name (from /proc/cpuinfo), or what the platform says."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
