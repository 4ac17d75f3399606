"""Schedules: the learning rate (linear decay over all the words of all the epochs, as word2vec.c)
and how many rows a sync moves."""

from numba import njit

from .kernel_cache import claim

claim()  # the kernel directory made, held in use and the other versions' pruned


@njit(cache=True, nogil=True)
def learning_rate(alpha, min_alpha, words_done, total_words):
    """Linear decay from alpha to min_alpha over all the words of all the epochs."""
    return max(min_alpha, alpha - (alpha - min_alpha) * words_done / total_words)


@njit(cache=True, nogil=True)
def sync_rows(k, smallest, most):
    """Rows the k-th sync (k >= 1) moves: the ``smallest * 2**(trailing zero bits of k)`` most
    frequent, at most ``most`` (the hot rows' syncs in ``train_span``, Ray's between actors)."""
    rows = smallest
    while k % 2 == 0 and rows < most:
        rows, k = 2 * rows, k // 2
    return min(rows, most)
