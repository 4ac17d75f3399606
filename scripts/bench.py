"""Train w2v and gensim on one corpus in one run; print speed, memory and quality side by side.

    .venv/bin/python scripts/bench.py CORPUS [--workers 2] [--epochs 5] [--cold] [--w2v-arg=--num-sampled=7 ...]

Both tools get the same dim, window, epochs, min_count, sample and threads; w2v keeps its own NCE
defaults (num_sampled, batch size, learning rate) unless --w2v-arg says otherwise, gensim its
skip-gram negative sampling (negative 5, alpha 0.025), in corpus_file mode (its fastest).
words/s = corpus tokens x epochs / wall seconds of the whole command: `w2v train` as a user runs
it (with a warm corpus cache: a first, untimed run fills it; with --cold, the first run after a clean
install: empty corpus cache and empty Numba cache, so counting, encoding and compiling are timed
too), gensim's build plus train. Peak RSS
is each process's own. Quality: gensim's evaluate_word_analogies (restrict_vocab 30000, 3CosAdd)
and evaluate_word_pairs (Spearman) on the same files, for both tools' vectors. The last line is
`speed ratio w2v/gensim: X.XX`. Needs the test extra (gensim).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs a command and reports its wall time and peak RSS (this wrapper has no other children).
_MEASURE = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": rc, "wall": wall, "rss_mib": rss}))
"""

_GENSIM = r"""
import sys
from gensim.models import Word2Vec
corpus, out, workers, epochs, dim, window, min_count, sample = sys.argv[1:9]
m = Word2Vec(corpus_file=corpus, sg=1, negative=5, hs=0, vector_size=int(dim), window=int(window),
             epochs=int(epochs), min_count=int(min_count), sample=float(sample), workers=int(workers), seed=1)
m.wv.save_word2vec_format(out)
"""


def measure(cmd: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        sys.exit(f"failed ({result['rc']}): {' '.join(cmd)}\n{out.stderr[-2000:]}")
    return result


def quality(vectors: Path, analogies: Path, similarity: Path) -> dict:
    from gensim.models import KeyedVectors

    kv = KeyedVectors.load_word2vec_format(str(vectors))
    analogy, _ = kv.evaluate_word_analogies(str(analogies), restrict_vocab=30000)
    pearson, spearman, oov = kv.evaluate_word_pairs(str(similarity))
    return {"analogy": analogy, "spearman": spearman.statistic, "vocab": len(kv)}


def count_tokens(corpus: Path) -> int:
    n = 0
    with open(corpus, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += len(chunk.split())
    return n  # chunk borders may split a token in two: off by at most a few per 16 MB


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--sample", type=float, default=1e-3)
    ap.add_argument("--analogies", type=Path, default=ROOT / "data" / "questions-words.txt")
    ap.add_argument("--similarity", type=Path, default=ROOT / "data" / "wordsim353.tsv")
    ap.add_argument("--w2v-arg", action="append", default=[], help="extra `w2v train` argument, repeatable")
    ap.add_argument("--skip-gensim", action="store_true")
    ap.add_argument("--cold", action="store_true", help="no warm-up: empty corpus and Numba caches, as a first run")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="w2v-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tokens = count_tokens(args.corpus)
    common = ["--dim", str(args.dim), "--window", str(args.window), "--epochs", str(args.epochs),
              "--min-count", str(args.min_count), "--sample", str(args.sample), "--workers", str(args.workers)]
    w2v = [str(Path(sys.executable).parent / "w2v"), "train", str(args.corpus), *common, "--quiet",
           "--cache-dir", str(work / "cache"), *args.w2v_arg]
    if args.cold:  # a Numba cache of its own, empty, like a fresh install's
        os.environ["NUMBA_CACHE_DIR"] = str(work / "numba-cache")
    else:  # fill the corpus cache (and Numba's) untimed, as a user's second run would find them
        measure(w2v + ["--epochs", "1", "--output", str(work / "warm")])  # the last --epochs wins
    rows = {}
    run = measure(w2v + ["--output", str(work / "w2v")])
    rows["w2v"] = {**run, **quality(work / "w2v" / "vectors.txt", args.analogies, args.similarity)}
    if not args.skip_gensim:
        run = measure([sys.executable, "-c", _GENSIM, str(args.corpus), str(work / "gensim.txt"),
                       str(args.workers), str(args.epochs), str(args.dim), str(args.window),
                       str(args.min_count), str(args.sample)])
        rows["gensim"] = {**run, **quality(work / "gensim.txt", args.analogies, args.similarity)}
    print(f"corpus {args.corpus} ({tokens:,} tokens), {args.epochs} epochs, {args.workers} threads, "
          f"dim {args.dim}, window {args.window}, min_count {args.min_count}, sample {args.sample}")
    print(f"w2v extra args: {' '.join(args.w2v_arg) or '(defaults)'}; caches {'cold' if args.cold else 'warm'}")
    print("| tool | wall s | words/s | peak RSS MiB | analogy | WS353 Spearman | vocab |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        r["words_per_sec"] = tokens * args.epochs / r["wall"]
        print(f"| {name} | {r['wall']:.1f} | {r['words_per_sec']:,.0f} | {r['rss_mib']:.0f} | "
              f"{r['analogy']:.2%} | {r['spearman']:.3f} | {r['vocab']:,} |")
    if "gensim" in rows:
        print(f"speed ratio w2v/gensim: {rows['w2v']['words_per_sec'] / rows['gensim']['words_per_sec']:.2f}")


if __name__ == "__main__":
    main()
