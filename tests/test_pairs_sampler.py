"""Statistics a wrong formula fails: window sizes, subsampling keep rates, sampler frequencies."""

import numpy as np
import pytest
from scipy import stats

from w2v.config import Config
from w2v.dataset import prepare
from w2v.pairs import iter_batches, keep_probabilities, next_piece, piece_pairs
from w2v.rng import make_state
from w2v.sampler import _log_range, _sample_value, draw_log_uniform, floor_table, log_uniform_probs, sample_log_uniform
from w2v.train import fit


@pytest.mark.parametrize("window", [1, 3, 5])
def test_dynamic_window_is_uniform_on_1_to_window(window):
    n = 20000
    kept = np.arange(n, dtype=np.int32)
    centres = np.empty(n * 2 * window, np.int32)
    contexts = np.empty_like(centres)
    window_of = np.empty_like(centres)
    rng = make_state(3, 0, 0)
    m = piece_pairs(kept, n, window, rng, centres, contexts, window_of)
    np.testing.assert_array_equal(window_of[:m], centres[:m])  # kept[i] == i here
    # interior centres have 2b pairs, all within distance b
    per_centre = np.bincount(centres[:m], minlength=n)[window:-window]
    b = per_centre // 2
    assert (per_centre % 2 == 0).all() and b.min() >= 1 and b.max() <= window
    dist = np.abs(centres[:m].astype(np.int64) - contexts[:m])
    assert dist.min() >= 1 and dist.max() <= window
    if window > 1:
        observed = np.bincount(b, minlength=window + 1)[1:]
        assert stats.chisquare(observed).pvalue > 1e-4


def test_subsampling_keep_rate_matches_formula():
    counts = np.array([200000, 50000, 10000, 2000, 300, 50], dtype=np.int64)
    sample = 1e-3
    keep = keep_probabilities(counts, sample)
    # the formula by hand for the most frequent word
    t = sample * counts.sum()
    assert keep[0] == pytest.approx((np.sqrt(counts[0] / t) + 1) * t / counts[0])
    assert keep[-1] == 1.0 and (np.diff(keep) >= 0).all()
    ids = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    np.random.default_rng(0).shuffle(ids)
    kept = np.empty(len(ids), np.int32)
    rng = make_state(1, 0, 0)
    pos, n_words, n_kept = next_piece(ids, 0, len(ids), len(ids), keep, rng, kept)
    assert pos == len(ids) and n_words == len(ids)
    observed = np.bincount(kept[:n_kept], minlength=len(counts))
    expected = counts * keep
    z = (observed - expected) / np.sqrt(np.maximum(counts * keep * (1 - keep), 1e-9))
    assert np.abs(z).max() < 4.5
    assert observed[-1] == counts[-1]


@pytest.mark.parametrize("v", [50, 5000, 71290])
def test_sampler_frequencies_match_log_uniform(v):
    draws = 200_000
    out = np.empty(draws, np.int64)
    tries = draw_log_uniform(make_state(5, 0, 1), v, floor_table(v), draws, False, out,
                             np.zeros(v, np.int64), 1)
    assert tries == draws and out.min() >= 0 and out.max() < v
    p = log_uniform_probs(v).astype(np.float64)
    top = 20
    observed = np.bincount(out, minlength=v)
    obs = np.append(observed[:top], observed[top:].sum())
    exp = np.append(p[:top], p[top:].sum()) * draws
    assert stats.chisquare(obs, exp).pvalue > 1e-4
    # a wrong formula (plain 1/(k+1) Zipf, or off by one in k) fails the same test
    wrong = 1.0 / (np.arange(v) + 1.0)
    wrong /= wrong.sum()
    assert stats.chisquare(obs, np.append(wrong[:top], wrong[top:].sum()) * draws).pvalue < 1e-6


@pytest.mark.parametrize("v", [50, 5000, 71290])
def test_floor_table_draws_exactly_the_formulas_ids(v):
    # the table shortcut must give the very ids exp() gives, for any u
    table = floor_table(v)
    u = np.random.default_rng(v).random(20000)
    u = np.concatenate([u, np.arange(len(table)) / (len(table) - 1)])[:-1]
    grid = len(table) - 1
    from_table = [table[int(x * grid)] if table[int(x * grid)] == table[int(x * grid) + 1]
                  else _sample_value(x, _log_range(v)) for x in u]
    assert from_table == [_sample_value(x, _log_range(v)) for x in u]
    same = (table[:-1] == table[1:]).mean()
    assert same > 0.5  # most draws skip exp()


def test_unique_sampling_distinct_with_tries():
    ids, tries = sample_log_uniform(make_state(2, 0, 1), 50, 40, unique=True)
    assert len(set(ids.tolist())) == 40 and tries > 40
    with pytest.raises(ValueError, match="range is too small"):
        sample_log_uniform(make_state(2, 0, 1), 50, 64, unique=True)


@pytest.mark.parametrize("batch", ["pairs", "window"])
def test_iter_batches_are_the_pairs_training_consumes(tmp_path, batch):
    rng = np.random.default_rng(1)
    words = [f"w{int(z)}" for z in rng.zipf(1.3, size=30000) if z < 400]
    lines = [" ".join(words[i:i + 40]) for i in range(0, len(words), 40)]
    p = tmp_path / "c.txt"
    p.write_text("\n".join(lines) + "\n")
    cfg = Config(min_count=2, epochs=1, workers=1, batch=batch, batch_size=7, num_sampled=5, window=3,
                 max_sentence_length=25, cache_dir="")
    ds = prepare([p], cfg)
    batches = list(iter_batches(ds.ids, ds.vocab.counts, cfg))
    pairs = np.concatenate([np.stack([b.centres, b.contexts], 1) for b in batches])
    if batch == "pairs":
        assert max(len(b.centres) for b in batches) == 7
        assert all((b.inputs is b.centres) and (b.labels is b.contexts) for b in batches)
    else:
        # one batch per centre: one label, the inputs are its contexts, at most 2 * window of them
        assert max(len(b.centres) for b in batches) == 6
        assert all(len(set(b.labels.tolist())) == 1 and b.inputs is b.contexts for b in batches)
    trace = np.full((len(pairs) + 10, 2), -1, np.int32)
    fit(ds, cfg, show_progress=False, trace=trace)
    np.testing.assert_array_equal(trace[:len(pairs)], pairs)
    assert (trace[len(pairs):] == -1).all()
