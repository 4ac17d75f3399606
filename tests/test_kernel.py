"""The Numba SGD step against the NumPy reference (and so against TensorFlow's gradients)."""

import numpy as np
import pytest
from conftest import TF_NCE, load_npz

from w2v.nce import Params, nce_sgd_step, sgd_step_reference, step_scratch, sync_hot_rows
from w2v.sampler import expected_count


def run_kernel(emb_in, emb_out, bias, inputs, labels, sampled, true_ec, sampled_ec, lr, rah, hot=0):
    """One step; with ``hot`` rows stepped in a thread-local copy, then synced (the multi-worker path)."""
    b, s, d = len(inputs), len(sampled), emb_in.shape[1]
    params = Params(emb_in, emb_out, bias)
    sc = step_scratch(b, s, d, hot)
    hot_arrays = (sc.hot_out, sc.hot_bias, sc.hot_base, sc.hot_bias_base)
    if hot:
        sync_hot_rows(params, *hot_arrays, hot, False)
        before = emb_out[:hot].copy(), bias[:hot].copy()
    loss = nce_sgd_step(params, np.asarray(inputs, np.int32), np.asarray(labels, np.int32), 0, b,
                        np.asarray(sampled, np.int64), np.log(np.float64(sampled_ec)), np.log(np.float64(true_ec)),
                        lr, rah, sc)
    if hot:
        # the hot rows' steps went to the copy, not the shared rows...
        assert np.array_equal(emb_out[:hot], before[0]) and np.array_equal(bias[:hot], before[1])
        assert not np.array_equal(sc.hot_out, sc.hot_base)
        sync_hot_rows(params, *hot_arrays, hot, True)  # ...until the sync
        np.testing.assert_array_equal(sc.hot_out, emb_out[:hot])  # which refreshed the copy
    return loss


def random_state(rng, v, d):
    emb_in = rng.normal(0, 0.5, (v, d)).astype(np.float32)
    emb_out = rng.normal(0, 0.5, (v, d)).astype(np.float32)
    bias = rng.normal(0, 1, v).astype(np.float32)
    return emb_in, emb_out, bias


def assert_kernel_step_equals_reference(state, inputs, labels, sampled, true_ec, sampled_ec, rah, hot, lr=0.3):
    """One step of the kernel and of the NumPy reference from copies of ``state``: same loss and
    parameters (rtol/atol 1e-5). Returns the kernel's parameters."""
    ref = [a.copy() for a in state]
    got = [a.copy() for a in state]
    ref_loss = sgd_step_reference(*ref, inputs, labels, sampled, true_ec, sampled_ec, lr, rah)
    got_loss = run_kernel(*got, inputs, labels, sampled, true_ec, sampled_ec, lr, rah, hot)
    assert got_loss == pytest.approx(ref_loss, rel=1e-5)
    for g, r, name in zip(got, ref, ["emb_in", "emb_out", "bias"], strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5, err_msg=name)
    return got


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
    got = assert_kernel_step_equals_reference(state, centres, contexts, sampled, true_ec, sampled_ec, rah, hot)
    assert not np.array_equal(got[0], state[0])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rah", [False, True])
@pytest.mark.parametrize("hot", [0, 5])
def test_kernel_window_batch_equals_reference_step(seed, rah, hot):
    """A window batch: inputs are one centre's contexts (some repeated), every label is the centre,
    and the centre is among the shared negatives in half the cases (an accidental hit)."""
    rng = np.random.default_rng(100 + seed)
    v, d, s = int(rng.integers(20, 300)), int(rng.integers(1, 130)), int(rng.integers(1, 12))
    b = int(rng.integers(1, 21))
    centre = int(rng.integers(0, 10))
    contexts = rng.integers(0, 8, size=b)  # small range: repeated contexts in the window
    labels = np.full(b, centre)
    unique = seed % 2 == 0
    sampled = rng.choice(v, size=s, replace=False) if unique else rng.integers(0, 12, size=s)
    if seed % 4 < 2:
        sampled[int(rng.integers(0, s))] = centre  # the centre drawn as a negative
    tries = s + int(rng.integers(0, 5))
    true_ec = expected_count(labels, v, s, tries)
    sampled_ec = expected_count(sampled, v, s, tries)
    state = random_state(rng, v, d)
    got = assert_kernel_step_equals_reference(state, contexts, labels, sampled, true_ec, sampled_ec, rah, hot)
    assert not np.array_equal(got[1], state[1])


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


def test_sigmoid_softplus_table_is_within_float32_precision():
    from w2v.nce import _sigmoid_softplus

    x = np.concatenate([np.linspace(-40, 40, 200_001), np.random.default_rng(0).normal(0, 8, 100_000),
                        [-24.0, 24.0, -23.99999, 23.99999, 0.0]])
    got = np.array([_sigmoid_softplus(v) for v in x])
    sig = 1 / (1 + np.exp(-x))
    softplus = np.logaddexp(0, x)
    assert np.abs(got[:, 0] - sig).max() < 1.2e-7
    assert (np.abs(got[:, 1] - softplus) / np.maximum(1, softplus)).max() < 2.8e-7
    assert np.isnan(_sigmoid_softplus(np.nan)).all()  # never an index from a NaN


