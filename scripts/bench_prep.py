"""Time the preparation of a corpus (count words, build the vocabulary, encode the id stream):
the old Python path against the Numba tokenizer, whitespace against words, 1 against 2 threads,
with Numba's cache cold (compiled in the run) and warm; peak RSS of each.

    python scripts/bench_prep.py ../shared/corpora/big.txt --rounds 2

Every measurement runs in a fresh process (so RSS is its own and a cold cache really is cold);
the time is the preparation alone (wall; "cpu s": CPU time of all its threads, which a loaded
machine does not inflate as much), after the imports (reported beside it, with the RSS after them). "numba" runs
``dataset.prepare`` with a corpus cache in a fresh temporary directory (count, encode, write the
cache, check it: what the first ``w2v train`` of a corpus does) and, with ``--no-cache``, in memory;
"python" counts with ``corpus.iter_segments`` and a Counter and encodes with ``dataset._encode``
(the path before the Numba tokenizer, in memory: no cache written).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(args) -> None:
    t0 = time.perf_counter()
    import resource

    import numpy as np

    from w2v.config import Config
    from w2v.dataset import _encode, prepare
    from w2v.vocab import build_vocab
    imported = time.perf_counter() - t0
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cache = tempfile.mkdtemp(prefix="w2v-bench-prep-") if args.cache else ""
    cfg = Config(tokenize=args.mode, workers=args.threads, cache_dir=cache, min_count=5,
                 chunk_bytes=args.chunk_bytes, lowercase=args.lowercase)
    t, cpu = time.perf_counter(), time.process_time()
    if args.path == "python":
        from collections import Counter

        from w2v.corpus import ReadStats, iter_segments
        counts = Counter()
        for tokens, _ in iter_segments([args.corpus], cfg.lowercase, cfg.chunk_bytes, ReadStats(), cfg.tokenize):
            counts.update(tokens)
        vocab = build_vocab(counts, cfg.min_count)
        del counts
        ids = np.concatenate(list(_encode([args.corpus], vocab, cfg)))
        n_ids = len(ids)
    else:
        ds = prepare([args.corpus], cfg)
        vocab, n_ids = ds.vocab, len(ds.ids)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    if cache:
        import shutil
        shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "import_s": imported, "vocab": len(vocab), "n_ids": n_ids,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_after_import_mib": rss_imported / 1024}))


def punctuate(corpus: str, out: Path, limit_bytes: int) -> None:
    """A raw-text look-alike of a normalised corpus (its first ``limit_bytes``): sentences
    capitalised and ended by '.', commas, quotes, an apostrophe now and then (seeded)."""
    import random

    rng = random.Random(0)
    with open(corpus, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for line in src:
            words = line.split()
            cap = True
            for i, w in enumerate(words):
                if cap:
                    w = w.capitalize()
                    cap = False
                r = rng.random()
                if r < 0.08:
                    w += ","
                elif r < 0.14:
                    w += "."
                    cap = True
                elif r < 0.16:
                    w = f'"{w}"'
                elif r < 0.17:
                    w += "'s"
                words[i] = w
            dst.write(" ".join(words) + "\n")
            if dst.tell() > limit_bytes:
                break


def measure(corpus, path, mode, threads, cache, numba_dir, chunk_bytes, lowercase) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(numba_dir), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, __file__, "--child", str(corpus), "--path", path, "--mode", mode,
           "--threads", str(threads), "--chunk-bytes", str(chunk_bytes)]
    cmd += ["--cache"] if cache else []
    cmd += ["--lowercase"] if lowercase else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--chunk-bytes", type=int, default=1 << 20)
    ap.add_argument("--lowercase", action="store_true")
    ap.add_argument("--no-python", action="store_true", help="skip the old Python path (slow)")
    ap.add_argument("--raw-mb", type=float, default=0,
                    help="time a raw-text look-alike of the corpus's first N MB instead (punctuation, capitals)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--path", default="numba", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="whitespace", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--cache", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")),
        platform.processor())
    from w2v.corpus import corpus_files

    if args.raw_mb:
        raw_dir = tempfile.TemporaryDirectory(prefix="w2v-bench-raw-")  # removed at exit
        raw = Path(raw_dir.name) / "raw.txt"
        punctuate(args.corpus, raw, int(args.raw_mb * 2**20))
        args.corpus = str(raw)
    size = sum(f.stat().st_size for f in corpus_files([args.corpus]))
    print(f"corpus {args.corpus} ({size / 2**20:.1f} MiB); CPU {cpu}; "
          f"{os.cpu_count()} cores; load average before {os.getloadavg()[0]:.2f}")
    runs = []
    if not args.no_python:
        runs += [("python", "whitespace", 1, False, "warm")]  # (words in Python: a reference, minutes)
    for mode in ("whitespace", "words"):
        for threads in (1, 2):
            runs.append(("numba", mode, threads, True, "warm"))
        runs.append(("numba", mode, 2, False, "warm"))
    runs += [("numba", "whitespace", 2, True, "cold")]
    with tempfile.TemporaryDirectory(prefix="w2v-bench-numba-") as warm_dir:
        measure(args.corpus, "numba", "words", 1, False, warm_dir, 1 << 20, False)  # fill the warm cache
        print(f"{'path':7} {'tokenize':10} {'threads':>7} {'cache':>8} {'numba':>6} {'best s':>7} "
              f"{'rounds s':>14} {'cpu s':>6} {'import s':>8} {'RSS MiB':>7} {'peak RSS MiB':>12} {'vocab':>7} "
              f"{'ids':>10}  load")
        for path, mode, threads, cache, numba_state in runs:
            results = []
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory(prefix="w2v-bench-cold-") as cold_dir:
                    numba_dir = warm_dir if numba_state == "warm" else cold_dir
                    results.append(measure(args.corpus, path, mode, threads, cache, numba_dir, args.chunk_bytes,
                                           args.lowercase))
            best = min(results, key=lambda r: r["seconds"])
            rounds = ", ".join(f"{r['seconds']:.2f}" for r in results)
            peak = max(r["peak_rss_mib"] for r in results)
            print(f"{path:7} {mode:10} {threads:>7} {'disk' if cache else 'memory':>8} {numba_state:>6} "
                  f"{best['seconds']:7.2f} {rounds:>14} {best['cpu_s']:6.2f} "
                  f"{best['import_s']:8.2f} {best['rss_after_import_mib']:7.0f} {peak:12.0f} {best['vocab']:>7} "
                  f"{best['n_ids']:>10}  {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
