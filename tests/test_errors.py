"""Every user mistake: one line on stderr, a non-zero exit, no traceback, no output file."""

import os

import pytest
from click.testing import CliRunner

from w2v.cli import main


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(("the cat sat on the mat and the dog sat on the log " * 20 + "\n") * 20)
    return p


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def assert_one_line_error(result, message, code=1):
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()  # progress lines may come first
    errors = [ln for ln in lines if ln.startswith("w2v: error: ")]
    assert errors == lines[-1:] and message in lines[-1], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("key, value, message", [
    ("dim", "0", "dim must be >= 1"), ("window", "0", "window must be >= 1"),
    ("num-sampled", "0", "num_sampled must be >= 1"), ("alpha", "0", "alpha must be > 0"),
    ("epochs", "0", "epochs must be >= 1"), ("sample", "-1", "sample must be >= 0"),
    ("batch-size", "0", "batch_size must be >= 1"), ("num-sampled", "8", "must be below the vocabulary size (8)"),
])
def test_out_of_range_options(corpus, tmp_path, key, value, message):
    out = tmp_path / "o"
    result = invoke("train", corpus, f"--{key}", value, "--output", out, "--min-count", "1", "--cache-dir", "")
    assert_one_line_error(result, message)
    assert not (out / "vectors.txt").exists()


def test_config_type_and_unknown_key(corpus, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("min_cont: 3\n")
    assert_one_line_error(invoke("train", corpus, "--config", cfg), "did you mean 'min_count'")
    cfg.write_text("epochs: 2.5\n")
    assert_one_line_error(invoke("train", corpus, "--config", cfg), "'epochs' must be int")
    assert_one_line_error(invoke("train", corpus, "--config", tmp_path / "missing.yaml"), "cannot read config")


@pytest.mark.parametrize("command", [["train"], ["sample-pairs"]])
def test_missing_and_empty_corpus(tmp_path, command):
    assert_one_line_error(invoke(*command, tmp_path / "nope.txt", "--cache-dir", ""), "does not exist")
    (tmp_path / "d").mkdir()
    assert_one_line_error(invoke(*command, tmp_path / "d", "--cache-dir", ""), "holds no files")
    (tmp_path / "blank.txt").write_text(" \n\t \n")
    assert_one_line_error(invoke(*command, tmp_path / "blank.txt", "--cache-dir", ""), "the corpus is empty")


def test_no_word_reaches_min_count(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a b c a\n")
    result = invoke("train", p, "--min-count", "3", "--cache-dir", "", "--output", tmp_path / "o")
    assert_one_line_error(result, "no word reaches min_count=3: the corpus has 3 distinct words and the most "
                                  "frequent appears 2 times")


def test_binary_file_is_refused_and_a_little_bad_utf8_warns(tmp_path):
    p = tmp_path / "prog.bin"
    p.write_bytes(bytes(range(256)) * 50)
    assert_one_line_error(invoke("train", p, "--cache-dir", "", "--output", tmp_path / "o"),
                          "looks like a binary file")
    q = tmp_path / "mostly.txt"
    q.write_bytes(b"word other \xff thing\n" * 300)
    result = CliRunner().invoke(main, ["train", str(q), "--cache-dir", "", "--output", str(tmp_path / "o2"),
                                       "--min-count", "1", "--num-sampled", "2", "--epochs", "1"])
    assert result.exit_code == 0 and "replaced 300 invalid UTF-8" in result.output


def test_unwritable_output(corpus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(invoke("train", corpus, "--output", blocker / "sub", "--min-count", "1", "--cache-dir", ""),
                          "cannot create output directory")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert_one_line_error(invoke("train", corpus, "--output", ro, "--cache-dir", ""), "cannot write")


def test_missing_vectors_for_export_and_similar(tmp_path):
    assert_one_line_error(invoke("export", tmp_path / "none.txt", "--to", "npy", tmp_path / "o"), "does not exist")
    assert_one_line_error(invoke("export", tmp_path, "--to", "npy", tmp_path / "o"), "not a run directory")
    assert_one_line_error(invoke("similar", tmp_path / "none.txt", "x"), "cannot read vectors")
    assert_one_line_error(invoke("eval", tmp_path / "none.txt"), "cannot read vectors")
    (tmp_path / "garbage.txt").write_text("not a header\n")
    assert_one_line_error(invoke("eval", tmp_path / "garbage.txt"), "cannot read vectors")
    assert_one_line_error(invoke("analogy", tmp_path / "none.txt", "a", "b", "c"), "cannot read vectors")
    assert_one_line_error(invoke("train", "--resume", tmp_path), "no checkpoint")


def test_non_finite_loss_stops_with_a_hint(corpus, tmp_path):
    result = invoke("train", corpus, "--alpha", "1e38", "--min-count", "1", "--num-sampled", "3", "--cache-dir", "",
                    "--output", tmp_path / "o", "--workers", "1", "--quiet")
    assert_one_line_error(result, "learning rate")
    assert not (tmp_path / "o" / "vectors.txt").exists() and not (tmp_path / "o" / "checkpoint.npz").exists()


def test_memory_is_checked_before_allocating(corpus, tmp_path, monkeypatch):
    import w2v.train

    monkeypatch.setattr(w2v.train, "physical_memory", lambda: 1000)
    result = invoke("train", corpus, "--min-count", "1", "--cache-dir", "", "--output", tmp_path / "o",
                    "--num-sampled", "3")
    assert_one_line_error(result, "training needs about")
    assert "this machine has 0 MiB" in result.output
