"""The benchmark scripts' arithmetic (their runs are measurements, made by hand: docs/performance.md)."""

import importlib
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name):
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(SCRIPTS))


def test_bench_workers_takes_each_counts_best_wall_and_pairs_rounds_in_order():
    bench = _script("bench_workers")
    runs = [{"epochs": 5, "round": r, "workers": w, "wall": wall, "train": train}
            for r, w, wall, train in [(1, 1, 70.0, 68.0), (1, 2, 50.0, 48.0), (2, 1, 72.0, 66.0), (2, 2, 38.0, 36.5)]]
    line, = bench.summary(runs, [1, 2])
    # best walls 70.0 and 38.0 (from different rounds); training alone 66.0 / 36.5; rounds 70/50, 72/38
    assert line == ("5 epochs, 1 -> 2 workers: 1.84x wall (best 70.0 / 38.0 s), 1.81x training alone; "
                    "per round 1.40x, 1.89x")


def test_bench_workers_gives_a_peer_its_own_lines_after_w2v():
    bench = _script("bench_workers")
    runs = [{"tool": tool, "epochs": 2, "round": 1, "workers": w, "wall": wall, "train": train}
            for tool, w, wall, train in [("w2v", 1, 30.0, 28.0), ("w2v", 2, 16.0, 14.5),
                                         ("gensim", 1, 120.0, 100.0), ("gensim", 2, 80.0, 62.5)]]
    # each tool against its own one worker, never against the other tool's
    assert bench.summary(runs, [1, 2]) == [
        "2 epochs, 1 -> 2 workers: 1.88x wall (best 30.0 / 16.0 s), 1.93x training alone; per round 1.88x",
        "gensim: 2 epochs, 1 -> 2 workers: 1.50x wall (best 120.0 / 80.0 s), 1.60x training alone; "
        "per round 1.50x"]


def test_bench_slices_ratios_are_per_round_and_cpu_rates_pool_the_rounds():
    bench = _script("bench_slices")
    # (words, wall s, thread CPU s): round 1 alone 1.0M/s, together 1.8M/s; round 2 0.5M/s and 1.0M/s
    rounds = [{"alone": (1_000_000, 1.0, 1.0), "together": (3_600_000, 2.0, 4.0)},
              {"alone": (500_000, 1.0, 0.5), "together": (2_000_000, 2.0, 4.0)}]
    assert bench.summary(rounds, 2) == [
        "1 -> 2 workers, 2 rounds: mean 1.90x, median 1.90x (rounds 1.80x-2.00x)",
        # 1.5M words in 1.5 CPU-s alone; 5.6M in 8.0 together
        "words per CPU-second: alone 1.000M, together 0.700M"]
