"""`w2v phrases` against word2vec's word2phrase on one corpus, in one run: time, memory, agreement.

    .venv/bin/python scripts/bench_phrases.py CORPUS --word2phrase /tmp/word2phrase [--min-count 5] [--threshold 100]

word2phrase is word2phrase.c from github.com/tmikolov/word2vec, built by you (`gcc -O3
word2phrase.c -o word2phrase -lm`); it is not part of this project. Each tool runs once as a user
runs it (`w2v phrases` of this checkout through the CLI, after an untimed run on a tiny file has compiled its
kernels), under `/usr/bin/time -v`: wall seconds and peak RSS come from there. Agreement: the
distinct joined pairs of each output (tokens holding the delimiter that the input does not
have) and their intersection over union. The last lines are the ratios w2v/word2phrase.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def timed(cmd: list[str]) -> dict:
    """Wall seconds and peak RSS of one command, from GNU time's verbose report."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=ENV)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", out.stderr).group(1)
    seconds = sum(float(part) * 60 ** i for i, part in enumerate(reversed(wall.split(":"))))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return {"seconds": seconds, "rss_mib": rss_kb / 1024, "stderr": out.stderr}


def joined_pairs(path: Path, delimiter: str, exclude: set[str]) -> tuple[set[str], int]:
    """Distinct tokens holding the delimiter (less those already in the input), and how many."""
    distinct, total = set(), 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            for token in line.split():
                if delimiter in token and token not in exclude:
                    distinct.add(token)
                    total += 1
    return distinct, total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="one text file (word2phrase reads one file)")
    ap.add_argument("--word2phrase", type=Path, required=True, help="the built word2phrase binary")
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=100.0)
    ap.add_argument("--workdir", type=Path, default=None, help="where the outputs go (default: a temporary dir)")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-phrases-"))
    work.mkdir(parents=True, exist_ok=True)
    w2v = [sys.executable, "-m", "w2v.cli", "phrases"]
    warm = work / "warm.txt"
    warm.write_text("a b c\n" * 10)
    subprocess.run([*w2v, str(warm), "--output", str(work / "warm-out.txt"), "-q"], check=True, env=ENV)

    params = ["-min-count", str(args.min_count), "-threshold", str(args.threshold)]
    out_c, out_w = work / "word2phrase.txt", work / "w2v.txt"
    c = timed([str(args.word2phrase), "-train", str(args.corpus), "-output", str(out_c), *params, "-debug", "0"])
    w = timed([*w2v, str(args.corpus), "--output", str(out_w), "--min-count", str(args.min_count),
               "--threshold", str(args.threshold)])
    print(w["stderr"].split("\tCommand being timed")[0].rstrip())

    already, _ = joined_pairs(args.corpus, "_", set())
    pairs_c, tokens_c = joined_pairs(out_c, "_", already)
    pairs_w, tokens_w = joined_pairs(out_w, "_", already)
    both = pairs_c & pairs_w
    iou = len(both) / max(1, len(pairs_c | pairs_w))

    print(f"\ncorpus {args.corpus}, min_count {args.min_count}, threshold {args.threshold:g}")
    print(f"{'tool':<14}{'wall s':>9}{'peak RSS MiB':>14}{'distinct pairs':>16}{'joined tokens':>15}")
    for name, r, pairs, tokens in (("word2phrase", c, pairs_c, tokens_c), ("w2v phrases", w, pairs_w, tokens_w)):
        print(f"{name:<14}{r['seconds']:>9.2f}{r['rss_mib']:>14,.0f}{len(pairs):>16,}{tokens:>15,}")
    print(f"only word2phrase: {len(pairs_c - pairs_w):,} {sorted(pairs_c - pairs_w)[:8]}")
    print(f"only w2v: {len(pairs_w - pairs_c):,} {sorted(pairs_w - pairs_c)[:8]}")
    print(f"IoU of distinct joined pairs: {iou:.4%}")
    print(f"time ratio w2v/word2phrase: {w['seconds'] / c['seconds']:.3f}")
    print(f"memory ratio w2v/word2phrase: {w['rss_mib'] / c['rss_mib']:.3f}")


if __name__ == "__main__":
    main()
