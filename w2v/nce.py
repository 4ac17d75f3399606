"""NCE loss with the exact semantics of ``tf.nn.nce_loss``: a NumPy reference and the Numba step.

For each example b with input x_b, true labels l_bt (t < num_true) and the batch's shared sampled
ids s_j:
  logit_bt = x_b . w_l + b_l - log Q(l)          target 1/num_true
  logit_bj = x_b . w_s + b_s - log Q(s)          target 0
  loss_b   = sum over the row of max(x,0) - x*z + log1p(exp(-|x|))
With remove_accidental_hits, a sampled column equal to one of the row's labels is pushed to
-FLT_MAX (TF: sparse_to_dense(..., -FLT_MAX)), so it adds exactly 0 to loss and gradients.
"""

from collections import namedtuple

import numpy as np
from numba import njit

from .kernel_cache import claim

claim()  # the kernel directory made, held in use and the other versions' pruned

FLT_MAX = np.float32(np.finfo(np.float32).max)


def compute_sampled_logits(inputs, weights, biases, labels, sampled, true_expected_count,
                           sampled_expected_count, remove_accidental_hits=False):
    """Mirror of TF's ``_compute_sampled_logits`` (float64 math) -> (logits [B, T+S], targets, mask).

    ``mask`` [B, S] is True where an accidental hit was removed.
    """
    x = np.asarray(inputs, np.float64)
    w = np.asarray(weights, np.float64)
    bias = np.asarray(biases, np.float64)
    labels = np.asarray(labels, np.int64)
    if labels.ndim == 1:
        labels = labels[:, None]
    sampled = np.asarray(sampled, np.int64)
    num_true = labels.shape[1]
    # TF: true_logits = sum(inputs * true_w, -1) + true_b
    true_logits = np.einsum("bd,btd->bt", x, w[labels]) + bias[labels]
    # TF: sampled_logits = matmul(inputs, sampled_w, transpose_b=True) + sampled_b
    sampled_logits = x @ w[sampled].T + bias[sampled]
    mask = np.zeros(sampled_logits.shape, dtype=bool)
    if remove_accidental_hits:
        mask = accidental_hits(labels, sampled)
        sampled_logits = np.where(mask, sampled_logits - float(FLT_MAX), sampled_logits)
    # TF: true_logits -= log(true_expected_count); sampled_logits -= log(sampled_expected_count)
    true_logits -= np.log(np.asarray(true_expected_count, np.float64).reshape(labels.shape))
    sampled_logits -= np.log(np.asarray(sampled_expected_count, np.float64))
    logits = np.concatenate([true_logits, sampled_logits], axis=1)
    # TF: out_labels = concat([ones_like(true_logits) / num_true, zeros_like(sampled_logits)])
    targets = np.concatenate([np.full(true_logits.shape, 1.0 / num_true), np.zeros(sampled_logits.shape)], 1)
    return logits, targets, mask


def accidental_hits(labels, sampled) -> np.ndarray:
    """[B, S] bool: TF's ``compute_accidental_hits`` as a dense mask.

    TF maps each sampled id to its LAST position (a hash map overwritten in order), and a label
    repeated within a row marks the same cell twice (set, not added): one masked cell.
    """
    labels = np.asarray(labels, np.int64)
    sampled = np.asarray(sampled, np.int64)
    last_pos = {int(k): j for j, k in enumerate(sampled)}
    mask = np.zeros((labels.shape[0], sampled.shape[0]), dtype=bool)
    for b, row in enumerate(labels):
        for k in row:
            j = last_pos.get(int(k))
            if j is not None:
                mask[b, j] = True
    return mask


