"""One worker against several: whole `w2v train` runs, wall clock, alternating, best of the rounds.

    .venv/bin/python scripts/bench_workers.py CORPUS [--workers 1 2] [--epochs 5 2] [--rounds 2]
        [--w2v-arg=...] [--gensim]

After one untimed 1-epoch run (the corpus cache and Numba's kernels warm), each round runs every
worker count once, for each --epochs value, one after the other (so a slow phase of the host hits
both). A run is the command a user types, timed from its start to its exit; beside its wall clock
it prints the training seconds (the run's log.jsonl), words/s and CPU seconds (user + system). CPU
seconds over work done tell the host from the program: when two workers spend the CPU seconds one
spends, the work runs in parallel and a slower wall clock is a slower host, not a worse split.
The summary gives, per --epochs value, the best wall clock of each worker count and its ratio to
one worker's best ("1 -> 2 workers: 1.86x"), the same for training seconds alone, and each round's
ratio. The first lines give the CPU (lscpu's model name, avx512f or not) and the load average.

With --gensim, each round also runs gensim (skip-gram, negative 5, corpus_file mode; w2v's default
dim, window, min_count and sample) with the same worker counts and epochs, right after w2v's runs:
a peer's scaling on the same host in the same minutes, which tells what the host allows from what
w2v's split does. Its training seconds are those of its `train()` call. Needs the test extra.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_step import cpu_model  # scripts/ is on the path when a script of it runs

from w2v.config import Config

# gensim as bench.py runs it (skip-gram, negative 5, corpus_file), its build and training timed
# apart: prints {"train": seconds, "words": words trained}.
_GENSIM = r"""
import json, sys, time
from gensim.models import Word2Vec
corpus, out, workers, epochs, dim, window, min_count, sample = sys.argv[1:9]
m = Word2Vec(sg=1, negative=5, hs=0, vector_size=int(dim), window=int(window), min_count=int(min_count),
             sample=float(sample), workers=int(workers), seed=1)
m.build_vocab(corpus_file=corpus)
t = time.perf_counter()
m.train(corpus_file=corpus, total_words=m.corpus_total_words, epochs=int(epochs))
train = time.perf_counter() - t
m.wv.save_word2vec_format(out)
print(json.dumps({"train": train, "words": m.corpus_total_words * int(epochs)}))
"""


def timed(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    """Runs a command to its exit -> (the process, wall seconds, CPU seconds: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return done, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(corpus: str, out: Path, epochs: int, workers: int, extra: list[str]) -> dict:
    """One `w2v train` from start to exit: wall and CPU seconds, and the training seconds it logged."""
    cmd = [str(Path(sys.executable).with_name("w2v")), "train", corpus, "--epochs", str(epochs), "--workers",
           str(workers), "--output", str(out), "--overwrite", "--quiet", *extra]
    _, wall, cpu = timed(cmd)
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    return {"tool": "w2v", "epochs": epochs, "workers": workers, "wall": wall, "train": last["seconds"],
            "words": last["words"], "cpu": cpu}


def run_gensim(corpus: str, out: Path, epochs: int, workers: int) -> dict:
    """gensim from start to exit (vocabulary, training, saving), its training seconds apart; the
    settings w2v trains with by default."""
    cfg = Config()
    done, wall, cpu = timed([sys.executable, "-c", _GENSIM, corpus, str(out), str(workers), str(epochs),
                             str(cfg.dim), str(cfg.window), str(cfg.min_count), str(cfg.sample)])
    res = json.loads(done.stdout.strip().splitlines()[-1])
    return {"tool": "gensim", "epochs": epochs, "workers": workers, "wall": wall, "train": res["train"],
            "words": res["words"], "cpu": cpu}


def avx512() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return "avx512f" if any(line.startswith("flags") and " avx512f" in line for line in fh) else "no avx512f"
    except OSError:
        return "flags unknown"


def _prefix(tool: str) -> str:
    """w2v's lines unprefixed, a peer's prefixed with its name."""
    return "" if tool == "w2v" else f"{tool}: "


def summary(runs: list[dict], counts: list[int]) -> list[str]:
    """Per tool and --epochs value: best walls, their ratio, training alone, each round's ratio."""
    lines = []
    for tool, epochs in dict.fromkeys((r.get("tool", "w2v"), r["epochs"]) for r in runs):
        mine = [r for r in runs if r.get("tool", "w2v") == tool and r["epochs"] == epochs]
        prefix = _prefix(tool)
        best = {w: min((r for r in mine if r["workers"] == w), key=lambda r: r["wall"]) for w in counts}
        fastest_train = {w: min(r["train"] for r in mine if r["workers"] == w) for w in counts}
        one = counts[0]
        for w in counts[1:]:
            rounds = [a["wall"] / b["wall"] for a, b in zip((r for r in mine if r["workers"] == one),
                                                            (r for r in mine if r["workers"] == w), strict=True)]
            lines.append(f"{prefix}{epochs} epochs, {one} -> {w} workers: "
                         f"{best[one]['wall'] / best[w]['wall']:.2f}x wall "
                         f"(best {best[one]['wall']:.1f} / {best[w]['wall']:.1f} s), "
                         f"{fastest_train[one] / fastest_train[w]:.2f}x training alone; per round "
                         + ", ".join(f"{x:.2f}x" for x in rounds))
    return lines


def report(res: dict, round_: int) -> None:
    print(f"{_prefix(res['tool'])}{res['epochs']} epochs, round {round_}, {res['workers']} worker(s): "
          f"wall {res['wall']:.1f} s, "
          f"training {res['train']:.1f} s, {res['words'] / res['train'] / 1e6:.2f}M words/s, CPU {res['cpu']:.1f} s",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, nargs="+", default=[5])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--w2v-arg", action="append", default=[], help="an extra `w2v train` argument (repeatable)")
    ap.add_argument("--gensim", action="store_true", help="also run gensim with the same workers and epochs")
    ap.add_argument("--json", type=Path, default=None, help="also write every run as JSON here")
    args = ap.parse_args()
    if len(args.workers) < 2 or args.rounds < 1:
        ap.error("give at least two worker counts and one round")
    print(f"CPU: {cpu_model()} ({avx512()}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    runs = []
    with tempfile.TemporaryDirectory(prefix="w2v-bench-workers-") as tmp:
        out = Path(tmp) / "run"
        run(args.corpus, out, 1, args.workers[0], args.w2v_arg)  # caches warm; not timed
        for epochs in args.epochs:
            for r in range(1, args.rounds + 1):
                for w in args.workers:
                    res = run(args.corpus, out, epochs, w, args.w2v_arg)
                    runs.append({**res, "round": r})
                    report(res, r)
                if args.gensim:
                    for w in args.workers:
                        res = run_gensim(args.corpus, Path(tmp) / "gensim.txt", epochs, w)
                        runs.append({**res, "round": r})
                        report(res, r)
    for line in summary(runs, args.workers):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
