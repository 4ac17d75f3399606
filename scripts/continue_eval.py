"""Measure continued training (``w2v train B --init-from A``) against training from scratch.

    .venv/bin/python scripts/continue_eval.py CORPUS --workdir /tmp/cont [--epochs 3] [--workers 1]
        [--continue-alpha 0.025 --continue-alpha 0.05 ...] [--train-arg=--num-sampled=10 ...]

CORPUS is split by lines into halves A (first) and B (second). Runs, each ``--epochs`` epochs with
the branch's defaults (plus --train-arg): (1) A; (2) ``--init-from`` (1) on B, once per
--continue-alpha (none given: the default of a continued run); (3) B alone; (4) A and B together
from scratch. Each run is scored with ``w2v eval RUN/vectors.txt --json`` (Google analogies within
the 30,000 most frequent words, WordSim-353 Spearman). Also: whether every word reaching min_count
only in B has a vector in (2), and the overlap of the top-10 cosine neighbours of the 1,000 most
frequent words of (1) between (1) and each other run (among (1)'s words, and among all words).
Prints a table; --json writes the figures too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from w2v.io import read_vectors  # noqa: E402


def w2v(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "w2v.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    if done.returncode:
        sys.exit(f"failed: w2v {' '.join(map(str, args))}\n{done.stderr[-2000:]}")
    return done


def train(name, corpus, out: Path, train_args, extra=()) -> dict:
    t = time.perf_counter()
    w2v("train", *corpus, "--output", out, "--quiet", *train_args, *extra)
    seconds = time.perf_counter() - t
    result = json.loads(w2v("eval", out / "vectors.txt", "--json").stdout)
    analogy, similarity = result["analogies"][0], result["similarity"][0]
    return {"run": name, "analogy": analogy["accuracy"], "analogy_answered": analogy["total"],
            "ws353": similarity["spearman"], "seconds": seconds, "dir": str(out)}


def neighbours(words, vectors, queries, k=10, among=None):
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    index = {w: i for i, w in enumerate(words)}
    allowed = np.array([among is None or w in among for w in words])
    found = {}
    for lo in range(0, len(queries), 256):
        chunk = queries[lo:lo + 256]
        rows = np.array([index[w] for w in chunk])
        sims = unit[rows] @ unit.T
        sims[:, ~allowed] = -np.inf
        sims[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        for w, t in zip(chunk, top, strict=True):
            found[w] = {words[j] for j in t}
    return found


def overlap(base, other_dir: Path, queries, base_words) -> tuple[float, float, int]:
    words, vectors = read_vectors(Path(other_dir) / "vectors.txt")
    present = [q for q in queries if q in set(words)]
    restricted = neighbours(words, vectors, present, among=set(base_words))
    free = neighbours(words, vectors, present)
    mean = lambda found: float(np.mean([len(base[q] & found[q]) / 10 for q in present]))  # noqa: E731
    return mean(restricted), mean(free), len(present)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--cache-dir", default="/tmp/w2v-cache")
    ap.add_argument("--continue-alpha", type=float, action="append", default=[],
                    help="alpha of the continued run (repeat to compare several; none: its default)")
    ap.add_argument("--train-arg", action="append", default=[],
                    help="extra w2v train argument, e.g. --train-arg=--dim=50")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    lines = args.corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    half = len(lines) // 2
    a, b = work / "A.txt", work / "B.txt"
    a.write_text("".join(lines[:half]), encoding="utf-8")
    b.write_text("".join(lines[half:]), encoding="utf-8")
    train_args = ["--epochs", args.epochs, "--workers", args.workers, "--min-count", args.min_count,
                  "--cache-dir", args.cache_dir, *args.train_arg]

    rows = [train("(1) A", [a], work / "run_a", train_args)]
    continued = []
    for alpha in args.continue_alpha or [None]:
        extra = ["--init-from", work / "run_a"] + ([] if alpha is None else ["--alpha", alpha])
        name = f"(2) A, then B (--init-from{'' if alpha is None else f', alpha {alpha:g}'})"
        out = work / ("run_ab_cont" if alpha is None else f"run_ab_cont_{alpha:g}")
        continued.append(train(name, [b], out, train_args, extra))
    rows += continued
    rows.append(train("(3) B alone", [b], work / "run_b", train_args))
    rows.append(train("(4) A+B from scratch", [a, b], work / "run_ab", train_args))

    # words reaching min_count only in B: each needs a vector in every continued run
    a_words = set(read_vectors(work / "run_a" / "vectors.txt")[0])
    count_b = Counter(b.read_text(encoding="utf-8").split())
    only_b = {w for w, c in count_b.items() if c >= args.min_count and w not in a_words}
    for r in continued:
        got = set(read_vectors(Path(r["dir"]) / "vectors.txt")[0])
        r["new_words"] = len(only_b)
        r["new_words_missing"] = len(only_b - got)

    base_words, base_vectors = read_vectors(work / "run_a" / "vectors.txt")
    queries = base_words[:1000]
    base = neighbours(base_words, base_vectors, queries)
    for r in rows[1:]:
        r["top10_overlap_among_A_words"], r["top10_overlap_all_words"], r["overlap_queries"] = \
            overlap(base, Path(r["dir"]), queries, base_words)

    print(f"{'run':<42}{'analogy':>9}{'answered':>9}{'WS353':>8}{'top10 vs (1)':>14}{'(all words)':>12}{'s':>7}")
    for r in rows:
        ov = f"{r['top10_overlap_among_A_words']:.3f}" if "overlap_queries" in r else "-"
        ov_all = f"{r['top10_overlap_all_words']:.3f}" if "overlap_queries" in r else "-"
        print(f"{r['run']:<42}{r['analogy']:>9.2%}{r['analogy_answered']:>9}{r['ws353']:>8.3f}{ov:>14}"
              f"{ov_all:>12}{r['seconds']:>7.1f}")
    for r in continued:
        print(f"{r['run']}: {r['new_words'] - r['new_words_missing']} of the {r['new_words']} words reaching "
              f"min_count only in B have a vector")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
