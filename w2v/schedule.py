"""The learning-rate schedule: linear decay over all the words of all the epochs, as word2vec.c."""

from numba import njit

from .kernel_cache import claim

claim()  # the kernel directory made, held in use and the other versions' pruned


@njit(cache=True, nogil=True)
def learning_rate(alpha, min_alpha, words_done, total_words):
    """Linear decay from alpha to min_alpha over all the words of all the epochs."""
    return max(min_alpha, alpha - (alpha - min_alpha) * words_done / total_words)
