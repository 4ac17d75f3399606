"""A small, fast, explicitly seeded RNG for Numba kernels (SplitMix64).

State is a one-element uint64 array, so a kernel advances it in place and the caller can save
it in a checkpoint. Every stream is derived from (seed, worker, purpose): nothing depends on
Python's ``hash()`` or global state, so one worker repeats bit for bit.
"""

import numpy as np
from numba import njit

from .kernel_cache import claim

claim()  # the kernel directory made, held in use and the other versions' pruned

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53

PAIRS, NEGATIVES = 0, 1  # stream purposes


def _mix(z: int) -> int:
    mask = (1 << 64) - 1
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & mask
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & mask
    return z ^ (z >> 31)


def make_state(seed: int, worker: int, purpose: int) -> np.ndarray:
    """Initial state of one stream, a pure function of its three integers."""
    mask = (1 << 64) - 1
    z = _mix((seed & mask) ^ _mix((worker * 2 + purpose + 1) * 0x9E3779B97F4A7C15 & mask))
    return np.array([z], dtype=np.uint64)


@njit(cache=True, nogil=True)
def next_u64(state):
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def next_float(state):
    """Uniform in [0, 1) with 53 random bits."""
    return np.float64(next_u64(state) >> _S11) * _INV53


@njit(cache=True, nogil=True)
def next_below(state, n):
    """Uniform integer in [0, n) by Lemire's multiply-shift (bias < n / 2**32)."""
    return np.int64(((next_u64(state) >> _S32) * np.uint64(n)) >> _S32)
