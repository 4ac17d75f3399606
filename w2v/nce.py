"""NCE loss with the exact semantics of ``tf.nn.nce_loss``: a NumPy reference and the Numba step.

For each example b with input x_b, true labels l_bt (t < num_true) and the batch's shared sampled
ids s_j:
  logit_bt = x_b . w_l + b_l - log Q(l)          target 1/num_true
  logit_bj = x_b . w_s + b_s - log Q(s)          target 0
  loss_b   = sum over the row of max(x,0) - x*z + log1p(exp(-|x|))
With remove_accidental_hits, a sampled column equal to one of the row's labels is pushed to
-FLT_MAX (TF: sparse_to_dense(..., -FLT_MAX)), so it adds exactly 0 to loss and gradients.
"""

import numpy as np
from numba import njit

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


# log1p(e) on [0, 1] for the reported loss: libm's log1p was a third of a training step's time
# (profiled); linear interpolation in this table is off by at most 1.2e-7. Gradients use exact exp.
_LOG1P_STEPS = 1024
_LOG1P_TABLE = np.log1p(np.arange(_LOG1P_STEPS + 2) / _LOG1P_STEPS)


_POW2 = 2.0 ** np.arange(-150, 1)


@njit(cache=True, nogil=True, fastmath=True)
def _exp_nonpositive(z):
    """exp(z) for z <= 0 to ~1e-8 relative (degree-7 polynomial after Cody-Waite reduction);
    libm's exp was ~40 ns a call, the largest cost of a step after the memory traffic."""
    if z < -100.0:
        return 0.0  # below float32's smallest denormal
    n = np.floor(z * 1.4426950408889634 + 0.5)
    r = z - n * 0.6931471805599453
    p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r / 5040))))))
    return p * _POW2[np.int64(n) + 150]


@njit(cache=True, nogil=True, fastmath=True)
def _sigmoid_softplus(x):
    """(sigmoid(x), log(1 + exp(x))) from one exp, stable for any x."""
    e = _exp_nonpositive(-abs(x))
    t = e * _LOG1P_STEPS
    i = np.int64(t)
    log1p_e = _LOG1P_TABLE[i] + (t - i) * (_LOG1P_TABLE[i + 1] - _LOG1P_TABLE[i])
    if x >= 0:
        return 1.0 / (1.0 + e), x + log1p_e
    return e / (1.0 + e), log1p_e


@njit(cache=True, nogil=True)
def _masked_rows(centres_ctx, r0, r1, sampled, s):
    """Rows r0..r1 whose label is sampled[s] with s the last position of that id (TF's mask)."""
    k = sampled[s]
    hits = 0
    for r in range(r0, r1):
        if centres_ctx[r] == k:
            hits += 1
    if hits:
        for j in range(s + 1, sampled.shape[0]):
            if sampled[j] == k:
                return 0
    return hits


@njit(cache=True, nogil=True)
def flush_hot_rows(emb_out, bias, hot_out, hot_bias):
    """Apply a thread's pending deltas of the hot output rows to the shared parameters."""
    for k in range(hot_out.shape[0]):
        bias[k] += hot_bias[k]
        hot_bias[k] = 0.0
        for d in range(hot_out.shape[1]):
            emb_out[k, d] += hot_out[k, d]
            hot_out[k, d] = 0.0


