"""Interrupt `w2v train` at many moments, by Ctrl-C (once, or again and again) and by kill -9, and
check every outcome: complete results, or a checkpoint that `--resume` finishes byte-identically
to an uninterrupted run, and no temporary file left once the run is finished.

    .venv/bin/python scripts/stress_interrupt.py [--moments 60] [--corpus FILE] [--keep DIR] [--ray]

Every run is `w2v train CORPUS --workers 1 --seed 5` with a checkpoint every 0.3 s, in its own
process group, signalled as a terminal does (the whole group). Moments are spread over the run's
wall time from its start (Python's and click's start, counting, encoding, training, the final writes), over the training
time from the first log.jsonl line, and over the 400 ms after the line `trained ...`, which is
logged once training ended and before the checkpoint and the vectors are written; a third of the
moments each.

With --ray every run is `--backend ray --nodes 2 --workers 1` on a local Ray instance the run
starts itself (two actors), so the moments cover Ray's start, counting, actor creation and the
syncs. Ray runs are not bit-reproducible (the syncs follow the clock), so there "equal" means the
same words in the same order with finite vectors; and once the run has exited, every process of
its session (gcs_server, raylet, the actors) must be gone within 30 s. Outcomes:

  complete   vectors.txt is there (and equal to the uninterrupted run's)
  resumed    a checkpoint: `w2v train --resume` finished it, equal to the uninterrupted run's
  no run     kill -9 before the first checkpoint: the directory holds no run, and `w2v train`
             into it (no --overwrite needed) gives the uninterrupted run's vectors
  FAILED     anything else (printed, and the exit status is 1)

Ctrl-C must end with status 130 (0 if the run had ended before it) and its last line must say what
is on disk; kill -9 may leave "no run" only before the first checkpoint. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W2V = [sys.executable, "-m", "w2v.cli"]
# moments from the very start: from w2v's first instruction on, a Ctrl-C is one line and 130
STARTUP = 0.0
ARGS = ["--workers", "1", "--seed", "5", "--epochs", "6", "--dim", "100", "--min-count", "2", "--no-cache"]
RAY_ARGS = ["--backend", "ray", "--nodes", "2", "--workers", "1", "--seed", "5", "--epochs", "30", "--dim", "100",
            "--min-count", "2", "--no-cache"]


def exact(vectors: bytes, reference: bytes) -> bool:
    return vectors == reference


def same_words(vectors: bytes, reference: bytes) -> bool:
    """The same header and words in the same order, every value finite (a Ray run's vectors)."""
    got, want = vectors.decode().splitlines(), reference.decode().splitlines()
    if len(got) != len(want) or got[0] != want[0]:
        return False
    for a, b in zip(got[1:], want[1:], strict=True):
        word, *values = a.split(" ")
        if word != b.split(" ", 1)[0] or len(values) != len(b.split(" ")) - 1:
            return False
        if not all(math.isfinite(float(v)) for v in values):
            return False
    return True


def session_processes(sid: int) -> list[tuple[int, str]]:
    """(pid, name) of the processes in session ``sid`` (the run and whatever it started: Ray's)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    head, tail = fh.read().rsplit(")", 1)
            except OSError:
                continue
            if int(tail.split()[3]) == sid:
                found.append((int(name), head.split("(", 1)[1]))
    return found


def left_behind(sid: int, wait: float = 30.0) -> list[str]:
    """The names of the processes of session ``sid`` still there after ``wait`` seconds (then
    killed, so that the next moment starts clean)."""
    deadline = time.monotonic() + wait
    while (procs := session_processes(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, _ in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted({name for _, name in procs})


def temporaries(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]


def _as_from_a_terminal() -> None:
    """SIGINT and SIGTERM at their defaults, whatever this script inherited (a script started with
    `&` has SIGINT ignored, and so would every w2v it starts)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(corpus: Path, out: Path, config: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*W2V, "train", str(corpus), "--output", str(out), "--config", str(config), *args],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_as_from_a_terminal)


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def interrupt(proc: subprocess.Popen, kind: str, anchor: str, delay: float, out: Path) -> list[str]:
    """Wait for the anchor (the start, the first log.jsonl line, or the `trained` line), then
    ``delay`` seconds, then do ``kind``; returns the stderr lines."""
    lines: list[str] = []
    if anchor == "training":
        while not (out / "log.jsonl").exists() and proc.poll() is None:
            time.sleep(0.005)
    if anchor == "trained":
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("trained "):
                break
    time.sleep(delay)
    if kind == "kill -9":
        signal_group(proc, signal.SIGKILL)
    elif kind == "ctrl-c":
        signal_group(proc, signal.SIGINT)
    else:  # ctrl-c again and again, every 20 ms, until it exits
        for _ in range(100):
            if proc.poll() is not None:
                break
            signal_group(proc, signal.SIGINT)
            time.sleep(0.02)
    lines += proc.stderr.read().splitlines()
    proc.wait()
    return lines