def sigmoid_cross_entropy(logits, targets):
    """TF's stable form: max(x, 0) - x * z + log1p(exp(-|x|))."""
    return np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def nce_loss(inputs, weights, biases, labels, sampled, true_expected_count, sampled_expected_count,
             remove_accidental_hits=False):
    """Reference NCE -> (loss [B] float32, grads of sum(loss)): dict of dense float32 arrays
    ``inputs`` [B, D], ``weights`` [V, D], ``biases`` [V]."""
    logits, targets, mask = compute_sampled_logits(
        inputs, weights, biases, labels, sampled, true_expected_count, sampled_expected_count,
        remove_accidental_hits)
    loss = sigmoid_cross_entropy(logits, targets).sum(axis=1)
    labels = np.asarray(labels, np.int64).reshape(len(logits), -1)
    sampled = np.asarray(sampled, np.int64)
    num_true = labels.shape[1]
    # d loss / d logit = sigmoid(x) - z; a masked cell's sigmoid(-FLT_MAX) is exactly 0.
    g = _sigmoid(logits) - targets
    g[:, num_true:][mask] = 0.0
    x = np.asarray(inputs, np.float64)
    w = np.asarray(weights, np.float64)
    g_true, g_sampled = g[:, :num_true], g[:, num_true:]
    grad_inputs = np.einsum("bt,btd->bd", g_true, w[labels]) + g_sampled @ w[sampled]
    grad_weights = np.zeros(w.shape)
    np.add.at(grad_weights, labels.ravel(), (g_true[:, :, None] * x[:, None, :]).reshape(-1, x.shape[1]))
    np.add.at(grad_weights, sampled, g_sampled.T @ x)
    grad_biases = np.zeros(w.shape[0])
    np.add.at(grad_biases, labels.ravel(), g_true.ravel())
    np.add.at(grad_biases, sampled, g_sampled.sum(axis=0))
    grads = {"inputs": grad_inputs.astype(np.float32), "weights": grad_weights.astype(np.float32),
             "biases": grad_biases.astype(np.float32)}
    return loss.astype(np.float32), grads


def sgd_step_reference(emb_in, emb_out, bias, centres, contexts, sampled, true_expected_count,
                       sampled_expected_count, lr, remove_accidental_hits=False):
    """One plain-SGD step on sum(loss) of a batch (num_true 1), in place; returns sum(loss)."""
    loss, grads = nce_loss(emb_in[centres], emb_out, bias, np.asarray(contexts)[:, None], sampled,
                           np.asarray(true_expected_count).reshape(-1, 1), sampled_expected_count,
                           remove_accidental_hits)
    np.add.at(emb_in, np.asarray(centres), -lr * grads["inputs"])
    emb_out -= lr * grads["weights"]
    bias -= lr * grads["biases"]
    return float(loss.astype(np.float64).sum())


# sigmoid(x) and softplus(x) = log(1 + exp(x)) for the step, by linear interpolation in one table
# over [-24, 24] (2**14 intervals, float64): the sigmoid (the gradients) is off by at most 1.1e-7,
# float32's own precision, the precision TF computes in; softplus (the reported loss) by 2.7e-7.
# Outside it the exact values are within 4e-11 of (0, 0) and (1, x). Profiled: exp, a division and
# a log1p per logit were a quarter of a step (a window batch, all in cache: 300 -> 230 ns a pair).
_SIG_RANGE = 24.0
_SIG_STEPS = 1 << 14
_SIG_STEP = 2 * _SIG_RANGE / _SIG_STEPS


def _sigmoid_softplus_table() -> np.ndarray:
    x = -_SIG_RANGE + _SIG_STEP * np.arange(_SIG_STEPS + 2)
    return np.stack([_sigmoid(x), np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))], axis=1)


_SIG_TABLE = _sigmoid_softplus_table()


@njit(cache=True, nogil=True, fastmath=True)
def _sigmoid_softplus(x):
    """(sigmoid(x), log(1 + exp(x))) for any x; NaN in, NaN out (the trainer stops on a NaN loss)."""
    if x > -_SIG_RANGE and x < _SIG_RANGE:
        t = (x + _SIG_RANGE) * (1.0 / _SIG_STEP)
        i = np.int64(t)
        f = t - i
        sig = _SIG_TABLE[i, 0] + f * (_SIG_TABLE[i + 1, 0] - _SIG_TABLE[i, 0])
        return sig, _SIG_TABLE[i, 1] + f * (_SIG_TABLE[i + 1, 1] - _SIG_TABLE[i, 1])
    if x >= _SIG_RANGE:
        return 1.0, x
    if x <= -_SIG_RANGE:
        return 0.0, 0.0
    return x, x  # NaN


# The model's parameters as the kernels take them.
Params = namedtuple("Params", ["emb_in", "emb_out", "bias"])

