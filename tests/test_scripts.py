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