def check(kind: str, out: Path, lines: list[str], rc: int, reference: bytes, corpus: Path,
          config: Path, args: list[str], equal) -> tuple[str, str]:
    """(outcome, problem or '')."""
    text = "\n".join(lines[-5:])
    if any("Traceback" in ln or ln.startswith("Aborted") for ln in lines):
        return "FAILED", f"a traceback or click's Aborted:\n{text}"
    if kind == "kill -9":
        if rc not in (-signal.SIGKILL, 0):
            return "FAILED", f"exit status {rc}"
    elif rc not in (130, 0):
        return "FAILED", f"exit status {rc} after Ctrl-C:\n{text}"
    last = lines[-1] if lines else ""
    before = ("interrupted before training started" in last  # or in Python's, click's start:
              or last in ("w2v: error: interrupted: nothing was written", "w2v: error: interrupted"))
    said = last.startswith("  w2v train --resume") or last.startswith("interrupted after") or before
    if rc == 130 and not said:
        return "FAILED", f"the last line does not say what is on disk:\n{text}"
    if (out / "vectors.txt").exists():
        if not equal((out / "vectors.txt").read_bytes(), reference):
            return "FAILED", "vectors.txt differs from the uninterrupted run's"
        if kind != "kill -9" and temporaries(out):
            return "FAILED", f"temporaries left: {temporaries(out)}"
        return "complete", ""
    if (out / "checkpoint.npz").exists():
        done = subprocess.run([*W2V, "train", "--resume", str(out), "--quiet"], cwd=ROOT, capture_output=True,
                              text=True)
        if done.returncode != 0:
            return "FAILED", f"--resume failed: {done.stderr.strip()[-500:]}"
        if not equal((out / "vectors.txt").read_bytes(), reference):
            return "FAILED", "the resumed run's vectors.txt differs from the uninterrupted run's"
        if temporaries(out) or (out / "vectors.partial.txt").exists():
            return "FAILED", f"left after the resume: {temporaries(out)} {list(out.glob('vectors.partial.txt'))}"
        return "resumed", ""
    if kind != "kill -9" and rc == 130 and before:
        if out.exists():
            return "FAILED", f"Ctrl-C before training left {sorted(p.name for p in out.iterdir())}"
        return "no run", ""
    if kind != "kill -9":
        return "FAILED", f"Ctrl-C left neither results nor a checkpoint:\n{text}"
    again = subprocess.run([*W2V, "train", str(corpus), "--output", str(out), "--config", str(config), *args,
                            "--quiet"], cwd=ROOT, capture_output=True, text=True)
    if again.returncode != 0:
        return "FAILED", f"a new run into the killed run's directory failed: {again.stderr.strip()[-500:]}"
    if not equal((out / "vectors.txt").read_bytes(), reference) or temporaries(out):
        return "FAILED", "the new run's vectors differ, or temporaries are left"
    return "no run", ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moments", type=int, default=60)
    ap.add_argument("--corpus", type=Path, default=None, help="default: the first 300 kB of data/demo.txt")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep the run directories")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ray", action="store_true", help="the Ray backend: a local instance, 2 actors")
    a = ap.parse_args()
    args, equal = (RAY_ARGS, same_words) if a.ray else (ARGS, exact)
    work = a.keep or Path(tempfile.mkdtemp(prefix="w2v-stress-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = a.corpus
    if corpus is None:
        corpus = work / "corpus.txt"
        with open(ROOT / "data" / "demo.txt", "rb") as fh:
            corpus.write_bytes(fh.read(300_000))
    config = work / "stress.yaml"
    config.write_text("checkpoint_interval: 0.3\n")
    ref = work / "reference"
    for _ in range(2):  # the first run may compile the kernels: time the second
        shutil.rmtree(ref, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([*W2V, "train", str(corpus), "--output", str(ref), "--config", str(config), *args, "--quiet"],
                       cwd=ROOT, check=True)
        wall = time.perf_counter() - t
    reference = (ref / "vectors.txt").read_bytes()
    training = json.loads((ref / "log.jsonl").read_text().splitlines()[-1])["seconds"]
    print(f"uninterrupted run: {wall:.2f} s wall, {training:.2f} s training; {a.moments} moments follow", flush=True)
    rng = random.Random(a.seed)
    kinds = ["ctrl-c", "ctrl-c again and again", "kill -9"]
    outcomes: Counter = Counter()
    failures = 0
    for i in range(a.moments):
        kind = kinds[i % 3]
        anchor = ("start", "training", "trained")[(i // 3) % 3]
        delay = {"start": rng.uniform(STARTUP, wall * 1.05), "training": rng.uniform(0, training),
                 "trained": rng.uniform(0, 0.4)}[anchor]
        out = work / f"run{i:03d}"
        shutil.rmtree(out, ignore_errors=True)
        proc = start(corpus, out, config, args)
        lines = interrupt(proc, kind, anchor, delay, out)
        stray = left_behind(proc.pid)  # the run is its session's leader: Ray's processes share it
        outcome, problem = check(kind, out, lines, proc.returncode, reference, corpus, config, args, equal)
        if stray and outcome != "FAILED":
            outcome, problem = "FAILED", f"processes left 30 s after the exit: {', '.join(stray)}"
        outcomes[(kind, anchor, outcome)] += 1
        print(f"{i + 1:3d}  {kind:24s} {anchor:8s} +{delay:5.2f}s  exit {proc.returncode:4d}  {outcome}"
              + (f"\n     {problem}" if problem else ""), flush=True)
        failures += outcome == "FAILED"
        if not a.keep and outcome != "FAILED":
            shutil.rmtree(out, ignore_errors=True)
    print(f"\n{a.moments} moments:")
    for (kind, anchor, outcome), n in sorted(outcomes.items()):
        print(f"  {kind:24s} from {anchor:8s} {outcome:9s} {n}")
    print(f"{failures} failed")
    if not a.keep and not failures:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
