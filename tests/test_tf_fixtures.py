"""The NumPy reference (and the expected-count formula) against real TensorFlow numbers."""

import numpy as np
import pytest
from conftest import TF_NCE, load_npz

from w2v.nce import accidental_hits, compute_sampled_logits, nce_loss
from w2v.sampler import expected_count, log_uniform_probs

NCE_CASES = sorted(p.name for p in TF_NCE.glob("nce_*.npz"))
SAMPLER_CASES = sorted(p.name for p in TF_NCE.glob("sampler_V*.npz"))


def assert_close_grad(got, ref):
    atol = max(1e-6, 1e-5 * float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("name", NCE_CASES)
def test_nce_loss_and_grads_match_tensorflow(name):
    f = load_npz(TF_NCE / name)
    loss, grads = nce_loss(f["inputs"], f["weights"], f["biases"], f["labels"], f["sampled"],
                           f["true_expected_count"], f["sampled_expected_count"],
                           remove_accidental_hits=bool(f["remove_accidental_hits"]))
    assert loss.shape == f["loss"].shape and loss.dtype == np.float32
    np.testing.assert_allclose(loss, f["loss"], rtol=1e-5, atol=1e-6)
    assert grads["weights"].shape == f["weights"].shape
    assert_close_grad(grads["inputs"], f["grad_inputs"])
    assert_close_grad(grads["weights"], f["grad_weights"])
    assert_close_grad(grads["biases"], f["grad_biases"])


@pytest.mark.parametrize("name", NCE_CASES)
def test_logits_and_masks_match_tensorflow(name):
    f = load_npz(TF_NCE / name)
    logits, targets, mask = compute_sampled_logits(
        f["inputs"], f["weights"], f["biases"], f["labels"], f["sampled"], f["true_expected_count"],
        f["sampled_expected_count"], bool(f["remove_accidental_hits"]))
    ref = f["logits"]
    live = ref > -1e38
    assert np.array_equal(logits < -1e38, ~live), "masked cells differ from TF's"
    np.testing.assert_allclose(logits[live], ref[live], rtol=1e-5, atol=max(1e-5, 1e-6 * np.abs(ref[live]).max()))
    np.testing.assert_array_equal(targets.astype(np.float32), f["target_labels"])
    # compute_accidental_hits: every (row, position) TF reports is a hit of ours
    hits = accidental_hits(f["labels"], f["sampled"])
    assert hits[f["acc_hit_rows"], f["acc_hit_pos"]].all()
    assert hits.sum() == len(set(zip(f["acc_hit_rows"].tolist(), f["acc_hit_pos"].tolist(), strict=False)))


@pytest.mark.parametrize("name", NCE_CASES)
def test_fixture_expected_counts_follow_the_formula(name):
    f = load_npz(TF_NCE / name)
    n, s, v = int(f["sampler_num_tries_inferred"]), int(f["num_sampled"]), int(f["num_classes"])
    np.testing.assert_allclose(expected_count(f["labels"], v, s, n), f["true_expected_count"], rtol=2e-6)
    np.testing.assert_allclose(expected_count(f["sampled"], v, s, n), f["sampled_expected_count"], rtol=2e-6)


@pytest.mark.parametrize("name", SAMPLER_CASES)
def test_sampler_expected_counts_match_tensorflow(name):
    f = load_npz(TF_NCE / name)
    v, s = int(f["range_max"]), int(f["num_sampled"])
    for t, n in enumerate(f["num_tries_inferred"]):
        n = int(n)
        if not f["unique"]:
            assert n == s
        got_true = expected_count(f["true_classes"], v, s, n)
        got_sampled = expected_count(f["sampled"][t], v, s, n)
        assert got_true.dtype == np.float32 and got_true.shape == f["true_classes"].shape
        np.testing.assert_allclose(got_true, f["true_expected_count"][t], rtol=2e-6)
        np.testing.assert_allclose(got_sampled, f["sampled_expected_count"][t], rtol=2e-6)


def test_unique_without_duplicates_uses_p_times_s_not_one_minus_power():
    # The edge case: n == S takes TF's shortcut Q = P * S, although 1 - (1-P)^S is smaller.
    p = log_uniform_probs(50)[0]
    q = expected_count([0], 50, 5, 5)[0]
    assert q == np.float32(p * np.float32(5))
    assert q > -np.expm1(5 * np.log1p(-np.float64(p))) + 1e-3


def test_tensorflow_empirical_draws_follow_our_probabilities():
    f = load_npz(TF_NCE / "sampler_empirical.npz")
    n = int(f["n_draws"])
    for v in f["range_maxes"]:
        p = log_uniform_probs(int(v)).astype(np.float64)
        ids, counts = f[f"V{v}_ids"], f[f"V{v}_counts"]
        z = (counts / n - p[ids]) / np.sqrt(p[ids] * (1 - p[ids]) / n)
        assert np.abs(z).max() < 4.5
