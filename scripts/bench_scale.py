"""w2v and gensim on a corpus N times the size of TEXT: wall, words/s, peak RSS and where it fell.

    .venv/bin/python scripts/bench_scale.py TEXT --copies N [--workers 2] [--epochs 1] [--rounds 1]

The corpus is TEXT written N times over, the k-th copy's letters a-z rotated by k places (copy 0 as
it is), so the vocabulary grows with the size as a real large corpus's does (big.txt x10: 166M
tokens, 586k words at min_count 5) while the text stays English-shaped; nothing is downloaded. It is
written once beside --work (default: a directory under the system's temporary one) and reused.

Each round runs `w2v train` with defaults (a fresh, empty corpus cache: counting and encoding are
timed; the Numba cache as it is) and then gensim (skip-gram, negative 5, the same dim, window,
min_count, sample, threads and epochs, corpus_file mode). The whole process tree's RSS (every
descendant's, summed) is sampled every 50 ms; the peak is reported with the time it fell at and
the last line the run had printed then (what it was doing). words/s = corpus tokens x epochs /
wall seconds of the whole command. Needs the test extra (gensim). Prints a table and, with --json,
writes the figures there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_LETTERS = b"abcdefghijklmnopqrstuvwxyz"

_GENSIM = r"""
import sys
from gensim.models import Word2Vec
corpus, out, workers, epochs, dim, window, min_count, sample = sys.argv[1:9]
print("gensim: building the vocabulary and training", flush=True)
m = Word2Vec(corpus_file=corpus, sg=1, negative=5, hs=0, vector_size=int(dim), window=int(window),
             epochs=int(epochs), min_count=int(min_count), sample=float(sample), workers=int(workers), seed=1)
print(f"gensim: trained, {len(m.wv):,} words; writing the vectors", flush=True)
m.wv.save_word2vec_format(out)
"""


def rotated_corpus(text: Path, copies: int, where: Path) -> Path:
    """TEXT written ``copies`` times, the k-th copy's a-z rotated by k (a newline between copies)."""
    out = where / f"{text.stem}-x{copies}.txt"
    data = text.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    if out.exists() and out.stat().st_size == copies * len(data):
        return out
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh:
        for k in range(copies):
            shift = k % 26
            table = bytes.maketrans(_LETTERS, _LETTERS[shift:] + _LETTERS[:shift])
            fh.write(data.translate(table))
    os.replace(tmp, out)
    return out


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * page
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def measure(cmd: list[str], env=None) -> dict:
    """Run ``cmd``: wall seconds, the peak RSS of its process tree, when it fell and the last line
    printed before it."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    last = {"line": "", "lines": [], "at": []}

    def read():
        for line in proc.stdout:
            line = line.rstrip()
            if line and "\r" not in line:
                last["line"] = line
                last["at"].append(time.perf_counter() - start)
                last["lines"].append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak, peak_at, peak_line = 0, 0.0, ""
    timeline = []
    while proc.poll() is None:
        rss = _tree_rss(proc.pid)
        timeline.append((time.perf_counter() - start, rss / 2**20))
        if rss > peak:
            peak, peak_at, peak_line = rss, time.perf_counter() - start, last["line"]
        time.sleep(0.05)
    wall = time.perf_counter() - start
    reader.join(5)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n" + "\n".join(last["lines"][-20:]))
    # each printed line with the largest RSS seen from it to the next line (what that stretch took)
    bounds = last["at"] + [wall]
    def stretch(t0: float, t1: float) -> str:  # "-": no sample fell between this line and the next
        seen = [r for s, r in timeline if t0 <= s < t1]
        return f"{max(seen):6,.0f} MiB" if seen else "     - MiB"

    log = [f"{t:7.1f} s  {stretch(t, bounds[i + 1])}  {line}"
           for i, (t, line) in enumerate(zip(last["at"], last["lines"], strict=True))]
    first = last["at"][0] if last["at"] else wall
    start_peak = max([r for s, r in timeline if s < first], default=0)
    return {"wall": wall, "peak_mib": peak / 2**20, "peak_at_s": peak_at, "peak_during": peak_line,
            "log": [f"{0:7.1f} s  {start_peak:6,.0f} MiB  (start)", *log],
            "timeline": [(round(t, 2), round(r, 1)) for t, r in timeline[::10]]}


def count_tokens(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            n += len(chunk.split())
    return n  # a token cut by a chunk's end is counted twice: off by at most one a chunk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("text", type=Path)
    ap.add_argument("--copies", type=int, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="rounds of both tools (the best is reported)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "w2v-bench-scale")
    ap.add_argument("--skip-gensim", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.copies < 1:
        sys.exit("--copies must be at least 1")
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = rotated_corpus(args.text, args.copies, args.work)
    tokens = count_tokens(corpus)
    print(f"corpus: {corpus} ({corpus.stat().st_size / 2**20:,.0f} MiB, {tokens:,} tokens)", flush=True)
    w2v = str(Path(sys.executable).with_name("w2v"))
    runs: dict[str, list[dict]] = {"w2v": [], "gensim": []}
    for r in range(args.rounds):
        cache, out = args.work / "cache", args.work / "w2v-run"
        shutil.rmtree(cache, ignore_errors=True)
        runs["w2v"].append(measure([w2v, "train", str(corpus), "--epochs", str(args.epochs), "--workers",
                                    str(args.workers), "--cache-dir", str(cache), "--output", str(out),
                                    "--overwrite"]))
        shutil.rmtree(cache, ignore_errors=True)
        if not args.skip_gensim:
            runs["gensim"].append(measure([sys.executable, "-c", _GENSIM, str(corpus), str(args.work / "gensim.txt"),
                                           str(args.workers), str(args.epochs), "100", "5", "5", "1e-3"]))
        for tool in runs:
            if runs[tool]:
                m = runs[tool][-1]
                print(f"round {r + 1} {tool}: {m['wall']:.1f} s, peak {m['peak_mib']:,.0f} MiB at "
                      f"{m['peak_at_s']:.1f} s ({m['peak_during']})", flush=True)
    print("\n| tool | wall s | words/s | peak RSS MiB | peak at | during |\n|---|---|---|---|---|---|")
    best = {}
    for tool, ms in runs.items():
        if not ms:
            continue
        best[tool] = min(ms, key=lambda m: m["wall"])
        m = best[tool]
        print(f"| {tool} | {m['wall']:.1f} | {tokens * args.epochs / m['wall']:,.0f} | {m['peak_mib']:,.0f} "
              f"| {m['peak_at_s']:.1f} s | {m['peak_during']} |")
    if "gensim" in best:
        print(f"words/s ratio w2v/gensim: {best['gensim']['wall'] / best['w2v']['wall']:.2f}; peak RSS w2v - gensim: "
              f"{best['w2v']['peak_mib'] - best['gensim']['peak_mib']:+,.0f} MiB")
    for tool in best:
        print(f"\n{tool}'s log (best round; each line with the peak RSS until the next):\n"
              + "\n".join(best[tool]["log"]))
    if args.json:
        args.json.write_text(json.dumps({"corpus": str(corpus), "tokens": tokens, "copies": args.copies,
                                         "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
