"""Run directory, checkpoints, resume, interruption and exports."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from w2v.cli import main
from w2v.config import Config
from w2v.io import read_word2vec_binary, read_word2vec_text
from w2v.run import load_checkpoint, resume, train

ROOT = Path(__file__).resolve().parents[1]


def cfg(**kw):
    base = dict(dim=16, window=3, min_count=1, epochs=3, workers=1, cache_dir="", num_sampled=5, seed=4)
    base.update(kw)
    return Config(**base)


@pytest.fixture
def run_dir(planted_corpus, tmp_path):
    path, _ = planted_corpus
    out = tmp_path / "run"
    model = train([path], cfg(), out, show_progress=False)
    return out, model


def test_run_directory_contents(run_dir):
    out, model = run_dir
    assert {p.name for p in out.iterdir()} == {"vectors.txt", "vocab.txt", "config.yaml", "log.jsonl",
                                               "checkpoint.npz"}
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert len(records) >= 3
    for key in ("words", "epoch", "learning_rate", "loss", "words_per_sec"):
        assert all(key in r for r in records)
    assert [r["words"] for r in records] == sorted(r["words"] for r in records)
    assert records[-1]["epoch"] == 3 and records[-1]["learning_rate"] < records[0]["learning_rate"]
    ck = load_checkpoint(out / "checkpoint.npz")
    assert np.array_equal(ck["emb_in"], model.emb_in) and np.array_equal(ck["emb_out"], model.emb_out)
    assert ck["words"].tolist() == model.words and int(ck["epochs"][0]) == 3
    assert (out / "vocab.txt").read_text().splitlines()[0] == f"{model.words[0]} {model.counts[0]}"
    assert oct(os.stat(out / "vectors.txt").st_mode & 0o777) != "0o600"


def test_more_epochs_continue_the_word_count(run_dir):
    out, model = run_dir
    before = load_checkpoint(out / "checkpoint.npz")
    more = resume(out, epochs=5, show_progress=False)
    after = load_checkpoint(out / "checkpoint.npz")
    assert int(after["words_done"]) == int(before["words_done"]) * 5 // 3
    assert not np.array_equal(more.emb_in, model.emb_in)
    records = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert records[-1]["epoch"] == 5 and records[-1]["words"] == int(after["words_done"])


@pytest.mark.parametrize("workers", [1, 2])
def test_periodic_checkpoints_pause_the_workers_without_changing_results(planted_corpus, tmp_path, workers):
    path, _ = planted_corpus
    a = train([path], cfg(workers=workers, epochs=4), tmp_path / "a", show_progress=False)
    b = train([path], cfg(workers=workers, epochs=4, checkpoint_interval=1e-4), tmp_path / "b", show_progress=False)
    assert np.isfinite(b.emb_in).all() and int(load_checkpoint(tmp_path / "b" / "checkpoint.npz")["epochs"].min()) == 4
    if workers == 1:
        assert np.array_equal(a.emb_in, b.emb_in)


def test_exports_load_in_gensim_and_numpy_exactly(run_dir, tmp_path):
    gensim = pytest.importorskip("gensim")
    out, model = run_dir
    runner = CliRunner()
    for to, dest in [("text", "v.txt"), ("binary", "v.bin"), ("npy", "npy"), ("projector", "proj")]:
        result = runner.invoke(main, ["export", str(out), "--to", to, str(tmp_path / dest)])
        assert result.exit_code == 0, result.output
    kv_text = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "v.txt"))
    kv_bin = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    for kv in (kv_text, kv_bin):
        assert list(kv.index_to_key) == model.words and np.array_equal(kv.vectors, model.emb_in)
    words, vecs = read_word2vec_binary(tmp_path / "v.bin")
    assert words == model.words and np.array_equal(vecs, model.emb_in)
    arr = np.load(tmp_path / "npy" / "vectors.npy")
    assert arr.dtype == np.float32 and np.array_equal(arr, model.emb_in)
    vocab = (tmp_path / "npy" / "vocab.txt").read_text().splitlines()
    assert vocab == [f"{w} {c}" for w, c in zip(model.words, model.counts.tolist(), strict=True)]
    tsv = np.loadtxt(tmp_path / "proj" / "vectors.tsv", delimiter="\t", dtype=np.float32)
    assert np.array_equal(tsv, model.emb_in)
    meta = (tmp_path / "proj" / "metadata.tsv").read_text().splitlines()
    assert meta[0] == "word\tcount" and meta[1] == f"{model.words[0]}\t{model.counts[0]}" and len(meta) == 31


def test_export_which_and_limit(run_dir, tmp_path):
    out, model = run_dir
    runner = CliRunner()
    assert runner.invoke(main, ["export", str(out), "--to", "npy", str(tmp_path / "o"), "--which", "output",
                                "--limit", "7"]).exit_code == 0
    assert np.array_equal(np.load(tmp_path / "o" / "vectors.npy"), model.emb_out[:7])
    assert runner.invoke(main, ["export", str(out), "--to", "text", str(tmp_path / "b.txt"), "--which",
                                "both"]).exit_code == 0
    words, both = read_word2vec_text(tmp_path / "b.txt")
    assert np.array_equal(both, np.concatenate([model.emb_in, model.emb_out], 1))
    # a plain vectors file: input only, counts from the run's vocab.txt beside it
    plain = runner.invoke(main, ["export", str(out / "vectors.txt"), "--to", "projector", str(tmp_path / "p")])
    assert plain.exit_code == 0
    assert (tmp_path / "p" / "metadata.tsv").read_text().splitlines()[1] == f"{model.words[0]}\t{model.counts[0]}"
    bad = runner.invoke(main, ["export", str(out / "vectors.txt"), "--to", "npy", str(tmp_path / "q"), "--which",
                               "output"])
    assert bad.exit_code == 1 and "needs a run directory" in bad.output


@pytest.mark.parametrize("fmt, name", [("binary", "vectors.bin"), ("npy", "vectors.npy"),
                                       ("projector", "vectors.tsv")])
def test_train_format_option(planted_corpus, tmp_path, fmt, name):
    path, _ = planted_corpus
    result = CliRunner().invoke(main, ["train", str(path), "--output", str(tmp_path / "r"), "--format", fmt,
                                       "--epochs", "1", "--min-count", "1", "--cache-dir", "", "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "r" / name).exists() and not (tmp_path / "r" / "vectors.txt").exists()


def test_report_png(run_dir):
    pytest.importorskip("matplotlib")
    out, _ = run_dir
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _corpus(tmp_path, n_lines=6000):
    rng = np.random.default_rng(7)
    words = [f"w{int(z)}" for z in rng.zipf(1.3, size=n_lines * 25) if z < 2000]
    p = tmp_path / "sig.txt"
    p.write_text("\n".join(" ".join(words[i:i + 25]) for i in range(0, len(words), 25)) + "\n")
    return p


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_saves_and_resume_is_bit_identical(tmp_path, signum, code):
    corpus = _corpus(tmp_path)
    args = ["--epochs", "20", "--workers", "1", "--seed", "3", "--min-count", "2", "--cache-dir",
            str(tmp_path / "cache"), "--dim", "32"]
    w2v = [sys.executable, "-m", "w2v.cli"]
    full = tmp_path / "full"
    subprocess.run([*w2v, "train", str(corpus), "--output", str(full), *args, "--quiet"], check=True, cwd=ROOT)
    part = tmp_path / "part"
    proc = subprocess.Popen([*w2v, "train", str(corpus), "--output", str(part), *args], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (part / "log.jsonl").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    t0 = time.time()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 3
    assert proc.returncode == code, err
    assert f"w2v train --resume {part}" in err
    assert (part / "vectors.partial.txt").exists() and not (part / "vectors.txt").exists()
    ck = load_checkpoint(part / "checkpoint.npz")
    assert 0 < int(ck["epochs"][0]) < 20 or int(ck["cursors"][0][0]) > 0
    done = subprocess.run([*w2v, "train", "--resume", str(part), "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (part / "vectors.txt").read_bytes() == (full / "vectors.txt").read_bytes()
    assert not (part / "vectors.partial.txt").exists()
