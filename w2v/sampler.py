"""Log-uniform (Zipfian) candidate sampler, as ``tf.random.log_uniform_candidate_sampler``.

P(k) = (log(k+2) - log(k+1)) / log(V+1) over ids [0, V), which matches word frequencies only
when ids are sorted by descending count (the vocabulary guarantees it).

Expected counts follow TensorFlow's ``ExpectedCountHelper`` (range_sampler.cc):
  Q = P * num_sampled                      if num_tries == num_sampled   (always when unique=False)
  Q = -expm1(num_tries * log1p(-P))        otherwise.
The surprise: with unique=True and no duplicate drawn, Q is the first form, not 1-(1-P)^S.
"""

import numpy as np
from numba import njit

from .kernel_cache import claim
from .rng import next_float

claim()  # the kernel directory made, held in use and the other versions' pruned


def _probability(ids, range_max: int) -> np.ndarray:
    """P(k), computed in float64 and rounded to float32, as TF's Probability() returns it."""
    k = np.asarray(ids, dtype=np.int64).astype(np.float64)
    return (np.log((k + 2.0) / (k + 1.0)) / np.log(range_max + 1.0)).astype(np.float32)


def log_uniform_probs(range_max: int) -> np.ndarray:
    """P(k) for k in [0, range_max)."""
    return _probability(np.arange(range_max), range_max)


def expected_count(ids, range_max: int, num_sampled: int, num_tries: int) -> np.ndarray:
    """TF's expected count of each id in ``ids`` (any shape) -> float32 array of that shape."""
    p = _probability(ids, range_max)
    if num_tries == num_sampled:
        return (p * np.float32(num_sampled)).astype(np.float32)
    # TF evaluates this in float32: std::log1p(float), then std::expm1(float).
    return (-np.expm1(np.float32(num_tries) * np.log1p(-p))).astype(np.float32)


def sample_log_uniform(rng_state, range_max: int, num_sampled: int, unique: bool = True):
    """One draw of ``num_sampled`` ids -> (ids int64 [S], num_tries); the training kernel's code."""
    if unique and num_sampled > range_max:
        raise ValueError("Sampler's range is too small.")  # TF's message
    out = np.empty(num_sampled, dtype=np.int64)
    stamp = np.zeros(stamp_size(range_max, num_sampled), dtype=np.int64)
    tries = draw_log_uniform(rng_state, range_max, floor_table(range_max), num_sampled, unique, out, stamp, 1)
    return out, tries


_GRID = 1 << 15  # cells of the floor table over u in [0, 1)
# up to this many ids a draw, duplicates are found by looking back through the ids drawn so far
# (a few compares in L1) rather than in the V-long stamp array (a cache miss a draw)
_SCAN_MAX = 16


def stamp_size(range_max: int, num_sampled: int) -> int:
    """Length of ``draw_log_uniform``'s stamp array: V, or none when it looks back instead."""
    return range_max if num_sampled > _SCAN_MAX else 0


@njit(cache=True, nogil=True)
def _sample_value(u, log_range):
    # TF: value = static_cast<int64>(exp(rnd * log_range_)) - 1
    return np.int64(np.exp(u * log_range)) - 1


@njit(cache=True, nogil=True)
def _log_range(range_max):
    return np.log1p(np.float64(range_max))  # TF: log_range_(log1p(range))


@njit(cache=True)
def _fill_floor_table(table, range_max):
    log_range = _log_range(range_max)
    for j in range(table.shape[0]):
        table[j] = _sample_value(j / (table.shape[0] - 1), log_range)


def floor_table(range_max: int) -> np.ndarray:
    """value(u) at the grid points u = j / _GRID, computed by the kernel's own code. Where two
    neighbours agree, every u between them gives that value (exp is monotone), so the sampler
    skips exp for about 2 draws in 3 (64% with 59,907 words) and still draws exactly the ids the formula gives."""
    table = np.empty(_GRID + 1, dtype=np.int64)
    _fill_floor_table(table, range_max)
    return table


@njit(cache=True, nogil=True)
def draw_log_uniform(state, range_max, table, num_sampled, unique, out, stamp, mark):
    """Fill ``out`` with num_sampled ids; return num_tries (draws made, duplicates included).

    With unique=True an id is kept only the first time it is drawn in this call: for more than
    _SCAN_MAX ids ``stamp[k] == mark`` flags ids already taken (a fresh ``mark`` per call avoids
    clearing the array); for fewer, the ids drawn so far are searched (the same result).
    ``table`` is ``floor_table(range_max)``.
    """
    grid = table.shape[0] - 1
    log_range = _log_range(range_max)
    n = 0
    tries = 0
    while n < num_sampled:
        u = next_float(state)
        j = np.int64(u * grid)
        k = table[j] if table[j] == table[j + 1] else _sample_value(u, log_range)
        if k >= range_max:  # TF: return value % range_; value <= range_max, so one subtraction (no division)
            k -= range_max
        tries += 1
        if unique:
            if num_sampled <= _SCAN_MAX:  # a few ids: look back through them (in cache; stamp is V long)
                seen = False
                for i in range(n):
                    if out[i] == k:
                        seen = True
                        break
                if seen:
                    continue
            elif stamp[k] == mark:
                continue
            else:
                stamp[k] = mark
        out[n] = k
        n += 1
    return tries


@njit(cache=True, nogil=True)
def log_expected_count(k, num_tries, num_sampled, log_p, log1m_p, log_num_sampled):
    """log Q(k) from tables log(P) and log1p(-P) and log(num_sampled); float64 throughout (TF rounds
    Q to float32)."""
    if num_tries == num_sampled:
        return log_p[k] + log_num_sampled
    return np.log(-np.expm1(num_tries * log1m_p[k]))


def log_tables(range_max: int):
    """(log P, log1p(-P)) in float64 from the float32 P, for ``log_expected_count``."""
    p = log_uniform_probs(range_max).astype(np.float64)
    return np.log(p), np.log1p(-p)
