"""How fast Ctrl-C stops a run, and what resuming on another worker count costs.

    .venv/bin/python scripts/bench_stop_resume.py stop CORPUS [--runs 3]
    .venv/bin/python scripts/bench_stop_resume.py resplit [CORPUS] [--after 1.5]

stop: `w2v train CORPUS --epochs 50` (default workers), SIGINT 2 s after the first log line;
prints when checkpoint.npz appeared and when the process was gone, after the signal.
resplit: the demo's config for 15 epochs, stopped by SIGINT --after seconds into training, resumed with
`--workers` 1->1, 1->2 and 2->1; prints the words trained in all against the plan, and eval's
figures (1->1 is compared byte for byte with an uninterrupted 1-worker run). Run directories
go under a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

W2V = [sys.executable, "-m", "w2v.cli"]


def _start(args, out: Path) -> subprocess.Popen:
    p = subprocess.Popen([*W2V, "train", *args, "--output", str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    while not (out / "log.jsonl").exists():
        if p.poll() is not None:
            sys.exit(p.stderr.read())
        time.sleep(0.05)
    return p


def stop(corpus: str, runs: int, tmp: Path) -> None:
    for k in range(runs):
        out = tmp / f"stop{k}"
        p = _start([corpus, "--epochs", "50", "--cache-dir", str(tmp / "cache")], out)
        time.sleep(2.0)
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        ck, t_ck = out / "checkpoint.npz", None
        while p.poll() is None:
            if t_ck is None and ck.exists():
                t_ck = time.time() - t0
            time.sleep(0.01)
        gone = time.time() - t0
        if t_ck is None:
            t_ck = os.path.getmtime(ck) - t0
        print(f"run {k}: checkpoint on disk {t_ck:.2f}s after SIGINT, process gone after {gone:.2f}s, "
              f"exit {p.returncode}; {sum(1 for _ in open(out / 'vocab.txt')):,} words")


def resplit(corpus: str, tmp: Path, after_s: float) -> None:
    base = [corpus, "--config", "configs/default.yaml", "--cache-dir", str(tmp / "cache"), "--epochs", "15"]
    full = tmp / "full"
    subprocess.run([*W2V, "train", *base, "--workers", "1", "--output", str(full), "--quiet"], check=True)
    with np.load(full / "checkpoint.npz") as z:
        planned = int(z["words_done"])
    for before, after in [(1, 1), (1, 2), (2, 1)]:
        out = tmp / f"rs{before}{after}"
        p = _start([*base, "--workers", str(before)], out)
        time.sleep(after_s)
        p.send_signal(signal.SIGINT)
        p.wait()
        with np.load(out / "checkpoint.npz") as z:
            stopped = int(z["words_done"])
        r = subprocess.run([*W2V, "train", "--resume", str(out), "--workers", str(after)], capture_output=True,
                           text=True, check=True)
        with np.load(out / "checkpoint.npz") as z:
            done = int(z["words_done"])
        ev = subprocess.run([*W2V, "eval", str(out)], capture_output=True, text=True).stdout.splitlines()
        loss = [ln for ln in r.stderr.splitlines() if "trained" in ln][0].rsplit(", ", 1)[1]
        same = (out / "vectors.txt").read_bytes() == (full / "vectors.txt").read_bytes()
        print(f"{before}->{after} workers: stopped at {stopped:,} words; {done:,} in all (planned {planned:,}, "
              f"{done - planned:+,}); last epoch's loss {loss}; {ev[0].split(': ', 1)[1]}; {ev[-1].split(': ', 1)[1]}"
              f"; vectors identical to the uninterrupted 1-worker run: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["stop", "resplit"])
    ap.add_argument("corpus", nargs="?", default="data/demo.txt")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--after", type=float, default=1.5, help="resplit: seconds after the first log line to stop")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "stop":
            stop(args.corpus, args.runs, Path(tmp))
        else:
            resplit(args.corpus, Path(tmp), args.after)


if __name__ == "__main__":
    main()