@pytest.mark.parametrize("num_sampled", [1, 5, 16, 17, 40])
def test_unique_draws_equal_the_formula_both_ways_of_finding_duplicates(num_sampled):
    """Up to sampler._SCAN_MAX ids a draw, duplicates are found by searching the ids drawn so far,
    above it in the stamp array: both give TF's draw (the formula, first occurrences, every try counted)."""
    from w2v.rng import make_state, next_float
    from w2v.sampler import _log_range, draw_log_uniform, floor_table

    v = 50  # small: many duplicates
    state, ref_state = make_state(3, 0, 1), make_state(3, 0, 1)
    stamp = np.zeros(v, np.int64)
    for mark in range(1, 30):
        out = np.empty(num_sampled, np.int64)
        tries = draw_log_uniform(state, v, floor_table(v), num_sampled, True, out, stamp, mark)
        want, want_tries = [], 0
        while len(want) < num_sampled:
            k = int(np.exp(next_float(ref_state) * _log_range(v))) - 1
            k = k - v if k >= v else k
            want_tries += 1
            if k not in want:
                want.append(k)
        assert out.tolist() == want and tries == want_tries


def test_numba_cache_is_keyed_by_the_package_sources(tmp_path):
    """A hand-run w2v (NUMBA_CACHE_DIR unset) caches its kernels in a directory named by the version
    and a hash of the sources: an edited or upgraded package never loads a kernel compiled from
    other sources. A NUMBA_CACHE_DIR set by the user is kept."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import w2v

    pkg = tmp_path / "pkg"
    shutil.copytree(Path(w2v.__file__).parent, pkg / "w2v", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), PYTHONPATH=str(pkg))

    def cache_dir(**extra):
        out = subprocess.run([sys.executable, "-c", "import numba, w2v; print(numba.config.CACHE_DIR)"],
                             env={**env, **extra}, cwd=tmp_path, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    first = cache_dir()
    assert first.startswith(str(tmp_path / "xdg" / "w2v" / "numba" / f"{w2v.__version__}-"))
    assert cache_dir() == first
    with open(pkg / "w2v" / "sampler.py", "a") as fh:  # a kernel's callee edited: a new directory
        fh.write("\n# edited\n")
    assert cache_dir() not in ("", first)
    assert cache_dir(NUMBA_CACHE_DIR=str(tmp_path / "mine")) == str(tmp_path / "mine")


def test_hot_row_syncs_add_every_threads_changes_and_keep_the_shared_rows_changes():
    """Two threads' copies of the hot rows, each stepped, then synced one after the other: the shared
    rows end with both threads' changes and any made to them meanwhile (a resume, a Ray sync), and
    each copy is refreshed with everything pushed before its sync."""
    rng = np.random.default_rng(0)
    v, d, hot = 12, 7, 4
    emb_out = rng.normal(size=(v, d)).astype(np.float32)
    bias = rng.normal(size=v).astype(np.float32)
    params = Params(np.zeros((v, d), np.float32), emb_out, bias)
    start_rows, start_bias = emb_out.copy(), bias.copy()
    scratches = [step_scratch(1, 1, d, hot) for _ in range(2)]
    arrays = [(sc.hot_out, sc.hot_bias, sc.hot_base, sc.hot_bias_base) for sc in scratches]
    for a in arrays:
        sync_hot_rows(params, *a, hot, False)
        np.testing.assert_array_equal(a[0], start_rows[:hot])
    changes = [rng.normal(size=(hot, d)).astype(np.float32) for _ in range(2)]
    bias_changes = [rng.normal(size=hot).astype(np.float32) for _ in range(2)]
    for a, c, cb in zip(arrays, changes, bias_changes, strict=True):
        a[0][...] += c
        a[1][...] += cb
    outside = np.float32(0.25)
    emb_out[:hot] += outside  # changed by someone else between the pulls and the pushes
    sync_hot_rows(params, *arrays[0], hot, True)
    np.testing.assert_allclose(arrays[0][0], start_rows[:hot] + outside + changes[0], rtol=1e-5, atol=1e-5)
    sync_hot_rows(params, *arrays[1], hot, True)
    want = start_rows[:hot] + outside + changes[0] + changes[1]
    np.testing.assert_allclose(emb_out[:hot], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bias[:hot], start_bias[:hot] + bias_changes[0] + bias_changes[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(arrays[1][0], emb_out[:hot])
    np.testing.assert_array_equal(emb_out[hot:], start_rows[hot:])  # rows past the hot ones untouched
