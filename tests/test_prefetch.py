"""The training loop's software prefetch: a prefetch instruction per cache line of a row, and no
value changed by it (bit-identical runs are checked by the training tests; the speed by
scripts/bench_step.py)."""

import platform

import numpy as np
import pytest
from numba import njit

from w2v.prefetch import prefetch_row


@njit(cache=True)
def _prefetch_every_row(a):
    for r in range(a.shape[0]):
        prefetch_row(a, r)


def test_prefetching_rows_changes_nothing():
    rng = np.random.default_rng(0)
    for dim in (1, 15, 16, 17, 100, 128):
        a = rng.random((37, dim), dtype=np.float32)
        before = a.copy()
        _prefetch_every_row(a)
        _prefetch_every_row(a[::2])  # a strided view: rows that start anywhere
        assert np.array_equal(a, before)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="checks x86 instructions")
def test_a_prefetched_row_is_a_prefetch_instruction_per_cache_line():
    fresh = njit(cache=False)(_prefetch_every_row.py_func)  # a cached kernel keeps no assembly to read
    fresh(np.zeros((3, 100), np.float32))
    asm = "".join(fresh.inspect_asm().values())
    # 100 floats: lines at 0, 16, ... 96 floats, and the row's last float (7 + 1 in the loop body)
    assert asm.count("prefetcht0") >= 2

