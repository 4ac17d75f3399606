"""Train w2v on one corpus in several configurations, one after another, and print each one's
training speed, sync figures and quality side by side (the Ray backend against local threads).

    .venv/bin/python scripts/bench_ray.py CORPUS --analogies Q.txt --similarity WS.tsv \\
        --run "--workers 2" --run "--backend ray --nodes 2 --workers 1" [--epochs 5]

A run is `w2v train` flags; words of the form key=value become config keys (those without a flag:
`--run "--backend ray --nodes 2 --workers 1 sync_interval=0.5"`). Each run is `w2v train` as a
user runs it, in a fresh process with the corpus cache in a temporary directory shared by the
runs (the first run of each backend fills it). words/s is w2v's training figure (words trained /
seconds of training, the vocabulary and encoding passes excluded); wall is the whole command.
Quality: w2v's gensim-exact analogy accuracy (30,000 most frequent words) and WS353 Spearman.
Run the configurations to compare in one invocation: the machine's load moves absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(corpus: str, spec: str, epochs: int, work: Path, index: int) -> dict:
    flags, keys = [], {}
    for word in shlex.split(spec):
        if "=" in word and not word.startswith("-"):
            key, value = word.split("=", 1)
            keys[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
        else:
            flags.append(word)
    out = work / f"run{index}"
    cmd = [sys.executable, "-m", "w2v.cli", "train", corpus, "--epochs", str(epochs), "--cache-dir",
           str(work / "cache"), "-o", str(out), *flags]
    if keys:
        config = work / f"run{index}.yaml"
        config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in keys.items()))
        cmd += ["--config", str(config)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    trained = re.search(r"trained ([\d,]+) words .* in ([\d.]+)s: ([\d,]+) words/s", done.stderr)
    syncs = re.search(r"ray: (\d+) syncs \((\d+) of all rows\), ([\d,]+) MiB sent each way per actor, "
                      r"([\d.]+) ms a sync", done.stderr)
    result = {"run": spec, "wall": round(wall, 1), "train_s": float(trained.group(2)),
              "words_per_sec": int(trained.group(3).replace(",", "")), "load_before": load,
              "load_after": os.getloadavg()[0], "vectors": str(out / "vectors.txt")}
    if syncs:
        result.update(syncs=int(syncs.group(1)), full_syncs=int(syncs.group(2)),
                      mib_per_actor=int(syncs.group(3).replace(",", "")), ms_per_sync=float(syncs.group(4)))
    return result


def quality(vectors: str, analogies: str, similarity: str) -> dict:
    from w2v.evaluate import Vectors, evaluate_analogies, evaluate_similarity

    vecs = Vectors.load(vectors)
    return {"analogy": evaluate_analogies(vecs, analogies, 30000)["accuracy"],
            "ws353": evaluate_similarity(vecs, similarity)["spearman"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("--run", action="append", required=True, help="w2v train flags (and key=value config keys)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--analogies", default=str(ROOT / "data" / "questions-words.txt"))
    ap.add_argument("--similarity", default=str(ROOT / "data" / "wordsim353.tsv"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="w2v-bench-ray-") as tmp:
        results = []
        for i, spec in enumerate(args.run):
            r = one_run(args.corpus, spec, args.epochs, Path(tmp), i)
            r.update(quality(r.pop("vectors"), args.analogies, args.similarity))
            print(json.dumps(r), flush=True)
            results.append(r)
    print("\n| run | train s | words/s | vs first | analogy | WS353 | syncs (all rows) | MiB/actor | ms/sync | load |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        sync = (f"{r['syncs']} ({r['full_syncs']}) | {r['mib_per_actor']:,} | {r['ms_per_sync']}"
                if "syncs" in r else "- | - | -")
        print(f"| `{r['run']}` | {r['train_s']:.1f} | {r['words_per_sec']:,} | "
              f"{r['words_per_sec'] / results[0]['words_per_sec']:.2f}x | {r['analogy']:.2%} | {r['ws353']:.3f} | "
              f"{sync} | {r['load_before']:.1f}-{r['load_after']:.1f} |")


if __name__ == "__main__":
    main()
