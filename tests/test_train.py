import numpy as np
import pytest

from w2v.config import Config
from w2v.io import read_word2vec_text
from w2v.run import train


def small_cfg(**kw):
    base = dict(dim=24, window=3, min_count=1, epochs=3, workers=1, cache_dir="", num_sampled=5, sample=0.0)
    base.update(kw)
    return Config(**base)


@pytest.mark.parametrize("batch_size", [1, 16])
def test_planted_groups_are_nearest_neighbours(planted_corpus, tmp_path, batch_size):
    path, groups = planted_corpus
    model = train([path], small_cfg(batch_size=batch_size), tmp_path / "run", show_progress=False)
    words, vectors = read_word2vec_text(tmp_path / "run" / "vectors.txt")
    group_of = {w: g for g, ws in enumerate(groups) for w in ws}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    for i, w in enumerate(words):
        top = np.argsort(-sims[i])[:5]  # each group has 5 other members
        assert all(group_of[words[j]] == group_of[w] for j in top), w
    assert model.epoch_loss[3] < model.epoch_loss[1]


def test_one_worker_is_bit_reproducible(planted_corpus, tmp_path):
    path, _ = planted_corpus
    cfg = small_cfg(seed=11, sample=1e-3)
    train([path], cfg, tmp_path / "a", show_progress=False)
    train([path], cfg, tmp_path / "b", show_progress=False)
    train([path], small_cfg(seed=12, sample=1e-3), tmp_path / "c", show_progress=False)
    a = (tmp_path / "a" / "vectors.txt").read_bytes()
    assert a == (tmp_path / "b" / "vectors.txt").read_bytes()
    assert a != (tmp_path / "c" / "vectors.txt").read_bytes()


def test_two_workers_train_too(planted_corpus, tmp_path):
    path, _ = planted_corpus
    model = train([path], small_cfg(workers=2), tmp_path / "w2", show_progress=False)
    assert np.isfinite(model.emb_in).all() and model.epoch_loss[3] < model.epoch_loss[1]


def test_vectors_text_reads_back_exactly_in_gensim(planted_corpus, tmp_path):
    gensim = pytest.importorskip("gensim")
    path, _ = planted_corpus
    model = train([path], small_cfg(epochs=1), tmp_path / "run", show_progress=False)
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "run" / "vectors.txt"))
    assert list(kv.index_to_key) == model.words
    assert np.array_equal(kv.vectors, model.emb_in)
    cfg_text = (tmp_path / "run" / "config.yaml").read_text()
    assert "workers: 1" in cfg_text and "dim: 24" in cfg_text


_COMPILED_HERE = """
import sys, numba, pkgutil, w2v
from pathlib import Path
from w2v.config import Config
from w2v.run import train
cfg = Config(dim=16, window=3, min_count=1, epochs=1, workers=2, cache_dir=sys.argv[2])
train([sys.argv[1]], cfg, Path(sys.argv[3]), show_progress=False)
print(sorted(f"{m.name}.{k}" for m in pkgutil.iter_modules(w2v.__path__) if "w2v." + m.name in sys.modules
             for k, v in vars(sys.modules["w2v." + m.name]).items()
             if isinstance(v, numba.core.dispatcher.Dispatcher) and v._cache_misses))
"""


