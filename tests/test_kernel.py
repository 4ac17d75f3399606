"""The Numba SGD step against the NumPy reference (and so against TensorFlow's gradients)."""

import numpy as np
import pytest
from conftest import TF_NCE, load_npz

from w2v.nce import flush_hot_rows, nce_sgd_step, sgd_step_reference
from w2v.sampler import expected_count


def run_kernel(emb_in, emb_out, bias, centres, contexts, sampled, true_ec, sampled_ec, lr, rah, hot=0):
    """One step; with ``hot`` rows buffered thread-locally, then flushed (the multi-worker path)."""
    b, s, d = len(centres), len(sampled), emb_in.shape[1]
    hot_out, hot_bias = np.zeros((hot, d), np.float32), np.zeros(hot, np.float32)
    loss = nce_sgd_step(emb_in, emb_out, bias, np.asarray(centres, np.int32), np.asarray(contexts, np.int32),
                        0, b, np.asarray(sampled, np.int64), np.log(np.float64(sampled_ec)),
                        np.log(np.float64(true_ec)), lr, rah, np.empty(b, np.float32),
                        np.empty((b, s), np.float32), np.empty(b + 1, np.int64), np.empty((b, d), np.float32),
                        hot_out, hot_bias)
    if hot:
        assert np.abs(hot_out).sum() > 0  # the hot rows' steps were held back...
        flush_hot_rows(emb_out, bias, hot_out, hot_bias)  # ...until the flush
    return loss


def random_state(rng, v, d):
    emb_in = rng.normal(0, 0.5, (v, d)).astype(np.float32)
    emb_out = rng.normal(0, 0.5, (v, d)).astype(np.float32)
    bias = rng.normal(0, 1, v).astype(np.float32)
    return emb_in, emb_out, bias


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rah", [False, True])
@pytest.mark.parametrize("hot", [0, 5])
def test_kernel_step_equals_reference_step(seed, rah, hot):
    rng = np.random.default_rng(seed)
    v, d, s = int(rng.integers(20, 300)), int(rng.integers(1, 70)), int(rng.integers(1, 12))
    b = int(rng.integers(1, 40))
    # runs of equal centres (as skip-gram emits them), a centre recurring later, and labels
    # that collide with sampled ids, so masking and the grouped path are both exercised
    centres = np.repeat(rng.integers(0, 6, size=b), rng.integers(1, 4, size=b))[:b]
    contexts = rng.integers(0, min(v, 15), size=len(centres))
    unique = seed % 2 == 0
    sampled = (rng.choice(min(v, 15) + s, size=s, replace=False) % v) if unique else rng.integers(0, 8, size=s)
    tries = s + int(rng.integers(0, 5))
    true_ec = expected_count(contexts, v, s, tries)
    sampled_ec = expected_count(sampled, v, s, tries)
    state = random_state(rng, v, d)
    ref = [a.copy() for a in state]
    got = [a.copy() for a in state]
    lr = 0.3
    ref_loss = sgd_step_reference(*ref, centres, contexts, sampled, true_ec, sampled_ec, lr, rah)
    got_loss = run_kernel(*got, centres, contexts, sampled, true_ec, sampled_ec, lr, rah, hot)
    assert got_loss == pytest.approx(ref_loss, rel=1e-5)
    for g, r, name in zip(got, ref, ["emb_in", "emb_out", "bias"], strict=False):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5, err_msg=name)
    assert not np.array_equal(got[0], state[0])


@pytest.mark.parametrize("name", ["nce_medium_nt1_rahF.npz", "nce_small_nt1_rahF.npz",
                                  "nce_small_nt1_rahT.npz", "nce_edge_nonunique_nt1_rahT.npz"])
def test_kernel_step_applies_tensorflow_gradients(name):
    f = load_npz(TF_NCE / name)
    b = len(f["inputs"])
    emb_in, emb_out, bias = f["inputs"].copy(), f["weights"].copy(), f["biases"].copy()
    lr = 0.05
    loss = run_kernel(emb_in, emb_out, bias, np.arange(b), f["labels"][:, 0], f["sampled"],
                      f["true_expected_count"][:, 0], f["sampled_expected_count"], lr,
                      bool(f["remove_accidental_hits"]))
    assert loss == pytest.approx(float(f["loss"].astype(np.float64).sum()), rel=1e-5)
    for got, start, grad in [(emb_in, f["inputs"], f["grad_inputs"]), (emb_out, f["weights"], f["grad_weights"]),
                             (bias, f["biases"], f["grad_biases"])]:
        want = start - lr * grad
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))