# The step is a small matrix product, register-blocked: the logits of 2 input rows x 6 columns at a
# time (twelve accumulators), the input gradients as coef [B, S+1] x block [S+1, D] in the same
# 2 x 6 blocks, subtracted from the model's input rows as they are computed, and the output deltas
# as coef^T x inputs [B, D] in blocks of 4 rows x 3 columns; each a loop whose innermost level runs
# over D contiguous floats (vector FMAs), each block's results written once. The scratch rows are
# padded to a multiple of _LANES floats with zeros, so the logits' and deltas' loops need no partial
# register whatever the vector width LLVM picks for the CPU (8 floats with AVX2, 16 with AVX-512);
# LLVM's loop still takes 32 floats an iteration and leaves an odd 16 to its epilogue (measured:
# docs/performance.md). The input gradients' loop runs over the model's unpadded D. Odd rows and
# columns are paired with zero "trash" rows / columns at the end of the scratch (their coefficients
# are zero), so the same code covers every shape. Profiled (a window batch of 6 rows, S = 5, all in
# cache): 2 x 3 blocks for all three products, every gradient row written and read back per block,
# with d loss / d logit inside the logits' block, took ~1,000-1,165 ns a batch, these blocks 840-900,
# and 759-817 in four of five runs with the input gradients applied in place (docs/performance.md,
# "The step in larger blocks").
_LANES = 16
_ROWS, _COLS = 2, 6  # the logits' and input gradients' blocks
_DELTA_ROWS, _DELTA_COLS = 4, 3  # the output deltas' blocks (the rows written: at most _DELTA_COLS)


