"""The corpus counted and encoded in a child process (w2v.prepare_child): the same dataset as in
this process, errors carried over, the tokenizer never loaded by the training process."""

import os
import subprocess
import sys

import numpy as np
import pytest

from w2v import prepare_child
from w2v.config import Config
from w2v.corpus import CorpusError
from w2v.dataset import prepare as prepare_here


def _cfg(**kw):
    return Config(**{"min_count": 2, "workers": 2, "cache_dir": "", **kw})


def _corpus(tmp_path):
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(300)]
    p = rng.zipf(1.3, size=40_000) % len(words)
    lines = [" ".join(words[i] for i in p[k:k + 17]) for k in range(0, len(p), 17)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("cached", [True, False])
def test_the_childs_dataset_is_the_one_prepared_here(tmp_path, monkeypatch, cached):
    path = _corpus(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    cache = str(tmp_path / "cache") if cached else ""
    logged = []
    child = prepare_child.prepare([path], _cfg(cache_dir=cache), logged.append)
    here = prepare_here([path], _cfg(cache_dir=""))
    assert child.vocab.words == here.vocab.words
    assert (child.vocab.counts == here.vocab.counts).all()
    assert np.array_equal(np.asarray(child.ids), np.asarray(here.ids))
    assert child.n_words == here.n_words and child.stats == here.stats
    assert child.mapped  # read from the file, as a warm run's
    assert any(line.startswith("vocabulary: ") for line in logged)  # the child's log lines reach ours
    if cached:
        assert child.cache_path is not None and child.cache_path.parent == tmp_path / "cache"
        assert prepare_child.prepare([path], _cfg(cache_dir=cache)).cache_path == child.cache_path
    else:
        assert child.cache_path is None
    assert os.listdir(tmp_path / "tmp") == []  # --no-cache's entry removed (its map still reads)


def test_a_users_error_in_the_child_is_raised_here_with_its_message(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"some words\x00 and a NUL\n")
    with pytest.raises(CorpusError, match="looks like a binary file"):
        prepare_child.prepare([path], _cfg())
    with pytest.raises(CorpusError, match="no word reaches min_count=50"):
        prepare_child.prepare([_corpus(tmp_path)], _cfg(min_count=50_000))


def test_a_child_that_cannot_run_leaves_the_work_to_this_process(tmp_path, monkeypatch):
    path = _corpus(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    logged = []
    ds = prepare_child.prepare([path], _cfg(cache_dir=str(tmp_path / "cache")), logged.append)
    assert any("in a child process failed" in line for line in logged)
    assert ds.vocab.words == prepare_here([path], _cfg()).vocab.words


_TRAIN_HERE = """
import sys
from w2v import scan
from w2v.config import Config
from w2v.run import train
train([sys.argv[1]], Config(min_count=2, dim=8, epochs=1, workers=2, cache_dir=sys.argv[2]), output=None)
print([name for name in dir(scan) if getattr(getattr(scan, name), "signatures", None)])
"""


@pytest.mark.parametrize("cache", ["cache", ""])
def test_a_first_run_never_loads_the_tokenizer_in_the_training_process(tmp_path, cache):
    # what counting costs (its kernels, its table, malloc's grown arenas) stays in the child
    path = _corpus(tmp_path)
    out = subprocess.run([sys.executable, "-c", _TRAIN_HERE, str(path), str(tmp_path / cache) if cache else ""],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_failed_first_run_leaves_nothing_in_the_temporary_directory(tmp_path):
    # an empty Numba cache: the compile-ahead child starts, and is killed when the run fails
    # (it fails once counted: the child has compiled the tokenizer and is compiling the rest)
    (tmp_path / "tmp").mkdir()
    path = _corpus(tmp_path)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    for cache in ("--no-cache", f"--cache-dir={tmp_path / 'cache'}"):
        out = subprocess.run([sys.executable, "-m", "w2v.cli", "train", str(path), "--output", str(tmp_path / "run"),
                              "--min-count", "50000", cache], capture_output=True, text=True, env=env)
        assert out.returncode == 1 and "no word reaches min_count" in out.stderr
        assert os.listdir(tmp_path / "tmp") == []