@njit(cache=True, nogil=True, fastmath=True)
def nce_sgd_step(emb_in, emb_out, bias, centres, contexts, start, stop, sampled, log_q_sampled,
                 log_q_true, lr, remove_hits, coef_true, coef_sampled, group_start, grad_in,
                 hot_out, hot_bias):
    """One SGD step on sum(loss) of the batch rows [start, stop), in place; returns sum(loss).

    Same result as ``sgd_step_reference``: every gradient is taken at the state before the step.
    Consecutive rows with the same centre (a skip-gram centre's contexts) share their input
    vector, so their sampled logits are computed once for the group (the HogBatch trick, Ji et
    al. 2016): B + groups*S dot products instead of B*(1+S). ``log_q_true`` is indexed by
    row - start. Scratch arrays (caller-owned, so nothing is allocated here): coef_true [B],
    coef_sampled [B, S], group_start [B+1], grad_in [B, D].

    ``hot_out`` [H, D] / ``hot_bias`` [H]: this thread's pending steps of output rows 0..H-1 (the
    most frequent words, which the log-uniform sampler draws all the time). With several workers,
    writing those shared rows on every step makes the cores fight over their cache lines; the
    steps collect here and ``flush_hot_rows`` applies them now and then. Reads add the delta, so
    the thread's own view is exact. H = 0 writes every row directly.
    """
    dim = emb_in.shape[1]
    n_sampled = sampled.shape[0]
    n_groups = 0
    r = start
    while r < stop:
        group_start[n_groups] = r
        n_groups += 1
        c = centres[r]
        r += 1
        while r < stop and centres[r] == c:
            r += 1
    group_start[n_groups] = stop
    n_hot = hot_out.shape[0]

    # The row loops are written out here, not in helpers: a numba call taking arrays costs
    # reference-count updates (atomic, on cache lines the workers share), which doubled a step.
    loss = 0.0
    # 1. d loss / d logit for every cell, from the current parameters.
    for g in range(n_groups):
        r0 = group_start[g]
        r1 = group_start[g + 1]
        c = centres[r0]
        # columns j < S are the shared sampled ids (target 0), then the group's labels (target 1)
        for j in range(n_sampled + r1 - r0):
            if j < n_sampled:
                k, log_q = sampled[j], log_q_sampled[j]
            else:
                r = r0 + j - n_sampled
                k, log_q = contexts[r], log_q_true[r - start]
            dot = np.float32(0.0)
            if k < n_hot:
                for d in range(dim):
                    dot += emb_in[c, d] * (emb_out[k, d] + hot_out[k, d])
                b_k = bias[k] + hot_bias[k]
            else:
                for d in range(dim):
                    dot += emb_in[c, d] * emb_out[k, d]
                b_k = bias[k]
            # TF: logits += b; logits -= log(expected_count)
            x = np.float64(dot) + b_k - log_q
            sig, sp = _sigmoid_softplus(x)
            if j < n_sampled:
                live = r1 - r0
                if remove_hits:
                    live -= _masked_rows(contexts, r0, r1, sampled, j)
                coef_sampled[g, j] = live * sig  # target 0: d/dx = sigmoid(x)
                loss += live * sp
            else:
                coef_true[r - start] = sig - 1.0  # target 1 (num_true = 1)
                loss += sp - x
    # 2. Input gradients, from the output vectors before they move.
    for g in range(n_groups):
        for d in range(dim):
            grad_in[g, d] = 0.0
        for j in range(n_sampled + group_start[g + 1] - group_start[g]):
            if j < n_sampled:
                k, a = sampled[j], coef_sampled[g, j]
            else:
                r = group_start[g] + j - n_sampled
                k, a = contexts[r], coef_true[r - start]
            if k < n_hot:
                for d in range(dim):
                    grad_in[g, d] += a * (emb_out[k, d] + hot_out[k, d])
            else:
                for d in range(dim):
                    grad_in[g, d] += a * emb_out[k, d]
    # 3. Output vectors and biases, from the input vectors before they move; a hot row's step
    #    goes to this thread's delta.
    for g in range(n_groups):
        c = centres[group_start[g]]
        for j in range(n_sampled + group_start[g + 1] - group_start[g]):
            if j < n_sampled:
                k, a = sampled[j], np.float32(lr * coef_sampled[g, j])
            else:
                r = group_start[g] + j - n_sampled
                k, a = contexts[r], np.float32(lr * coef_true[r - start])
            if k < n_hot:
                hot_bias[k] -= a
                for d in range(dim):
                    hot_out[k, d] -= a * emb_in[c, d]
            else:
                bias[k] -= a
                for d in range(dim):
                    emb_out[k, d] -= a * emb_in[c, d]
    # 4. Input vectors.
    lr32 = np.float32(lr)
    for g in range(n_groups):
        c = centres[group_start[g]]
        for d in range(dim):
            emb_in[c, d] -= lr32 * grad_in[g, d]
    return loss