def padded_dim(dim: int) -> int:
    return -(-dim // _LANES) * _LANES


def _coef_width(num_sampled: int) -> int:
    return -(-(num_sampled + 1) // _COLS) * _COLS  # a multiple of _DELTA_COLS too


# One worker's scratch for ``nce_sgd_step``, allocated once (the step allocates nothing); P is dim
# padded to a multiple of _LANES; the last row of xin / coef is the trash row, the last two
# of block / delta the trash columns (the padding and the trash rows of xin and block stay zero):
#   xin [B+1, P]: the batch's input rows, gathered before the step;
#   block [S+B+2, P] / block_bias [S+B+2]: the output rows of the batch's columns (the S sampled
#     ids, then one row per run of equal labels), gathered before the step, so every read sees the
#     state before the step and the rows sit contiguous in L1 while every input row meets them;
#   delta [S+B+2, P]: their accumulated gradients, scattered back once (the input rows' gradients
#   go to emb_in as they are computed); coef [B+1, 6k >= S+1] float32: d loss / d logit (padding
#   stays 0);
#   group_start [B+1]: the runs of equal labels;
#   hot_out [H, D] / hot_bias [H]: this thread's copy of output rows 0..H-1 and their biases, which
#     its steps read and write instead of the shared rows; hot_base / hot_bias_base: the copy as it
#     was at the last sync (see ``sync_hot_rows``).
StepScratch = namedtuple("StepScratch", [
    "xin", "block", "block_bias", "delta", "coef", "group_start", "hot_out", "hot_bias", "hot_base", "hot_bias_base"])


def _step_scratch_layout(max_rows: int, num_sampled: int, dim: int, hot_rows: int) -> list:
    """(shape, dtype) of each StepScratch array, in field order."""
    cols, p = num_sampled + max_rows + 2, padded_dim(dim)
    return [((max_rows + 1, p), np.float32), ((cols, p), np.float32), (cols, np.float64), ((cols, p), np.float32),
            ((max_rows + 1, _coef_width(num_sampled)), np.float32),
            (max_rows + 1, np.int64), ((hot_rows, dim), np.float32), (hot_rows, np.float32),
            ((hot_rows, dim), np.float32), (hot_rows, np.float32)]


def step_scratch(max_rows: int, num_sampled: int, dim: int, hot_rows: int = 0) -> StepScratch:
    # zeros: the padding and the trash rows of xin and block must stay 0 (the step writes only the
    # first dim floats of a row and never their trash rows); the hot rows are filled by sync_hot_rows
    return StepScratch(*(np.zeros(shape, dtype) for shape, dtype in
                         _step_scratch_layout(max_rows, num_sampled, dim, hot_rows)))


def step_scratch_bytes(max_rows: int, num_sampled: int, dim: int, hot_rows: int = 0) -> int:
    return sum(int(np.prod(shape)) * np.dtype(dtype).itemsize
               for shape, dtype in _step_scratch_layout(max_rows, num_sampled, dim, hot_rows))


@njit(cache=True, nogil=True)
def sync_hot_rows(params, hot_out, hot_bias, hot_base, hot_bias_base, n_rows, push):
    """Hot rows 0..n_rows-1: with ``push``, add what this thread's steps changed in its copy since
    the last sync (copy - base) to the shared rows; then copy the shared rows, with the other
    threads' pushed changes, into the copy and the base. Adding (not overwriting) keeps what other
    threads wrote meanwhile; every row is pushed before any is read back, so two threads syncing at
    the same moment (equal speeds keep them in step) each read the other's push."""
    emb_out, bias = params.emb_out, params.bias
    n_hot, dim = min(n_rows, hot_out.shape[0]), hot_out.shape[1]
    if push:
        for k in range(n_hot):
            bias[k] += hot_bias[k] - hot_bias_base[k]
            for d in range(dim):
                emb_out[k, d] += hot_out[k, d] - hot_base[k, d]
    for k in range(n_hot):
        hot_bias[k] = hot_bias_base[k] = bias[k]
        for d in range(dim):
            value = emb_out[k, d]
            hot_out[k, d] = value
            hot_base[k, d] = value


@njit(cache=True, nogil=True)
def _is_last(sampled, j):
    """TF's accidental-hit mask marks only the last position of an id drawn twice (non-unique)."""
    for i in range(j + 1, sampled.shape[0]):
        if sampled[i] == sampled[j]:
            return False
    return True


@njit(cache=True, nogil=True)
def _column(i, n_sampled, label_col, trash):
    """The block row of column i of a run: sampled row i, the run's label row, or a trash row."""
    return i if i < n_sampled else (label_col if i == n_sampled else trash)


@njit(cache=True, nogil=True)
def _six_columns(i0, n_sampled, label_col, trash):
    """The block rows of columns i0..i0+5 (a 2 x 6 block; columns past S+1 all read ``trash``)."""
    return (_column(i0, n_sampled, label_col, trash), _column(i0 + 1, n_sampled, label_col, trash),
            _column(i0 + 2, n_sampled, label_col, trash), _column(i0 + 3, n_sampled, label_col, trash),
            _column(i0 + 4, n_sampled, label_col, trash), _column(i0 + 5, n_sampled, label_col, trash))


@njit(cache=True, nogil=True, fastmath=True)
def nce_sgd_step(params, inputs, labels, start, stop, sampled, log_q_sampled, log_q_true, lr, remove_hits, sc):
    """One SGD step on sum(loss) of the batch rows [start, stop), in place; returns sum(loss).

    Row r's input is ``params.emb_in[inputs[r]]``, its label ``labels[r]``; ``sampled`` (with
    ``log_q_sampled``) is shared by the batch, ``log_q_true`` is indexed by r - start. Same result
    as ``sgd_step_reference``: every gradient is taken at the state before the step.

    The batch's input rows are gathered into ``sc.xin`` and its output rows into ``sc.block`` first:
    S sampled rows, then one row per run of consecutive equal labels (a window batch has one run:
    its centre). A run's logits are then a [rows, S+1] product of its input rows with the S sampled
    rows and its label's row, computed 2 rows x 6 columns at a time; the input gradients are
    coef x block in the same blocks, subtracted from the input rows as they are computed (the step
    reads emb_in only in the gather), and the output deltas coef^T x inputs in 4 x 3 blocks, each
    output row written once at the end. Hot output rows (id < H) are read from and written to this
    thread's copy ``sc.hot_out``/``hot_bias`` instead of the shared matrix (several workers writing
    the rows the sampler draws most make the cores fight over their cache lines); ``sync_hot_rows``
    fills the copy and hands its changes on.
    """
    emb_in, emb_out, bias = params.emb_in, params.emb_out, params.bias
    xin, block, block_bias, delta, coef = sc.xin, sc.block, sc.block_bias, sc.delta, sc.coef
    group_start, hot_out, hot_bias = sc.group_start, sc.hot_out, sc.hot_bias
    dim = emb_in.shape[1]
    pdim = xin.shape[1]
    trash_row = xin.shape[0] - 1
    trash_col, trash_col2 = block.shape[0] - 2, block.shape[0] - 1  # two: a pass never writes one row twice
    n_sampled = sampled.shape[0]
    n_cols = n_sampled + 1
    n_hot = hot_out.shape[0]
    # 1. Gather: the input rows; the sampled rows, then the label of each run of equal labels.
    for r in range(start, stop):
        c = inputs[r]
        for d in range(dim):
            xin[r - start, d] = emb_in[c, d]
    n_groups = 0
    r = start
    while r < stop:
        group_start[n_groups] = r - start
        n_groups += 1
        r += 1
        while r < stop and labels[r] == labels[r - 1]:
            r += 1
    group_start[n_groups] = stop - start
    for j in range(n_sampled + n_groups):
        k = sampled[j] if j < n_sampled else labels[start + group_start[j - n_sampled]]
        # a choice of array, not a branch around two loops: whether an id is hot changes from row to
        # row (the buffer read with these branches cost ~4 ns a pair more; docs/performance.md)
        rows, biases = (hot_out, hot_bias) if k < n_hot else (emb_out, bias)
        for d in range(dim):
            block[j, d] = rows[k, d]
        block_bias[j] = biases[k]
        if j > n_sampled:  # a later run's label: its rows add to a zero delta (see below)
            for d in range(pdim):
                delta[j, d] = 0.0
    # 2. Per run of equal labels, from the state before the step: its logits, 2 rows x 6 columns at
    #    a time; d loss / d logit in their place, a row at a time; then the rows' input gradients
    #    (2 x 6 blocks) and their share of the output rows' gradients (4 x 3 blocks). Column i < S
    #    is sampled row i, column S the run's label, later columns trash (zero rows: zero logits).
    loss = 0.0
    lr32 = np.float32(lr)
    coef_width = coef.shape[1]
    for g in range(n_groups):
        label = labels[start + group_start[g]]
        label_col = n_sampled + g
        g0, g1 = group_start[g], group_start[g + 1]
        for r0 in range(g0, g1, _ROWS):
            r1 = r0 + 1 if r0 + 1 < g1 else trash_row
            for i0 in range(0, n_cols, _COLS):
                # read only: every column past S+1 may read the same trash row
                j0, j1, j2, j3, j4, j5 = _six_columns(i0, n_sampled, label_col, trash_col)
                a00 = a01 = a02 = a03 = a04 = a05 = np.float32(0.0)
                a10 = a11 = a12 = a13 = a14 = a15 = np.float32(0.0)
                for d in range(pdim):
                    x0 = xin[r0, d]
                    x1 = xin[r1, d]
                    b0, b1, b2 = block[j0, d], block[j1, d], block[j2, d]
                    b3, b4, b5 = block[j3, d], block[j4, d], block[j5, d]
                    a00 += x0 * b0
                    a01 += x0 * b1
                    a02 += x0 * b2
                    a03 += x0 * b3
                    a04 += x0 * b4
                    a05 += x0 * b5
                    a10 += x1 * b0
                    a11 += x1 * b1
                    a12 += x1 * b2
                    a13 += x1 * b3
                    a14 += x1 * b4
                    a15 += x1 * b5
                coef[r0, i0], coef[r0, i0 + 1], coef[r0, i0 + 2] = a00, a01, a02
                coef[r0, i0 + 3], coef[r0, i0 + 4], coef[r0, i0 + 5] = a03, a04, a05
                coef[r1, i0], coef[r1, i0 + 1], coef[r1, i0 + 2] = a10, a11, a12
                coef[r1, i0 + 3], coef[r1, i0 + 4], coef[r1, i0 + 5] = a13, a14, a15
        # d loss / d logit in place of each logit (no helper taking arrays: each call would count
        # references to them, atomically, in the innermost loop)
        hits = False
        if remove_hits:
            for i in range(n_sampled):
                hits = hits or (sampled[i] == label and _is_last(sampled, i))
        for row in range(g0, g1):
            for i in range(n_sampled):
                # TF: logits += b; logits -= log(expected_count)
                x = np.float64(coef[row, i]) + block_bias[i] - log_q_sampled[i]
                sig, sp = _sigmoid_softplus(x)
                if hits and sampled[i] == label and _is_last(sampled, i):
                    coef[row, i] = 0.0  # TF pushes the logit to -FLT_MAX: no loss, no gradient
                else:
                    coef[row, i] = np.float32(sig)  # target 0
                    loss += sp
            x = np.float64(coef[row, n_sampled]) + block_bias[label_col] - log_q_true[row]
            sig, sp = _sigmoid_softplus(x)
            coef[row, n_sampled] = np.float32(sig - 1.0)  # target 1 (num_true 1): d/dx = sigmoid(x) - 1
            loss += sp - x
            for i in range(n_cols, coef_width):  # the trash columns: no gradient
                coef[row, i] = 0.0
        for i in range(coef_width):  # the trash row: no gradient
            coef[trash_row, i] = 0.0
        # the input rows' gradients, coef x block, applied to their rows at once (the step reads
        # emb_in only in the gather, so every gradient is still taken at the state before it)
        for r0 in range(g0, g1, _ROWS):
            r1 = r0 + 1 if r0 + 1 < g1 else trash_row
            k0 = inputs[start + r0]
            for i0 in range(0, n_cols, _COLS):
                j0, j1, j2, j3, j4, j5 = _six_columns(i0, n_sampled, label_col, trash_col)
                c00, c01, c02 = lr32 * coef[r0, i0], lr32 * coef[r0, i0 + 1], lr32 * coef[r0, i0 + 2]
                c03, c04, c05 = lr32 * coef[r0, i0 + 3], lr32 * coef[r0, i0 + 4], lr32 * coef[r0, i0 + 5]
                if r1 == trash_row:
                    for d in range(dim):
                        emb_in[k0, d] -= (c00 * block[j0, d] + c01 * block[j1, d] + c02 * block[j2, d]
                                          + c03 * block[j3, d] + c04 * block[j4, d] + c05 * block[j5, d])
                else:
                    k1 = inputs[start + r1]
                    c10, c11, c12 = lr32 * coef[r1, i0], lr32 * coef[r1, i0 + 1], lr32 * coef[r1, i0 + 2]
                    c13, c14, c15 = lr32 * coef[r1, i0 + 3], lr32 * coef[r1, i0 + 4], lr32 * coef[r1, i0 + 5]
                    for d in range(dim):
                        b0, b1, b2 = block[j0, d], block[j1, d], block[j2, d]
                        b3, b4, b5 = block[j3, d], block[j4, d], block[j5, d]
                        emb_in[k0, d] -= c00 * b0 + c01 * b1 + c02 * b2 + c03 * b3 + c04 * b4 + c05 * b5
                        emb_in[k1, d] -= c10 * b0 + c11 * b1 + c12 * b2 + c13 * b3 + c14 * b4 + c15 * b5
        # the output rows' gradients: coef^T x inputs. Three distinct rows written (past S+1 the
        # two trash columns; input rows past the run read the trash row, its coefficients 0). The
        # batch's first rows write the sampled rows' deltas and the first run's label row's, later
        # rows add to them.
        for i0 in range(0, n_cols, _DELTA_COLS):
            j0 = _column(i0, n_sampled, label_col, trash_col)
            j1 = _column(i0 + 1, n_sampled, label_col, trash_col)
            j2 = _column(i0 + 2, n_sampled, label_col, trash_col2)
            for r0 in range(g0, g1, _DELTA_ROWS):
                r1 = r0 + 1 if r0 + 1 < g1 else trash_row
                r2 = r0 + 2 if r0 + 2 < g1 else trash_row
                r3 = r0 + 3 if r0 + 3 < g1 else trash_row
                c00, c01, c02 = coef[r0, i0], coef[r0, i0 + 1], coef[r0, i0 + 2]
                c10, c11, c12 = coef[r1, i0], coef[r1, i0 + 1], coef[r1, i0 + 2]
                c20, c21, c22 = coef[r2, i0], coef[r2, i0 + 1], coef[r2, i0 + 2]
                c30, c31, c32 = coef[r3, i0], coef[r3, i0 + 1], coef[r3, i0 + 2]
                if r0 == 0:
                    for d in range(pdim):
                        x0, x1, x2, x3 = xin[r0, d], xin[r1, d], xin[r2, d], xin[r3, d]
                        delta[j0, d] = c00 * x0 + c10 * x1 + c20 * x2 + c30 * x3
                        delta[j1, d] = c01 * x0 + c11 * x1 + c21 * x2 + c31 * x3
                        delta[j2, d] = c02 * x0 + c12 * x1 + c22 * x2 + c32 * x3
                else:
                    for d in range(pdim):
                        x0, x1, x2, x3 = xin[r0, d], xin[r1, d], xin[r2, d], xin[r3, d]
                        delta[j0, d] += c00 * x0 + c10 * x1 + c20 * x2 + c30 * x3
                        delta[j1, d] += c01 * x0 + c11 * x1 + c21 * x2 + c31 * x3
                        delta[j2, d] += c02 * x0 + c12 * x1 + c22 * x2 + c32 * x3
    # 3. Scatter: every output row and bias once (a hot row to this thread's copy)
    for j in range(n_sampled + n_groups):
        if j < n_sampled:
            k = sampled[j]
            db = 0.0
            for r in range(stop - start):
                db += coef[r, j]
        else:
            g = j - n_sampled
            k = labels[start + group_start[g]]
            db = 0.0
            for r in range(group_start[g], group_start[g + 1]):
                db += coef[r, n_sampled]
        rows, biases = (hot_out, hot_bias) if k < n_hot else (emb_out, bias)
        biases[k] -= np.float32(lr * db)
        for d in range(dim):
            rows[k, d] -= lr32 * delta[j, d]
    return loss
