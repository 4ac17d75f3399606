"""Reliability, round three (issue 22): Ctrl-C while the results are written, long tokens,
divergence that stays finite, vectors files that lie, leftovers, configurations that cannot run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from w2v.run import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
W2V = [sys.executable, "-m", "w2v.cli"]


def tmp_files(directory):
    return [p.name for p in Path(directory).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]


# ---------------------------------------------------------------- 1. Ctrl-C at any moment

SIG_ARGS = ["--epochs", "3", "--workers", "1", "--seed", "5", "--min-count", "1", "--dim", "100", "--no-cache"]


@pytest.fixture(scope="module")
def sig_run(tmp_path_factory):
    """A corpus whose run writes a few MB of results, and its uninterrupted run."""
    d = tmp_path_factory.mktemp("sig")
    rng = np.random.default_rng(11)
    words = [f"w{int(z)}" for z in rng.zipf(1.2, size=150_000) if z < 6000]
    corpus = d / "c.txt"
    corpus.write_text("\n".join(" ".join(words[i:i + 20]) for i in range(0, len(words), 20)) + "\n")
    full = d / "full"
    subprocess.run([*W2V, "train", str(corpus), "--output", str(full), *SIG_ARGS, "--quiet"], check=True, cwd=ROOT)
    return corpus, full


def _ctrl_c_repeatedly(proc, first_after, every=0.03, times=40) -> list[str]:
    """Wait for a stderr line starting with ``first_after`` (or for that file to exist), then press
    Ctrl-C as a terminal does (SIGINT to the foreground process group) every ``every`` seconds
    until the process ends."""
    lines = []
    if isinstance(first_after, Path):
        deadline = time.time() + 120
        while not first_after.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
    else:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith(first_after):
                break
    for _ in range(times):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            break
        time.sleep(every)
    lines += proc.stderr.read().splitlines()
    proc.wait(timeout=120)
    return lines


def _check_outcome(out: Path, full: Path, lines: list[str], returncode: int) -> str:
    """Complete results, or a checkpoint that --resume finishes byte-identically; returns which."""
    assert returncode == 130, "\n".join(lines)
    assert not any("Traceback" in ln or ln.startswith("Aborted") for ln in lines), "\n".join(lines)
    assert not tmp_files(out)
    if (out / "vectors.txt").exists():
        assert lines[-1] == f"interrupted after the run had finished: its results in {out}/ are complete"
        assert (out / "vectors.txt").read_bytes() == (full / "vectors.txt").read_bytes()
        load_checkpoint(out / "checkpoint.npz")
        return "complete"
    assert lines[-1] == f"  w2v train --resume {out}", "\n".join(lines)
    load_checkpoint(out / "checkpoint.npz")
    assert (out / "vectors.partial.txt").exists()
    done = subprocess.run([*W2V, "train", "--resume", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "vectors.txt").read_bytes() == (full / "vectors.txt").read_bytes()
    assert not (out / "vectors.partial.txt").exists() and not tmp_files(out)
    return "resumed"


def _as_from_a_terminal():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # whatever the test process has
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _train_in_own_group(corpus, out):
    return subprocess.Popen([*W2V, "train", str(corpus), "--output", str(out), *SIG_ARGS], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_as_from_a_terminal)


def test_the_cli_in_process_leaves_the_callers_signal_handlers_alone(corpus, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert invoke("train", corpus, "--output", tmp_path / "o", *SMALL).exit_code == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_ctrl_c_while_the_results_are_written_keeps_them(sig_run, tmp_path):
    corpus, full = sig_run
    out = tmp_path / "end"
    proc = _train_in_own_group(corpus, out)
    lines = _ctrl_c_repeatedly(proc, "trained ")  # logged once training ended, before the files are written
    assert _check_outcome(out, full, lines, proc.returncode) in ("complete", "resumed")


def test_ctrl_c_again_and_again_while_an_interrupted_run_saves(sig_run, tmp_path):
    corpus, full = sig_run
    out = tmp_path / "mid"
    proc = _train_in_own_group(corpus, out)
    lines = _ctrl_c_repeatedly(proc, out / "log.jsonl")  # its first line: 1% of the run done
    assert _check_outcome(out, full, lines, proc.returncode) == "resumed"


def test_ctrl_c_before_training_leaves_no_directory(sig_run, tmp_path):
    corpus, _ = sig_run
    big = tmp_path / "big.txt"  # counting takes seconds: the Ctrl-C comes before training on a busy machine too
    big.write_text(corpus.read_text() * 20)
    out = tmp_path / "early"
    proc = _train_in_own_group(big, out)
    lines = _ctrl_c_repeatedly(proc, "counting words")
    assert proc.returncode == 130 and lines[-1].startswith("w2v: error: interrupted"), lines
    assert not out.exists()



# A `w2v train` process whose training is replaced by a Ctrl-C with a second one already pending
# when the command's handler runs (a Ctrl-C pressed again while the first unwound the stack).
# Both come from C: nothing runs Python's signal check between them and the handler.
_CTRL_C_TWICE = """
import functools, operator, signal, sys, _thread
import w2v.run
def interrupted_twice(*args, **kwargs):
    any(map(operator.call, [_thread.interrupt_main,  # pending, not yet raised
                            functools.partial(signal.default_int_handler, signal.SIGINT, None)]))
