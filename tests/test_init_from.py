"""Continued training: w2v train NEW --init-from RUN (merged vocabulary, moved rows, records, resume)."""

import json
import re
import signal
from collections import Counter

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v.checkpoint import write_arrays
from w2v.cli import main
from w2v.config import Config, ConfigError
from w2v.errors import TrainingError
from w2v.io import OutputError, read_word2vec_text
from w2v.run import (
    CONTINUE_ALPHA_FACTOR,
    Run,
    continued_config,
    continued_dataset,
    continued_model,
    load_checkpoint,
    resume,
    train,
)
from w2v.vocab import Vocab, merge_vocab


def cfg(**kw):
    base = dict(dim=16, window=3, min_count=3, epochs=2, workers=1, cache_dir="", num_sampled=5, seed=4)
    base.update(kw)
    return Config(**base)


def _write(path, rng, weights: dict, n_lines=600, length=10):
    words = list(weights)
    p = np.array([weights[w] for w in words], dtype=float)
    lines = [" ".join(rng.choice(words, size=length, p=p / p.sum())) for _ in range(n_lines)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def corpora(tmp_path):
    """A: a-words frequent, shared s-words rare, two words seen twice; B: b-words and the s-words
    frequent, the a-words absent, so the merged order differs from A's."""
    rng = np.random.default_rng(3)
    a = _write(tmp_path / "A.txt", rng, {**{f"a{i}": 8.0 - i / 4 for i in range(20)},
                                         **{f"s{i}": 0.4 for i in range(8)}})
    with open(a, "a") as fh:
        fh.write("onlyA1 onlyA2 onlyA1 onlyA2\n")
    b = _write(tmp_path / "B.txt", rng, {**{f"b{i}": 6.0 - i / 4 for i in range(15)},
                                         **{f"s{i}": 9.0 for i in range(8)}})
    with open(b, "a") as fh:
        fh.write("onlyB onlyB\n")  # below min_count in B: not added
    return a, b


@pytest.fixture
def run_a(corpora, tmp_path):
    a, _ = corpora
    out = tmp_path / "ra"
    train([a], cfg(min_count=2), out, show_progress=False)
    return out


# -- the merged vocabulary ------------------------------------------------------------------------

def test_merge_counts_order_ties_and_map():
    old = Vocab(["the", "cat", "dog", "emu"], np.array([10, 6, 6, 2]))
    new = Counter({"zebra": 7, "dog": 1, "yak": 6, "the": 3, "gnu": 2, "xi": 6})
    merged, old_to_new = merge_vocab(old, new, min_count=3)
    # counts old + new; gnu (2 < min_count in the new text) not added; emu (merged 2) kept
    assert dict(zip(merged.words, merged.counts.tolist(), strict=True)) == {
        "the": 13, "cat": 6, "dog": 7, "emu": 2, "zebra": 7, "yak": 6, "xi": 6}
    # descending counts; ties: old words first in their old order, then new ones in order of appearance
    assert merged.words == ["the", "dog", "zebra", "cat", "yak", "xi", "emu"]
    assert [merged.words[i] for i in old_to_new] == old.words
    assert merged.index == {w: i for i, w in enumerate(merged.words)}


def test_merge_prune_and_max_vocab_size():
    old = Vocab(["a", "b", "c", "d"], np.array([9, 5, 2, 1]))
    new = Counter({"n1": 8, "n2": 4, "c": 1})
    kept, _ = merge_vocab(old, new, min_count=3, max_vocab_size=2)
    # the cap ranks the merged words reaching min_count (a 9, n1 8, b 5, n2 4): n2 is past it, but
    # RUN's words below the rules stay
    assert kept.words == ["a", "n1", "b", "c", "d"]
    pruned, old_to_new = merge_vocab(old, new, min_count=3, max_vocab_size=2, prune=True)
    assert pruned.words == ["a", "n1"] and old_to_new.tolist() == [0, -1, -1, -1]
    pruned, old_to_new = merge_vocab(old, new, min_count=3, prune=True)
    assert pruned.words == ["a", "n1", "b", "n2", "c"] and old_to_new.tolist() == [0, 2, 4, -1]


@settings(max_examples=60, deadline=None)
@given(old_counts=st.lists(st.integers(1, 30), min_size=1, max_size=25),
       new=st.dictionaries(st.integers(0, 40), st.integers(1, 30), max_size=30),
       min_count=st.integers(1, 6), cap=st.integers(0, 12), prune=st.booleans())
def test_merge_invariants(old_counts, new, min_count, cap, prune):
    old_counts = sorted(old_counts, reverse=True)
    old = Vocab([f"w{i}" for i in range(len(old_counts))], np.array(old_counts))
    new_counts = Counter({f"w{k}": c for k, c in new.items()})
    merged, old_to_new = merge_vocab(old, new_counts, min_count, cap, prune)
    counts = merged.counts.tolist()
    assert counts == sorted(counts, reverse=True) and len(set(merged.words)) == len(merged.words)
    truth = Counter(dict(zip(old.words, old_counts, strict=True))) + new_counts
    assert all(truth[w] == c for w, c in zip(merged.words, counts, strict=True))
    for i, w in enumerate(old.words):
        if old_to_new[i] >= 0:
            assert merged.words[old_to_new[i]] == w
        else:
            assert prune and w not in merged.index
    if not prune:
        assert (old_to_new >= 0).all()
    else:
        assert all(c >= min_count for c in counts) and (not cap or len(merged) <= cap)
    assert all(new_counts[w] >= min_count for w in merged.words if w not in old.index)


# -- the model a continued run starts from --------------------------------------------------------

def test_rows_move_with_their_words_and_new_words_start_fresh(run_a, corpora):
    _, b = corpora
    ck = load_checkpoint(run_a / "checkpoint.npz")
    old_words = ck["words"].tolist()
    dataset, base, c = continued_dataset([b], cfg(init_from=str(run_a)), None)
    model = continued_model(dataset, c, base)
    merged = dataset.vocab
    moved = [w for i, w in enumerate(old_words) if merged.index[w] != i]
    assert len(moved) > len(old_words) // 2  # the s-words climb past the a-words: a real re-sort
    for i, w in enumerate(old_words):
        j = merged.index[w]
        assert np.array_equal(model.emb_in[j], ck["emb_in"][i]) and np.array_equal(model.emb_out[j], ck["emb_out"][i])
        assert model.bias[j] == ck["bias"][i]  # kept as learnt, not re-centred on the merged counts
    new = [w for w in merged.words if w not in set(old_words)]
    assert sorted(new) == sorted(f"b{i}" for i in range(15))  # and not onlyB (twice < min_count 3)
    rows = [merged.index[w] for w in new]
    assert (np.abs(model.emb_in[rows]) <= 0.5 / 16).all() and np.unique(model.emb_in[rows]).size > 100
    assert not model.emb_out[rows].any()
    log_p = np.log(merged.counts / merged.counts.sum()).astype(np.float32)
    assert np.array_equal(model.bias[rows], log_p[rows])


def test_zero_bias_init_and_prune(run_a, corpora):
    _, b = corpora
    dataset, base, c = continued_dataset([b], cfg(init_from=str(run_a), bias_init="zero"), None)
    model = continued_model(dataset, c, base)
    assert not model.bias[[dataset.vocab.index[f"b{i}"] for i in range(15)]].any()
    assert "onlyA1" in dataset.vocab.index  # seen twice in A (RUN's min_count 2), kept without --prune
    pruned, base, _ = continued_dataset([b], cfg(init_from=str(run_a), prune=True), None)
    assert "onlyA1" not in pruned.vocab.index and base["old_to_new"].min() == -1
    assert (pruned.vocab.counts >= 3).all()


# -- whole runs -----------------------------------------------------------------------------------

def test_continued_run_records_and_covers_new_words(run_a, corpora, tmp_path):
    a, b = corpora
    out = tmp_path / "rb"
    result = CliRunner().invoke(main, ["train", str(b), "--init-from", str(run_a), "--output", str(out),
                                       "--workers", "1", "--no-cache", "--quiet"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    run_cfg = yaml.safe_load((run_a / "config.yaml").read_text())
    assert saved["init_from"] == str(run_a.resolve()) and saved["init_from_corpus"] == str(a.resolve())
    assert saved["continued_on"] == str(b.resolve())
    assert saved["alpha"] == run_cfg["alpha"] * CONTINUE_ALPHA_FACTOR
    assert {k: saved[k] for k in ("dim", "min_count", "epochs", "seed")} == \
        {k: run_cfg[k] for k in ("dim", "min_count", "epochs", "seed")}  # RUN's settings are the defaults
    ck = load_checkpoint(out / "checkpoint.npz")
    assert yaml.safe_load(str(ck["config"])) == saved and ck["corpus"].tolist() == [str(b.resolve())]
    words, vectors = read_word2vec_text(out / "vectors.txt")
    assert {f"b{i}" for i in range(15)} <= set(words) and set(load_checkpoint(run_a / "checkpoint.npz")["words"]
                                                               .tolist()) <= set(words)
    assert np.isfinite(vectors).all()
    # the learning rate starts at the continued alpha and decays over this run
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    total, alpha, min_alpha = records[-1]["words"], saved["alpha"], saved["min_alpha"]
    assert total == int(ck["words_done"]) == int(ck["n_words"]) * saved["epochs"]  # this run's words only
    for r in records:
        assert r["learning_rate"] == pytest.approx(max(min_alpha, alpha - (alpha - min_alpha) * r["words"] / total))
    # the recorded config repeats the run (it continues from the same RUN again)
    again = tmp_path / "rb2"
    result = CliRunner().invoke(main, ["train", str(b), "--config", str(out / "config.yaml"), "--output",
                                       str(again), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (again / "vectors.txt").read_bytes() == (out / "vectors.txt").read_bytes()


def test_python_api_and_explicit_settings(run_a, corpora, tmp_path):
    _, b = corpora
    c = continued_config(run_a, overrides={"epochs": 1, "alpha": 0.02, "workers": 1, "cache_dir": ""})
    assert c.epochs == 1 and c.alpha == 0.02 and c.dim == 16 and c.init_from == str(run_a)
    model = train([b], c, tmp_path / "api", show_progress=False)
    assert "b0" in model.words and load_checkpoint(tmp_path / "api" / "checkpoint.npz")["words_done"] > 0
    # a continued run continues in turn; its record names its own parent and corpora
    a, _ = corpora
    again = train([a], continued_config(tmp_path / "api", overrides={"workers": 1}), tmp_path / "api2",
                  show_progress=False)
    saved = yaml.safe_load((tmp_path / "api2" / "config.yaml").read_text())
    assert saved["init_from"] == str((tmp_path / "api").resolve()) and saved["alpha"] == 0.01
    assert saved["init_from_corpus"] == str(b.resolve()) and saved["continued_on"] == str(a.resolve())
    assert again.words[:len(model.words)] != model.words and set(model.words) <= set(again.words)


def test_interrupted_continued_run_resumes_bit_identical(run_a, corpora, tmp_path, monkeypatch):
    _, b = corpora
    c = continued_config(run_a, overrides={"epochs": 3, "workers": 1, "cache_dir": ""})
    full = tmp_path / "full"
    train([b], c, full, show_progress=False)
    original = Run.log_line

    def interrupt_once(self, record):  # SIGINT from the first log line on: the run stops and saves
        original(self, record)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Run, "log_line", interrupt_once)
    part = tmp_path / "part"
    from w2v.train import Interrupted

    with pytest.raises(Interrupted):
        train([b], c, part, show_progress=False)
    monkeypatch.setattr(Run, "log_line", original)
    assert (part / "vectors.partial.txt").exists() and not (part / "vectors.txt").exists()
    assert int(load_checkpoint(part / "checkpoint.npz")["words_done"]) < \
        int(load_checkpoint(full / "checkpoint.npz")["words_done"])
    resume(part, show_progress=False)
    assert (part / "vectors.txt").read_bytes() == (full / "vectors.txt").read_bytes()
    # more epochs go on from the checkpoint, with the merged vocabulary
    more = resume(part, epochs=4, show_progress=False)
    assert more.words == load_checkpoint(full / "checkpoint.npz")["words"].tolist()
    b.write_text(b.read_text() + "b0 b1 b2\n")
    with pytest.raises(TrainingError, match="changed since the checkpoint"):
        resume(part, epochs=5, show_progress=False)


# -- refusals: one line each ----------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(main, [str(x) for x in args])


def assert_one_line_error(result, message):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()  # progress lines may come first
    assert [ln for ln in lines if ln.startswith("w2v: error: ")] == lines[-1:] and message in lines[-1], result.output
    assert "Traceback" not in result.output


def test_refuses_another_dim(run_a, corpora, tmp_path):
    _, b = corpora
    assert_one_line_error(invoke("train", b, "--init-from", run_a, "--dim", 20, "-o", tmp_path / "o"),
                          "has dim 16, this run asks for dim 20")
    conf = tmp_path / "c.yaml"
    conf.write_text("dim: 32\n")
    assert_one_line_error(invoke("train", b, "--init-from", run_a, "--config", conf, "-o", tmp_path / "o"),
                          "has dim 16, this run asks for dim 32")
    with pytest.raises(ConfigError, match="has dim 16"):  # the Python API, a full config
        train([b], cfg(init_from=str(run_a), dim=100), None)
    assert not (tmp_path / "o" / "vectors.txt").exists()


def _rewrite(path, **changes):
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data.update(changes)
    write_arrays(path, data)


@pytest.mark.parametrize("damage, message", [
    ("missing", "no checkpoint in"),
    ("nodir", "does not exist"),
    ("truncated", "damaged"),
    ("flipped", "damaged"),
    ("empty", "damaged"),
    ("shapes", "which does not fit the other arrays"),
    ("nan", "holds NaN or infinite values"),
    ("version", "written by another w2v version"),
    ("nocorpus", "has no 'corpus' array"),
])
def test_refuses_a_run_without_a_sound_checkpoint(run_a, corpora, tmp_path, damage, message):
    _, b = corpora
    ck = run_a / "checkpoint.npz"
    raw = ck.read_bytes()
    target = run_a
    if damage == "missing":
        ck.unlink()
    elif damage == "nodir":
        target = tmp_path / "nowhere"
    elif damage == "truncated":
        ck.write_bytes(raw[: len(raw) // 2])
    elif damage == "flipped":  # a byte inside the stored arrays: the zip's CRC check fails
        i = len(raw) // 3
        ck.write_bytes(raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:])
    elif damage == "empty":
        ck.write_bytes(b"")
    elif damage == "shapes":
        _rewrite(ck, bias=np.zeros(3, np.float32))
    elif damage == "nan":
        with np.load(ck) as z:
            emb = z["emb_in"].copy()
        emb[1, 2] = np.nan
        _rewrite(ck, emb_in=emb)
    elif damage == "version":
        _rewrite(ck, version=np.int64(99))
    elif damage == "nocorpus":
        with np.load(ck) as z:
            write_arrays(ck, {k: z[k] for k in z.files if k != "corpus"})
    out = tmp_path / "o"
    assert_one_line_error(invoke("train", b, "--init-from", target, "-o", out, "--no-cache"), message)
    assert not (out / "vectors.txt").exists()
    with pytest.raises(OutputError, match=re.escape(message)):
        train([b], cfg(init_from=str(target)), None)


def test_refuses_bad_combinations(run_a, corpora, tmp_path):
    _, b = corpora
    assert_one_line_error(invoke("train", "--resume", run_a, "--init-from", run_a), "give one of them")
    assert_one_line_error(invoke("train", b, "--prune", "-o", tmp_path / "o"), "prune applies only")
    assert_one_line_error(invoke("train", "--resume", run_a, "--prune"), "only --epochs")
    assert_one_line_error(invoke("train", b, "--init-from", run_a, "-o", run_a), "holds a finished run")
    assert_one_line_error(invoke("train", b, "--init-from", run_a, "-o", run_a, "--overwrite"),
                          "a directory of its own")
    oov = tmp_path / "oov.txt"
    oov.write_text("zz yy\n")
    assert_one_line_error(invoke("train", oov, "--init-from", run_a, "-o", tmp_path / "o"),
                          "no word of the corpus is in the vocabulary")
