"""float32 rows as word2vec text, '%.9g' exactly, in a Numba kernel.

Python's '%.9g' costs ~0.22 us a number (measured: 1.60 s for text8's 71,290 x 100, 0.4 s with
this kernel; the end of a 1.16M-word run, checkpoint and vocabulary included, took 29.6 s before
it and the packed words, 9.3 s after). ``format_rows`` writes the same bytes without Python: a
float32 is M * 2^E (M < 2^24), so its nine significant digits are round(M * 5^p * 2^(E+p)) with
p = 8 - floor(log10 |x|); for 1e-8 <= |x| < 1e9 (p in 0..16) M * 5^p fits in 63 bits and the
rounding (half to even, as printf does on the exact value) is one shift and one compare. Anything
else (NaN, infinities, |x| < 1e-8 but 0) stops the kernel at its row, which Python then formats;
``row_text`` is that reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kernel_cache import claim

claim()

_POW5 = np.array([5**p for p in range(17)], dtype=np.int64)
_POW10 = np.array([10**p for p in range(10)], dtype=np.int64)
_MAX_NUMBER_BYTES = 15  # "-1.23456789e-05"


def row_text(word: str, row: np.ndarray) -> str:
    """One ``word v1 ... vD`` line as Python writes it (the reference, and the kernel's fallback)."""
    with np.errstate(invalid="ignore"):  # a signalling NaN widened to float64
        values = row.astype(np.float64).tolist()
    return word + " " + " ".join(f"{v:.9g}" for v in values) + "\n"


def max_row_bytes(word_bytes: int, dim: int) -> int:
    return word_bytes + 1 + dim * (_MAX_NUMBER_BYTES + 1) + 1


@njit(cache=True, nogil=True)
def _nine_digits(mant, exp2, k):
    """round(M * 2^E * 10^(8-k)) to an integer, half to even; -1 when 8-k is outside 0..16."""
    p = 8 - k
    if p < 0 or p > 16:
        return -1
    n = mant * _POW5[p]
    s = exp2 + p
    if s >= 0:
        return n << s
    sh = -s
    if sh > 62:
        return 0
    d = n >> sh
    r = n - (d << sh)
    half = np.int64(1) << (sh - 1)
    if r > half or (r == half and (d & 1) == 1):
        d += 1
    return d


@njit(cache=True, nogil=True)
def _put_number(bits, out, pos):
    """Write float32 ``bits`` (uint32) as '%.9g' at out[pos:]; the new position, or -1 if the
    value is not one this kernel formats."""
    neg = bits >> 31
    e = np.int64((bits >> 23) & 0xFF)
    frac = np.int64(bits & 0x7FFFFF)
    if e == 255:
        return -1
    if neg:
        out[pos] = 45  # '-'
        pos += 1
    if e == 0 and frac == 0:
        out[pos] = 48
        return pos + 1
    if e == 0:
        mant, exp2 = frac, np.int64(-149)
    else:
        mant, exp2 = frac | 0x800000, e - 150
    # floor(log10 |x|) is floor((E + 23) * log10(2)) or one more (a normal M has 24 bits):
    # 78913 / 2^18 is log10(2) close enough for every float32 exponent (Ryu's log10Pow2)
    k = ((exp2 + 23) * 78913) >> 18
    d = _nine_digits(mant, exp2, k)
    for _ in range(3):  # one more when the estimate was low, or when rounding reaches 10^9
        if d < 0:
            return -1
        if d < 100_000_000:
            k -= 1
        elif d >= 1_000_000_000:
            k += 1
        else:
            break
        d = _nine_digits(mant, exp2, k)
    if d < 100_000_000 or d >= 1_000_000_000:
        return -1
    n = 9
    while n > 1 and d % 10 == 0:  # %g drops trailing zeros
        d //= 10
        n -= 1
    if -4 <= k < 9:  # fixed notation
        if k < 0:
            out[pos] = 48  # '0.' and -k-1 zeros
            out[pos + 1] = 46
            pos += 2
            for _ in range(-k - 1):
                out[pos] = 48
                pos += 1
            return _put_digits(out, pos, d, n)
        if n <= k + 1:
            return _put_digits(out, pos, d * _POW10[k + 1 - n], k + 1)
        fraction = n - k - 1
        pos = _put_digits(out, pos, d // _POW10[fraction], k + 1)
        out[pos] = 46
        return _put_digits(out, pos + 1, d % _POW10[fraction], fraction)
    pos = _put_digits(out, pos, d // _POW10[n - 1], 1)  # scientific: k is -8..-5 here
    if n > 1:
        out[pos] = 46
        pos = _put_digits(out, pos + 1, d % _POW10[n - 1], n - 1)
    out[pos] = 101  # 'e'
    out[pos + 1] = 45 if k < 0 else 43
    return _put_digits(out, pos + 2, -k if k < 0 else k, 2)


@njit(cache=True, nogil=True)
def _put_digits(out, pos, value, n):
    """The n decimal digits of ``value`` (zeros first if it has fewer) at out[pos:]; pos + n."""
    for i in range(pos + n - 1, pos - 1, -1):
        out[i] = 48 + value % 10
        value //= 10
    return pos + n


@njit(cache=True, nogil=True)
def format_rows(bits, utf8, offsets, first_word, out):
    """``word v1 ... vD\\n`` for each row of ``bits`` (float32 rows viewed as uint32 [n, D]), the
    words from ``first_word`` on in ``utf8``/``offsets``, into ``out`` (at least the sum of
    ``max_row_bytes`` of the rows). Returns (bytes written, rows written): it stops before a row
    holding a value it does not format."""
    pos = 0
    for r in range(bits.shape[0]):
        start = pos
        for b in range(offsets[first_word + r], offsets[first_word + r + 1]):
            out[pos] = utf8[b]
            pos += 1
        for c in range(bits.shape[1]):
            out[pos] = 32
            pos = _put_number(bits[r, c], out, pos + 1)
            if pos < 0:
                return start, r
        out[pos] = 10
        pos += 1
    return pos, bits.shape[0]