w2v.run.train = interrupted_twice
sys.argv = ["w2v", *sys.argv[1:]]  # the `w2v` command, as its console script runs
from w2v.cli import main
main()
"""


def test_a_second_ctrl_c_pending_when_the_first_is_handled_is_still_one_line_130(sig_run, tmp_path):
    corpus, _ = sig_run
    out = tmp_path / "twice"
    done = subprocess.run([sys.executable, "-c", _CTRL_C_TWICE, "train", str(corpus), "--output", str(out),
                           *SIG_ARGS], capture_output=True, text=True, cwd=ROOT, timeout=120)
    # signal.signal() runs a pending signal's handler before it changes the handler: the second
    # Ctrl-C used to raise from inside the handler's own signal.signal(SIGINT, SIG_IGN), escape it
    # ("w2v: error: interrupted" from click's Abort) and, at the exit, kill the process by SIGINT
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.splitlines()[-1] == \
        "w2v: error: interrupted before training started: nothing was written", done.stderr
    assert not out.exists()


# ---------------------------------------------------------------- 6. leftovers in the run directory

def invoke(*args):
    from click.testing import CliRunner

    from w2v.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *messages):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("w2v: error: ")] == lines[-1:], result.output
    assert all(m in lines[-1] for m in messages), result.output


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    rng = np.random.default_rng(1)
    words = [f"w{int(z)}" for z in rng.zipf(1.5, size=6000) if z < 60]
    p.write_text("\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)) + "\n")
    return p


SMALL = ["--min-count", "1", "--dim", "8", "--workers", "1", "--num-sampled", "3", "--no-cache", "--epochs", "1"]


def test_an_error_before_training_leaves_no_directory(corpus, tmp_path):
    out = tmp_path / "a" / "b"
    assert_one_line_error(invoke("train", corpus, "--output", out, "--min-count", "100000", "--no-cache"),
                          "no word reaches min_count")
    assert not (tmp_path / "a").exists()
    (tmp_path / "one.txt").write_text("lonely\n")
    assert_one_line_error(invoke("train", tmp_path / "one.txt", "--output", out, *SMALL), "vocabulary")
    assert not (tmp_path / "a").exists()


def test_a_run_that_diverges_to_nan_leaves_no_config_behind(corpus, tmp_path):
    out = tmp_path / "made" / "nan"
    result = invoke("train", corpus, "--output", out, *SMALL, "--alpha", "1e30")
    assert_one_line_error(result, "the loss became", "lower alpha")
    assert not (tmp_path / "made").exists()  # nor the parent it made
    out = tmp_path / "nan"
    out.mkdir()  # a directory that was there stays, empty as it was
    assert_one_line_error(invoke("train", corpus, "--output", out, *SMALL, "--alpha", "1e30"), "the loss became")
    assert list(out.iterdir()) == []
    assert invoke("train", corpus, "--output", out, *SMALL).exit_code == 0  # not refused as a half-run


def test_a_killed_runs_temporaries_go_on_resume_and_overwrite(corpus, tmp_path):
    out = tmp_path / "run"
    assert invoke("train", corpus, "--output", out, *SMALL).exit_code == 0
    stale = [".vectors.txt.k1ll3d_.tmp", ".checkpoint.npz.abcdefgh.tmp", ".config.yaml.x.tmp"]
    for name in [*stale, ".notes.txt.tmp"]:
        (out / name).write_bytes(b"x" * 1000)
    assert invoke("train", "--resume", out, "--epochs", "2").exit_code == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".notes.txt.tmp"]  # not ours: kept
    for name in stale:
        (out / name).write_bytes(b"x")
    assert invoke("train", corpus, "--output", out, *SMALL, "--overwrite").exit_code == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".notes.txt.tmp"]


# ---------------------------------------------------------------- 2. a long token

def test_long_tokens_are_left_out_and_the_checkpoint_follows_the_words_bytes(corpus, tmp_path):
    from w2v.rundir import disk_needed

    plain = tmp_path / "plain"
    assert invoke("train", corpus, "--output", plain, *SMALL).exit_code == 0
    text = corpus.read_text()
    edge_kept, edge_cut = "é" * 50, "x" + "é" * 50  # 100 and 101 bytes of UTF-8
    blobs = [chr(ord("a") + i) * 20_000 for i in range(5)]
    (tmp_path / "long.txt").write_text(text + " ".join([*blobs, edge_kept, edge_cut] * 5) + "\n")
    out = tmp_path / "long"
    result = invoke("train", tmp_path / "long.txt", "--output", out, *SMALL)
    assert result.exit_code == 0, result.output
    assert ("warning: left out of the vocabulary 6 distinct token(s) longer than 100 bytes (30 occurrence(s))"
            in result.output)
    ck = load_checkpoint(out / "checkpoint.npz")
    words = ck["words"].tolist()
    assert edge_kept in words and edge_cut not in words and not any(len(w) > 100 for w in words)
    size, plain_size = (out / "checkpoint.npz").stat().st_size, (plain / "checkpoint.npz").stat().st_size
    assert size < plain_size + 4096, (size, plain_size)
    from w2v.vocab import MAX_WORD_BYTES

    assert MAX_WORD_BYTES == 100
    # a vocabulary with a long word (as an older w2v could make) still makes a checkpoint in
    # proportion to its bytes, and the disk estimate says so
    from w2v.checkpoint import pack_words, unpack_words

    many = [f"w{i}" for i in range(1000)] + ["z" * 100_000]
    data, offsets = pack_words(many)
    assert data.nbytes == sum(len(w) for w in many) and unpack_words(data, offsets) == many
    from w2v.config import Config

    assert disk_needed(many, Config(dim=8, workers=1))[1]["checkpoint.npz"] < 250_000


def test_a_format_1_checkpoint_still_resumes(corpus, tmp_path):
    out = tmp_path / "old"
    assert invoke("train", corpus, "--output", out, *SMALL).exit_code == 0
    ck = out / "checkpoint.npz"
    with np.load(ck) as z:
        data = {k: z[k] for k in z.files}
    words = load_checkpoint(ck)["words"].tolist()
    del data["words_utf8"], data["word_offsets"]
    data.update(version=np.int64(1), words=np.array(words))  # format 1: a fixed-width str array
    np.savez(ck, **data)
    assert load_checkpoint(ck)["words"].tolist() == words
    result = invoke("train", "--resume", out, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert int(np.load(ck)["version"]) == 3 and load_checkpoint(ck)["words"].tolist() == words


# ---------------------------------------------------------------- 3. divergence that stays finite

def test_a_loss_that_grows_far_above_its_start_stops_the_run(tmp_path):
    demo = ROOT / "data" / "demo.txt"
    part = tmp_path / "demo.txt"
    with open(demo, "rb") as fh:
        part.write_bytes(fh.read(300_000))
    out = tmp_path / "run"
    result = invoke("train", part, "--output", out, "--alpha", "0.5", "--no-cache", "--workers", "1", "--epochs", "3",
                    "--dim", "50")
    assert_one_line_error(result, "the loss is diverging in epoch", "alpha=0.5", "lower alpha")
    assert not out.exists()  # nothing of it saved, as when the loss becomes NaN
    assert invoke("train", part, "--output", out, "--no-cache", "--workers", "1", "--epochs", "3",
                  "--dim", "50").exit_code == 0


def test_divergence_rule_on_made_up_losses():
    from w2v.loop import Diverged, Progress

    rng = np.random.default_rng(0)
    calm = Progress(total_words=10**9)
    for i in range(2000):  # noisy, slowly falling, one job 5x the others now and then
        loss = 2.8 - i / 2000 + rng.normal(0, 0.1) + (12 if i % 97 == 0 else 0)
        with calm.cond:  # as the runners call it
            calm.add_job(0, 1000, 100, loss * 100)
    assert calm.error is None
    rising = Progress(total_words=10**9)
    for i in range(300):
        with rising.cond:
            rising.add_job(0, 1000, 100, 2.8 * 1.05 ** i * 100)
    assert isinstance(rising.error, Diverged) and rising.error.now > 10 * rising.error.lowest


# ---------------------------------------------------------------- 5. vectors files that lie

def _vectors(tmp_path, rows, header=None, binary=False):
    from w2v.io import write_word2vec_binary, write_word2vec_text

    words = [w for w, _ in rows]
    vectors = np.array([v for _, v in rows], dtype=np.float32)
    p = tmp_path / ("v.bin" if binary else "v.txt")
    (write_word2vec_binary if binary else write_word2vec_text)(p, words, vectors)
    if header is not None:
        data = p.read_bytes()
        p.write_bytes(header.encode() + data[data.index(b"\n"):])
    return p


ROWS = [("whale", [1.0, 0.0]), ("ship", [0.9, 0.1]), ("sea", [0.0, 1.0]), ("whale", [0.9, 0.1])]


@pytest.mark.parametrize("binary", [False, True])
def test_a_vectors_file_with_a_repeated_word_is_refused(tmp_path, binary):
    from w2v.io import DamagedFileError, read_vectors

    p = _vectors(tmp_path, ROWS, binary=binary)
    where = "vectors 1 and 4" if binary else "lines 2 and 5"
    with pytest.raises(DamagedFileError, match=f"the word 'whale' appears twice \\({where}\\)"):
        read_vectors(p)
    assert_one_line_error(invoke("similar", p, "whale"), "appears twice")


@pytest.mark.parametrize("binary", [False, True])
def test_a_header_claiming_fewer_rows_is_refused(tmp_path, binary):
    from w2v.io import DamagedFileError, read_vectors

    p = _vectors(tmp_path, ROWS[:3], header="2 2", binary=binary)
    with pytest.raises(DamagedFileError, match="the header says 2 vectors but the file holds more"):
        read_vectors(p)
    assert_one_line_error(invoke("similar", p, "whale"), "the header says 2 vectors")
    ok = _vectors(tmp_path, ROWS[:3], binary=binary)
    ok.write_bytes(ok.read_bytes() + b"\n\n")  # blank lines at the end are no rows
    assert read_vectors(ok)[0] == ["whale", "ship", "sea"]


# ---------------------------------------------------------------- 7. configurations that cannot run well

def test_num_sampled_near_the_vocabulary_size_is_refused_with_the_reason(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(" ".join(f"w{i}" for i in range(1000)) + "\n")
    assert_one_line_error(invoke("train", p, "--output", tmp_path / "o", "--min-count", "1", "--num-sampled", "990",
                                 "--no-cache"), "too close to the vocabulary size (1000)", "training would crawl")
    assert not (tmp_path / "o").exists()
    from w2v.config import Config, ConfigError, unique_draws, validate
    from w2v.rng import make_state
    from w2v.sampler import sample_log_uniform

    # the estimate against the sampler: a little above what it draws, never far below
    state = make_state(1, 0, 0)
    for v, s in [(60, 30), (1000, 900), (1000, 999)]:
        drawn = np.mean([sample_log_uniform(state, v, s)[1] for _ in range(10)])
        assert drawn < unique_draws(v, s)[-1] < 1.6 * drawn
    with pytest.raises(ConfigError, match=r"num_sampled \(999\) is too close to the vocabulary size \(1000\): "
                                          r"unique sampling would make about [\d,]+ draws per batch.*num_sampled 80\d"):
        validate(Config(num_sampled=999), 1000)
    validate(Config(num_sampled=999, unique=False), 1000)
    validate(Config(num_sampled=64), 1000)
    validate(Config(num_sampled=4), 5)


def test_a_vocabulary_of_one_word_is_refused_as_such(corpus, tmp_path):
    assert_one_line_error(invoke("train", corpus, "--output", tmp_path / "o", "--max-vocab-size", "1"),
                          "max_vocab_size must be 0 (no limit) or at least 2")
    (tmp_path / "one.txt").write_text("lonely lonely lonely\n")
    assert_one_line_error(invoke("train", tmp_path / "one.txt", "--output", tmp_path / "o", *SMALL),
                          "the vocabulary has 1 word(s)", "training needs at least 2")
    assert_one_line_error(invoke("train", corpus, "--output", tmp_path / "o", "--max-vocab-size", "3", *SMALL),
                          "num_sampled (3) must be below the vocabulary size (3)", "raise max_vocab_size (3)")


def test_a_signal_ignored_by_whoever_started_the_run_stays_ignored():
    from w2v.loop import StopSignals

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup, or `w2v train ... &` in a script
    try:
        with StopSignals():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("leave", ["none", "partial"])
def test_a_run_stopped_after_its_last_checkpoint_gets_its_results_on_resume(corpus, tmp_path, leave):
    """kill -9 between the last checkpoint and the vectors, or a Ctrl-C as the last job ends (the
    vectors saved as partial): the checkpoint has every epoch done, but the results are not there."""
    out = tmp_path / "run"
    assert invoke("train", corpus, "--output", out, *SMALL).exit_code == 0
    vectors = (out / "vectors.txt").read_bytes()
    (out / "vectors.txt").rename(out / "vectors.partial.txt")
    if leave == "none":
        (out / "vectors.partial.txt").unlink()
    result = invoke("train", "--resume", out)
    assert result.exit_code == 0, result.output
    assert (out / "vectors.txt").read_bytes() == vectors and not (out / "vectors.partial.txt").exists()
    assert "is finished" in invoke("train", "--resume", out).output  # now it is


def test_init_from_a_pretrained_file_with_a_repeated_word_takes_its_first_row(corpus, tmp_path):
    from w2v.io import write_word2vec_text

    p = tmp_path / "pre.txt"
    write_word2vec_text(p, ["w1", "w2", "w1"], np.array([[1] * 8, [2] * 8, [3] * 8], np.float32))
    result = invoke("train", corpus, "--init-from", p, "--output", tmp_path / "o", *SMALL, "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "holds 1 repeated word(s); the first row of each is used" in result.output


# ---------------------------------------------------------------- 5, 6: the corpus and its cache

def test_a_killed_runs_cache_temporaries_go_and_a_running_ones_stay(corpus, tmp_path):
    import fcntl

    cache = tmp_path / "cache"
    cache.mkdir()
    old = time.time() - 3600
    stale, young, live = cache / ".tmp-k1ll3d", cache / ".tmp-young", cache / ".tmp-live"
    for d in (stale, young, live):
        d.mkdir()
        (d / "ids.int32").write_bytes(b"x" * 1000)
    for d in (stale, live):
        os.utime(d, (old, old))
    fd = os.open(live, os.O_RDONLY)  # another run filling it
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        args = [a for a in SMALL if a != "--no-cache"]
        result = invoke("train", corpus, "--output", tmp_path / "o", *args, "--cache-dir", cache)
        assert result.exit_code == 0, result.output
    finally:
        os.close(fd)
    assert not stale.exists() and young.exists() and live.exists()


def test_a_corpus_written_to_while_it_is_read_is_refused(corpus, tmp_path, monkeypatch):
    import w2v.dataset

    original = w2v.dataset._prepare

    def appended_meanwhile(files, cfg, log):
        dataset = original(files, cfg, log)
        with open(corpus, "a") as fh:
            fh.write("w1 w2 w3\n")
        return dataset

    monkeypatch.setattr(w2v.dataset, "_prepare", appended_meanwhile)
    size = corpus.stat().st_size
    out = tmp_path / "o"
    assert_one_line_error(invoke("train", corpus, "--output", out, *SMALL),
                          f"{corpus} changed while it was read ({size:,} bytes, then {size + 9:,})")
    assert not out.exists()
    cache = tmp_path / "cache"
    args = [a for a in SMALL if a != "--no-cache"]
    assert_one_line_error(invoke("train", corpus, "--output", out, *args, "--cache-dir", cache), "changed while")
    assert [p.name for p in cache.iterdir()] == []  # the entry made from the text that changed is gone


# ---------------------------------------------------------------- 4. text that is not text

@pytest.mark.parametrize("tokenize_args", [[], ["--max-vocab-size", "50"]])  # the Numba path, the Python one
def test_binary_data_after_the_first_mib_is_refused(tmp_path, tokenize_args):
    p = tmp_path / "mixed.txt"
    text = ("the whale and the ship went to sea " * 3 + "\n").encode() * 15_000  # about 1.6 MB of text
    p.write_bytes(text + bytes(range(256)) * 4000)  # then 1 MB of binary data
    assert len(text) > 1 << 20
    assert_one_line_error(invoke("train", p, "--output", tmp_path / "o", *SMALL, *tokenize_args),
                          f"{p} holds binary data past its start", "NUL bytes in bytes")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bom", [True, False])
def test_utf16_is_named(tmp_path, bom):
    p = tmp_path / "u16.txt"
    p.write_bytes(("the whale and the ship\n" * 200).encode("utf-16" if bom else "utf-16-le"))
    assert_one_line_error(invoke("train", p, "--output", tmp_path / "o", *SMALL), "looks like UTF-16 text",
                          "iconv -f UTF-16 -t UTF-8")


@pytest.mark.parametrize("tokenize_args", [[], ["--max-vocab-size", "50"]])
def test_the_invalid_utf8_warning_names_the_file_and_the_likely_encoding(tmp_path, tokenize_args):
    good, latin = tmp_path / "a.txt", tmp_path / "b.txt"
    good.write_text("the whale and the ship\n" * 100)
    latin.write_bytes("the café and the naïve whale\n".encode("latin-1") * 100)
    result = invoke("train", good, latin, "--output", tmp_path / "o", *SMALL, *tokenize_args)
    assert result.exit_code == 0, result.output
    assert (f"warning: replaced 200 invalid UTF-8 sequence(s) by U+FFFD (first in {latin}: is it in another "
            "encoding, e.g. Latin-1 or Windows-1252?") in result.output


def test_a_damaged_local_zip_header_in_a_checkpoint_is_seen(corpus, tmp_path):
    """zipfile takes sizes from the zip's directory: a flipped byte in a member's own header (its
    CRC or sizes, or their zip64 copies) went unseen, and the checkpoint loaded."""
    import zipfile

    from w2v.io import DamagedFileError

    out = tmp_path / "run"
    assert invoke("train", corpus, "--output", out, *SMALL).exit_code == 0
    ck = out / "checkpoint.npz"
    raw = ck.read_bytes()
    infos = zipfile.ZipFile(ck).infolist()
    for info in infos[:6]:
        name_end = info.header_offset + 30 + len(info.filename)
        for at in [*range(info.header_offset + 14, info.header_offset + 26), *range(name_end + 4, name_end + 20)]:
            ck.write_bytes(raw[:at] + bytes([raw[at] ^ 0x5A]) + raw[at + 1:])
            with pytest.raises(DamagedFileError):
                load_checkpoint(ck)
    ck.write_bytes(raw)
    load_checkpoint(ck)


def test_packed_words_are_their_utf8_bytes_end_to_end_with_offsets():
    from w2v.checkpoint import pack_words, unpack_words

    for words in ([], ["a"], ["é", "naïve", "日本語", "x" * 100, "a"], [f"w{i}" for i in range(5000)],
                  ["line\nbreak", "b"]):  # no tokenizer makes the last, but a list may hold it
        data, offsets = pack_words(words)
        encoded = [w.encode("utf-8") for w in words]
        assert data.dtype == np.uint8 and data.tobytes() == b"".join(encoded)
        assert offsets.dtype == np.int64 and offsets.tolist() == np.cumsum([0] + [len(b) for b in encoded]).tolist()
        if words:
            assert unpack_words(data, offsets) == words