@pytest.mark.slow
def test_compile_ahead_fills_the_cache_training_then_loads(planted_corpus, tmp_path, monkeypatch):
    """After compile_ahead's child (an empty Numba cache), a training process compiles nothing."""
    import subprocess
    import sys

    from w2v import compile_ahead

    path, _ = planted_corpus
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert compile_ahead.wait(compile_ahead.start(small_cfg(cache_dir=str(tmp_path / "c1"))))
    out = subprocess.run([sys.executable, "-c", _COMPILED_HERE, str(path), str(tmp_path / "c2"), str(tmp_path / "run")],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_tokenizer_ready_waits_for_the_childs_line_and_not_for_a_child_that_ends_without_it():
    import subprocess
    import sys

    from w2v import compile_ahead

    def child(code):
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    said = child("import os, sys, time; time.sleep(0.3); os.write(1, b'tokenizer '); time.sleep(0.2); "
                 "os.write(1, b'compiled\\n'); time.sleep(30)")
    try:
        assert compile_ahead.tokenizer_ready(compile_ahead.Children(said), timeout=20)
    finally:
        compile_ahead.stop(compile_ahead.Children(said))
    assert not compile_ahead.tokenizer_ready(compile_ahead.Children(child("raise SystemExit(3)")), timeout=20)
    silent = child("import time; time.sleep(30)")
    try:
        assert not compile_ahead.tokenizer_ready(compile_ahead.Children(silent), timeout=0.3)
    finally:
        compile_ahead.stop(compile_ahead.Children(silent))
    assert not compile_ahead.tokenizer_ready(None)


def test_compile_ahead_waits_for_both_children_and_stop_ends_both(tmp_path):
    """``wait`` is True only when both children filled the cache, says which one failed and why in
    one line, and removes their temporary directory; ``stop`` ends both."""
    import subprocess
    import sys

    from w2v import compile_ahead

    def child(code):
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    for tokenizer_rc, training_rc in [(0, 0), (0, 3), (3, 0)]:
        tmp = tmp_path / f"t{tokenizer_rc}{training_rc}"
        tmp.mkdir()
        said = []
        ahead = compile_ahead.Children(child(f"import sys; sys.stderr.write('tok'); sys.exit({tokenizer_rc})"),
                                       child(f"import sys; sys.stderr.write('train'); sys.exit({training_rc})"),
                                       str(tmp))
        assert compile_ahead.wait(ahead, said.append) == (tokenizer_rc == training_rc == 0)
        assert len(said) == 1 and not tmp.exists()
        if tokenizer_rc:
            assert "failed" in said[0] and "tokenizer: tok" in said[0] and "training" not in said[0]
        elif training_rc:
            assert "failed" in said[0] and "training: train" in said[0] and "tokenizer" not in said[0]
        else:
            assert said[0].startswith("kernels compiled ahead")
    both = compile_ahead.Children(child("import time; time.sleep(60)"), child("import time; time.sleep(60)"))
    compile_ahead.stop(both)
    assert both.tokenizer.poll() is not None and both.training.poll() is not None


@pytest.mark.slow
def test_a_first_run_compiles_nothing_in_the_training_process(planted_corpus, tmp_path):
    """An empty Numba cache: the tokenizer's kernels and the training kernels are compiled by
    compile_ahead's child, the tokenizer's first, before the run reads its corpus; the run's own
    process only loads them (compiling there made a first run's memory peak)."""
    import os
    import subprocess
    import sys

    path, _ = planted_corpus
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    out = subprocess.run([sys.executable, "-c", _COMPILED_HERE, str(path), str(tmp_path / "c"), str(tmp_path / "run")],
                         capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_workers_write_no_cache_line_another_worker_writes(planted_corpus):
    """Every array a worker writes per batch (cursor, RNG states, negatives, totals, scratch) sits on
    cache lines of its own: two workers' small arrays side by side made the cores fight over a line."""
    from w2v.dataset import prepare
    from w2v.train import _LINE, Trainer

    path, _ = planted_corpus
    cfg = small_cfg(workers=2)
    trainer = Trainer(prepare([path], cfg), cfg)
    spans = []
    for w in trainer.workers:
        arrays = [w.totals] + [v for bundle in (w.stream, w.neg, w.scratch) for k, v in bundle._asdict().items()
                               if isinstance(v, np.ndarray) and k not in ("ids", "keep_prob")]
        for a in arrays:
            lo = a.ctypes.data // _LINE
            hi = (a.ctypes.data + max(a.nbytes, 1) - 1) // _LINE
            spans.append((lo, hi))
    spans.sort()
    assert all(prev[1] < nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))


def test_a_worker_done_takes_over_part_of_another_and_each_epoch_reads_every_id_once(planted_corpus, monkeypatch):
    """Worker 1 starts with 90% of the corpus: worker 0, done early, takes over parts of its span
    (across epochs, not only the last), and the words trained are still every epoch's once."""
    import w2v.train as train_module
    from w2v.checkpoint import check_workers
    from w2v.dataset import prepare
    from w2v.errors import TrainingError

    path, _ = planted_corpus
    cfg = small_cfg(workers=2, epochs=3)
    ds = prepare([path], cfg)
    n = len(ds.ids)
    uneven = [(0, n // 10), (n // 10, n)]
    monkeypatch.setattr(train_module, "worker_spans", lambda n_ids, workers: uneven)
    trainer = train_module.Trainer(ds, cfg)
    assert trainer.run(show_progress=False)
    spans = [(w.start, w.end) for w in trainer.workers]
    # worker 0 ends on a part of worker 1's span (however many times they split it), the parts disjoint
    assert all(n // 10 <= a < b <= n for a, b in spans) and (spans[0][1] <= spans[1][0] or spans[1][1] <= spans[0][0])
    assert trainer.progress.words_done == ds.n_words * cfg.epochs
    assert sum(w.totals[0] for w in trainer.workers) == ds.n_words * cfg.epochs
    assert all(w.epoch == cfg.epochs for w in trainer.workers)
    # the parts are saved with the workers' state and restored with it; a part outside the corpus is refused
    st = trainer.state_arrays()
    assert st["spans"].tolist() == [list(s) for s in spans]
    again = train_module.Trainer(ds, cfg)
    again.load_state(st)
    assert [(w.start, w.end) for w in again.workers] == spans
    bad = {**st, "spans": np.array([[0, n // 2], [n // 2, n + 1]], np.int64)}
    with pytest.raises(TrainingError, match="outside"):
        check_workers(bad, uneven, cfg)


def test_one_worker_never_waits_for_a_take_over(planted_corpus):
    from w2v.dataset import prepare
    from w2v.train import Trainer

    path, _ = planted_corpus
    cfg = small_cfg(workers=1, epochs=2)
    trainer = Trainer(prepare([path], cfg), cfg)
    assert trainer.run(show_progress=False)
    w = trainer.workers[0]
    assert (w.start, w.end) == (0, len(trainer.dataset.ids))
    assert trainer.progress.words_done == 2 * trainer.dataset.n_words


def test_a_worker_stepping_its_copy_of_the_hot_rows_loses_no_step_in_the_syncs(tmp_path):
    """One thread of a two-worker trainer on a 3,000-word Zipfian corpus (1,024 hot rows, synced in
    their tiers every 4,096 pairs) trains the same parameters as the same thread stepping the shared
    rows directly, up to float rounding: a sync that dropped, doubled or missed a row's steps would not."""
    from w2v.dataset import prepare
    from w2v.nce import step_scratch
    from w2v.pairs import max_batch_rows
    from w2v.train import Trainer, _private

    rng = np.random.default_rng(3)
    ranks = np.arange(1, 3001)
    p = 1 / ranks / (1 / ranks).sum()
    tokens = [f"w{i}" for i in rng.choice(3000, size=60_000, p=p)]
    path = tmp_path / "zipf.txt"
    path.write_text("\n".join(" ".join(tokens[i:i + 20]) for i in range(0, len(tokens), 20)) + "\n")
    cfg = small_cfg(workers=2, epochs=1)
    trainer = Trainer(prepare([path], cfg), cfg)
    w, model = trainer.workers[0], trainer.model
    assert w.scratch.hot_out.shape[0] == 1024
    w.set_span(0, len(trainer.dataset.ids))
    start = (model.emb_in.copy(), model.emb_out.copy(), model.bias.copy())
    snapshot = (w.cursor.copy(), w.stream.rng.copy(), w.neg.rng.copy(), w.neg.mark.copy())
    trainer.job_words = 10**9  # the whole corpus in one call: every sync inside the kernel
    results = []
    for scratch in (w.scratch, _private(step_scratch(max_batch_rows(cfg), cfg.num_sampled, cfg.dim, 0))):
        model.emb_in[...], model.emb_out[...], model.bias[...] = start
        w.cursor[:], w.stream.rng[:], w.neg.rng[:], w.neg.mark[:] = snapshot
        w.totals[:] = 0
        w.scratch = scratch
        assert trainer._train_job(w, 0, np.zeros((0, 2), np.int32))
        results.append((model.emb_in.copy(), model.emb_out.copy(), model.bias.copy(), w.totals[1]))
    (in_hot, out_hot, bias_hot, pairs_hot), (in_ref, out_ref, bias_ref, pairs_ref) = results
    assert pairs_hot == pairs_ref > 4 * 32768  # every tier synced several times
    assert np.abs(out_ref - start[1]).max() > 0.05  # the rows moved far...
    for got, want in ((in_hot, in_ref), (out_hot, out_ref), (bias_hot, bias_ref)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # ...and alike, to rounding
