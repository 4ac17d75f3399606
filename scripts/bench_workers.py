"""One worker against several: whole `w2v train` runs, wall clock, alternating, best of the rounds.

    .venv/bin/python scripts/bench_workers.py CORPUS [--workers 1 2] [--epochs 5 2] [--rounds 2] [--w2v-arg=...]

After one untimed 1-epoch run (the corpus cache and Numba's kernels warm), each round runs every
worker count once, for each --epochs value, one after the other (so a slow phase of the host hits
both). A run is the command a user types, timed from its start to its exit; beside its wall clock
it prints the training seconds (the run's log.jsonl), words/s and CPU seconds (user + system). CPU
seconds over work done tell the host from the program: when two workers spend the CPU seconds one
spends, the work runs in parallel and a slower wall clock is a slower host, not a worse split.
The summary gives, per --epochs value, the best wall clock of each worker count and its ratio to
one worker's best ("1 -> 2 workers: 1.86x"), the same for training seconds alone, and each round's
ratio. The first lines give the CPU (lscpu's model name, avx512f or not) and the load average.
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


def run(corpus: str, out: Path, epochs: int, workers: int, extra: list[str]) -> dict:
    """One `w2v train` from start to exit: wall and CPU seconds, and the training seconds it logged."""
    cmd = [str(Path(sys.executable).with_name("w2v")), "train", corpus, "--epochs", str(epochs), "--workers",
           str(workers), "--output", str(out), "--overwrite", "--quiet", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    last = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"epochs": epochs, "workers": workers, "wall": wall, "train": last["seconds"], "words": last["words"],
            "cpu": cpu}


def avx512() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return "avx512f" if any(line.startswith("flags") and " avx512f" in line for line in fh) else "no avx512f"
    except OSError:
        return "flags unknown"


def summary(runs: list[dict], counts: list[int]) -> list[str]:
    lines = []
    for epochs in dict.fromkeys(r["epochs"] for r in runs):
        mine = [r for r in runs if r["epochs"] == epochs]
        best = {w: min((r for r in mine if r["workers"] == w), key=lambda r: r["wall"]) for w in counts}
        fastest_train = {w: min(r["train"] for r in mine if r["workers"] == w) for w in counts}
        one = counts[0]
        for w in counts[1:]:
            rounds = [a["wall"] / b["wall"] for a, b in zip((r for r in mine if r["workers"] == one),
                                                            (r for r in mine if r["workers"] == w), strict=True)]
            lines.append(f"{epochs} epochs, {one} -> {w} workers: {best[one]['wall'] / best[w]['wall']:.2f}x wall "
                         f"(best {best[one]['wall']:.1f} / {best[w]['wall']:.1f} s), "
                         f"{fastest_train[one] / fastest_train[w]:.2f}x training alone; per round "
                         + ", ".join(f"{x:.2f}x" for x in rounds))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--epochs", type=int, nargs="+", default=[5])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--w2v-arg", action="append", default=[], help="an extra `w2v train` argument (repeatable)")
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
                    print(f"{epochs} epochs, round {r}, {w} worker(s): wall {res['wall']:.1f} s, training "
                          f"{res['train']:.1f} s, {res['words'] / res['train'] / 1e6:.2f}M words/s, "
                          f"CPU {res['cpu']:.1f} s", flush=True)
    for line in summary(runs, args.workers):
        print(line)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":
    main()
