"""Damaged files, a full disk, an existing run directory: one clear line, never a traceback, and
nothing unchecked reaches a kernel."""

import errno
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import w2v.dataset
import w2v.io
import w2v.prepare_child
import w2v.run
import w2v.rundir
from w2v.checkpoint import write_arrays
from w2v.cli import main
from w2v.config import Config, ConfigError, load_config
from w2v.corpus import CorpusError
from w2v.dataset import Dataset, _sealed, _unsealed, prepare
from w2v.errors import TrainingError
from w2v.io import DamagedFileError, OutputError, read_vectors, read_word2vec_binary, read_word2vec_text
from w2v.run import load_checkpoint, resume, train
from w2v.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def cfg(**kw):
    base = dict(dim=8, window=2, min_count=1, epochs=1, workers=1, cache_dir="", num_sampled=3, seed=3)
    base.update(kw)
    return Config(**base)


def enospc():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *messages):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("w2v: error: ")] == lines[-1:], result.output
    assert all(m in lines[-1] for m in messages), result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def tmp_files(directory):
    return [p.name for p in Path(directory).rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    rng = np.random.default_rng(1)
    words = [f"w{int(z)}" for z in rng.zipf(1.5, size=6000) if z < 60]
    p.write_text("\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)) + "\n")
    return p


@pytest.fixture
def finished_run(corpus, tmp_path):
    out = tmp_path / "run"
    train([corpus], cfg(), out, show_progress=False)
    return out


# ---------------------------------------------------------------- damaged checkpoints

def _rewrite_checkpoint(path, **changes):
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value(data[key]) if callable(value) else value
    write_arrays(path, data)


def _flip_byte_in_emb_in(path):
    data = bytearray(path.read_bytes())
    at = data.find(load_checkpoint(path)["emb_in"].tobytes()[:64]) + 40
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _save_npy(path):
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))


def _nan_at_end(a):
    a = a.copy()
    a[-1, -1] = np.nan
    return a


def _next_below_n_pairs(c):
    c = c.copy()
    c[0, 1:3] = [10, 3]  # 7 pairs the resumed worker's empty buffer does not hold
    return c


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]), "damaged or not a checkpoint"),
    (lambda p: p.write_bytes(b""), "damaged or not a checkpoint"),
    (lambda p: p.write_bytes(os.urandom(5000)), "damaged or not a checkpoint"),
    (_flip_byte_in_emb_in, "its checksum does not match"),  # one flipped byte in an array: the whole-file SHA-256
    (_save_npy, "damaged or not a checkpoint"),  # a .npy, not a .npz
    (lambda p: _rewrite_checkpoint(p, emb_in=_nan_at_end), "'emb_in' holds NaN"),
    (lambda p: _rewrite_checkpoint(p, emb_out=lambda a: a[:-1]), "'emb_out' has shape"),
    (lambda p: _rewrite_checkpoint(p, bias=lambda a: a.astype(np.float64)), "'bias' is float64"),
    (lambda p: _rewrite_checkpoint(p, rng_neg=None), "no 'rng_neg' array"),
    (lambda p: _rewrite_checkpoint(p, version=np.int64(4)), "another w2v version (checkpoint format 4"),
    (lambda p: _rewrite_checkpoint(p, word_offsets=lambda a: a[::-1].copy()), "not UTF-8 text at the offsets"),
    (lambda p: _rewrite_checkpoint(p, words_utf8=lambda a: np.full_like(a, 0xFF)), "not UTF-8 text"),
    (lambda p: _rewrite_checkpoint(p, words_utf8=lambda a: np.full_like(a, ord("x"))), "repeated word"),
    (lambda p: _rewrite_checkpoint(p, config=np.array("dim: [unclosed")), "its config"),
    (lambda p: _rewrite_checkpoint(p, config=np.array("dim: 9\n")), "config says dim 9"),
    (lambda p: _rewrite_checkpoint(p, counts=lambda a: a[::-1].copy()), "descending order"),
    (lambda p: _rewrite_checkpoint(p, cursors=_next_below_n_pairs), "position is out of range"),
    (lambda p: _rewrite_checkpoint(p, marks=np.array([-1])), "mark is negative"),
    (lambda p: _rewrite_checkpoint(p, epochs=np.array([7])), "epoch is outside 0..1"),
    (lambda p: _rewrite_checkpoint(p, words_done=np.int64(-5)), "progress counters"),
    (lambda p: _rewrite_checkpoint(p, corpus_files=np.array("{not json")), "corpus_files"),
])
def test_damaged_checkpoint_is_one_line_naming_it(finished_run, damage, message):
    ck = finished_run / "checkpoint.npz"
    damage(ck)
    for args in (["train", "--resume", finished_run, "--epochs", "2"],
                 ["export", finished_run, "--to", "npy", finished_run.parent / "exported"]):
        result = invoke(*args)
        assert_one_line_error(result, str(ck), message)


def test_resume_refuses_a_position_outside_this_corpus(finished_run):
    _rewrite_checkpoint(finished_run / "checkpoint.npz", cursors=lambda c: np.array([[10**9, 0, 0, 0]]),
                        epochs=np.array([0]))
    assert_one_line_error(invoke("train", "--resume", finished_run), "does not fit this corpus",
                          "outside its part")


def test_an_object_array_in_a_checkpoint_is_refused_without_unpickling(finished_run):
    ck = finished_run / "checkpoint.npz"
    with np.load(ck) as z:
        data = {k: z[k] for k in z.files}
    data["words_utf8"] = np.array([object()] * len(data["words_utf8"]), dtype=object)
    np.savez(ck, **data)
    with pytest.raises(DamagedFileError, match="damaged or not a checkpoint"):
        load_checkpoint(ck)


# ---------------------------------------------------------------- the kernel boundary

def _dataset(ids, counts=(5, 3, 2)):
    vocab = Vocab([f"w{i}" for i in range(len(counts))], np.array(counts))
    ids = np.array(ids, dtype=np.int32)
    return Dataset(vocab, ids, int((ids >= 0).sum()), {})


@pytest.mark.parametrize("ids, counts, message", [
    ([0, 1, 3, -1], (5, 3, 2), "id 3 outside the vocabulary of 3 words"),
    ([0, -2, 1, -1], (5, 3, 2), "id -2 outside"),
    ([0, 1, 2, -1], (2, 3, 5), "descending order"),
    ([0, 1, 2, -1], (5, 3, 0), "positive"),
])
def test_trainer_refuses_ids_and_counts_a_kernel_would_misuse(ids, counts, message):
    from w2v.train import Trainer

    with pytest.raises(CorpusError, match=message):
        Trainer(_dataset(ids, counts), cfg(num_sampled=1))


def test_trainer_refuses_a_model_of_the_wrong_shape_or_type():
    from w2v.train import Model, Trainer

    ds = _dataset([0, 1, 2, 0, 1, -1])
    good = dict(emb_in=np.zeros((3, 8), np.float32), emb_out=np.zeros((3, 8), np.float32),
                bias=np.zeros(3, np.float32))
    Trainer(ds, cfg(num_sampled=1), Model(ds.vocab.words, ds.vocab.counts, **good, config=cfg()))
    readonly = np.zeros((3, 8), np.float32)
    readonly.flags.writeable = False
    for key, bad in [("emb_out", np.zeros((2, 8), np.float32)), ("emb_in", np.zeros((3, 8))),
                     ("bias", np.zeros(4, np.float32)), ("emb_in", readonly)]:
        arrays = {**good, key: bad}
        with pytest.raises(TrainingError, match=key):
            Trainer(ds, cfg(num_sampled=1), Model(ds.vocab.words, ds.vocab.counts, **arrays, config=cfg()))


def test_load_state_checks_what_the_kernel_will_index(finished_run):
    from w2v.train import Trainer

    ck = load_checkpoint(finished_run / "checkpoint.npz")
    config = cfg()
    dataset = prepare([Path(str(ck["corpus"][0]))], config)
    trainer = Trainer(dataset, config)
    trainer.load_state(ck)  # as it is: fine
    n_ids = len(dataset.ids)
    for key, value, message in [
        ("cursors", np.array([[n_ids + 1, 0, 0, 0]]), "outside its part"),
        ("cursors", np.array([[0, 5, 2, 0]]), "position is out of range"),
        ("cursors", np.array([[0, 0, 0, 0], [0, 0, 0, 0]]), "has 2 workers"),
        ("rng_pairs", np.array([1.0]), "'rng_pairs'"),
        ("marks", np.array([-3]), "mark is negative"),
    ]:
        with pytest.raises(TrainingError, match=message):
            trainer.load_state({**ck, key: value})


# ---------------------------------------------------------------- the corpus cache

def _cache_entry(cache):
    [entry] = [p for p in Path(cache).iterdir() if not p.name.startswith(".")]
    return entry


def _out_of_range_id(entry):
    ids = np.fromfile(entry / "ids.int32", dtype=np.int32)
    ids[len(ids) // 2] = 10**6  # and a checksum that matches it: only the range check can tell
    ids.tofile(entry / "ids.int32")
    meta = _unsealed(json.loads((entry / "meta.json").read_text()))
    meta["ids_crc32"] = zlib.crc32(ids.tobytes())
    (entry / "meta.json").write_text(json.dumps(_sealed(meta)))  # resealed: meta.json's own check passes


def _flip_id_byte(entry):
    data = bytearray((entry / "ids.int32").read_bytes())
    data[len(data) // 2] ^= 0x01
    (entry / "ids.int32").write_bytes(bytes(data))


@pytest.mark.parametrize("damage, reason", [
    (lambda e: (e / "meta.json").write_text((e / "meta.json").read_text()[:20]), "JSONDecodeError"),
    (lambda e: (e / "meta.json").unlink(), "FileNotFoundError"),
    (lambda e: (e / "ids.int32").write_bytes((e / "ids.int32").read_bytes()[:-6]), "ids.int32 has"),
    (lambda e: (e / "vocab.txt").write_text(""), "vocab.txt does not match its checksum"),
    (lambda e: (e / "meta.json").write_text((e / "meta.json").read_text().replace('"tokens": ', '"tokens": 1')),
     "meta.json does not match its checksum"),
    (_flip_id_byte, "ids.int32 does not match its checksum"),
    (_out_of_range_id, "holds id 1000000 outside the vocabulary"),
])
def test_damaged_cache_warns_once_and_is_rebuilt(corpus, tmp_path, damage, reason):
    cache = tmp_path / "cache"
    args = ["train", corpus, "--cache-dir", cache, "--min-count", "1", "--epochs", "1", "--workers", "1",
            "--dim", "8", "--num-sampled", "3"]
    first = invoke(*args, "--output", tmp_path / "a")
    assert first.exit_code == 0, first.output
    damage(_cache_entry(cache))
    again = invoke(*args, "--output", tmp_path / "b")
    assert again.exit_code == 0 and "Traceback" not in again.output, again.output
    warnings = [ln for ln in again.output.splitlines() if "corpus cache" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ") and reason in warnings[0], again.output
    assert "rebuilding it" in warnings[0]
    # the rebuilt cache trains exactly what the first run trained, and is whole again
    assert (tmp_path / "b" / "vectors.txt").read_bytes() == (tmp_path / "a" / "vectors.txt").read_bytes()
    third = invoke(*args, "--output", tmp_path / "c")
    assert third.exit_code == 0 and "corpus cache" not in third.output
    assert tmp_files(cache) == [] and len(list(cache.iterdir())) == 1


def test_unwritable_cache_directory_warns_and_trains_from_memory(corpus, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("train", corpus, "--cache-dir", blocker / "cache", "--output", tmp_path / "a",
                    "--min-count", "1", "--num-sampled", "3", "--epochs", "1")
    assert result.exit_code == 0 and "warning: cannot create the corpus cache directory" in result.output

    def denied(**kw):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(w2v.dataset.tempfile, "mkdtemp", denied)
    monkeypatch.setattr(w2v.prepare_child, "SEPARATE", False)  # the patch above holds in this process only
    result = invoke("train", corpus, "--cache-dir", tmp_path / "cache", "--output", tmp_path / "b",
                    "--min-count", "1", "--num-sampled", "3", "--epochs", "1")
    assert result.exit_code == 0 and "warning: cannot write the corpus cache" in result.output, result.output
    assert "Permission denied" in result.output and (tmp_path / "b" / "vectors.txt").exists()


def test_cache_write_failing_midway_leaves_no_entry(corpus, tmp_path, monkeypatch):
    real_open = open

    class FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            raise enospc()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def full_disk(path, mode="r", *a, **kw):
        fh = real_open(path, mode, *a, **kw)
        return FullDisk(fh) if str(path).endswith("ids.int32") and "w" in mode else fh

    monkeypatch.setattr(w2v.dataset, "open", full_disk, raising=False)
    lines = []
    ds = prepare([corpus], cfg(cache_dir=str(tmp_path / "cache")), log=lines.append)
    assert ds.cache_path is None and len(ds.ids) > 0
    assert any("cannot write the corpus cache" in ln and "No space left" in ln for ln in lines)
    assert list((tmp_path / "cache").iterdir()) == []


# ---------------------------------------------------------------- disk space

def test_too_little_disk_space_is_refused_before_training(corpus, tmp_path, monkeypatch):
    out = tmp_path / "o"
    real = shutil.disk_usage
    monkeypatch.setattr(w2v.io.shutil, "disk_usage",
                        lambda p: real(p)._replace(free=50_000) if str(p).startswith(str(tmp_path)) else real(p))
    result = invoke("train", corpus, "--output", out, "--min-count", "1", "--dim", "64", "--cache-dir", "")
    assert_one_line_error(result, f"not enough disk space in {out}", "checkpoint.npz", "vectors.txt",
                          "--format binary")
    assert not out.exists()  # the run directory is made only when training starts
    # the cache directory's filesystem is checked too
    cache = tmp_path / "cache"
    monkeypatch.setattr(w2v.io.shutil, "disk_usage", lambda p: real(p)._replace(free=100))
    monkeypatch.setattr(w2v.prepare_child, "SEPARATE", False)  # the patch above holds in this process only
    result = invoke("train", corpus, "--output", tmp_path / "o2", "--min-count", "1", "--cache-dir", cache)
    assert_one_line_error(result, f"not enough disk space in {cache}:", "corpus cache", "--no-cache")
    assert [p.name for p in cache.iterdir()] == []  # the tokenizer's spilled ids went with the refusal


def test_disk_estimate_is_close_to_what_a_run_writes(tmp_path):
    p = tmp_path / "c.txt"
    rng = np.random.default_rng(5)
    p.write_text("".join(" ".join(f"w{i}" for i in rng.integers(0, 2000, 20)) + "\n" for _ in range(2000)))
    config = cfg(dim=32)
    model = train([p], config, tmp_path / "run", show_progress=False)
    peak, files = w2v.run.disk_needed(model.words, config)
    for name in ("checkpoint.npz", "vectors.txt"):
        actual = (tmp_path / "run" / name).stat().st_size
        assert actual * 0.98 < files[name] < actual * 1.25, (name, actual, files[name])
    assert peak >= files["checkpoint.npz"] + files["vectors.txt"]


def _failing_fsync(monkeypatch, *names):
    """Make the fsync before the rename fail with ENOSPC for these files, as a full disk does."""
    real = os.fsync

    def fsync(fd):
        target = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if any(target.startswith(f".{name}.") for name in names):
            raise enospc()
        real(fd)

    monkeypatch.setattr(w2v.io.os, "fsync", fsync)


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")


@needs_proc
def test_vectors_failing_late_keep_the_model_in_the_checkpoint(corpus, tmp_path, monkeypatch):
    reference = tmp_path / "ref"
    train([corpus], cfg(dim=16), reference, show_progress=False)
    out = tmp_path / "o"
    _failing_fsync(monkeypatch, "vectors.txt")
    result = invoke("train", corpus, "--output", out, "--min-count", "1", "--dim", "16", "--epochs", "1",
                    "--workers", "1", "--seed", "3", "--num-sampled", "3", "--window", "2", "--cache-dir", "")
    assert_one_line_error(result, f"cannot write {out / 'vectors.txt'}: No space left on device",
                          f"the trained model is safe in {out / 'checkpoint.npz'}",
                          f"w2v export {out} --to text {out / 'vectors.txt'}")
    assert not (out / "vectors.txt").exists() and tmp_files(out) == []
    monkeypatch.undo()  # space freed: the command the message gives writes the very vectors
    assert invoke("export", out, "--to", "text", out / "vectors.txt").exit_code == 0
    assert (out / "vectors.txt").read_bytes() == (reference / "vectors.txt").read_bytes()


@needs_proc
@pytest.mark.parametrize("failing, message", [
    (["checkpoint.npz"], "; the vectors are in"),
    (["checkpoint.npz", "vectors.txt"], "the vectors could not be written either; no checkpoint of this run"),
])
def test_checkpoint_failing_late_is_one_line(corpus, tmp_path, monkeypatch, failing, message):
    out = tmp_path / "o"
    _failing_fsync(monkeypatch, *failing)
    result = invoke("train", corpus, "--output", out, "--min-count", "1", "--num-sampled", "3", "--cache-dir", "",
                    "--epochs", "1")
    assert_one_line_error(result, f"cannot write {out / 'checkpoint.npz'}: No space left on device", message)
    assert tmp_files(out) == [] and not (out / "checkpoint.npz").exists()
    assert (out / "vectors.txt").exists() == ("vectors.txt" not in failing)


@needs_proc
def test_a_failed_resume_keeps_every_earlier_file(finished_run, monkeypatch):
    before = {p.name: p.read_bytes() for p in finished_run.iterdir() if p.name != "log.jsonl"}
    _failing_fsync(monkeypatch, "checkpoint.npz", "vectors.txt")
    words_done = int(load_checkpoint(finished_run / "checkpoint.npz")["words_done"])
    result = invoke("train", "--resume", finished_run, "--epochs", "2", "--quiet")
    assert_one_line_error(result, "cannot write", "checkpoint.npz", "the vectors could not be written either",
                          f"the previous checkpoint ({words_done:,} words trained) is kept",
                          f"w2v train --resume {finished_run}")
    assert {p.name: p.read_bytes() for p in finished_run.iterdir() if p.name in before} == before
    assert tmp_files(finished_run) == []


@needs_proc
def test_periodic_checkpoint_and_log_failures_warn_and_training_goes_on(corpus, tmp_path, monkeypatch):
    real_open = open

    def no_log(path, mode="r", *a, **kw):
        if str(path).endswith("log.jsonl") and "a" in mode:
            raise enospc()
        return real_open(path, mode, *a, **kw)

    monkeypatch.setattr(w2v.rundir, "open", no_log, raising=False)
    failed = []
    real_save = w2v.rundir.save_checkpoint

    def save(path, trainer, *a, **kw):  # every periodic checkpoint fails, the last one succeeds
        if trainer.progress.words_done < trainer.progress.total_words:
            failed.append(trainer.progress.words_done)
            raise OutputError(f"cannot write {path}: No space left on device")
        real_save(path, trainer, *a, **kw)

    monkeypatch.setattr(w2v.rundir, "save_checkpoint", save)
    lines = []
    model = train([corpus], cfg(epochs=40, checkpoint_interval=1e-4), tmp_path / "o", show_progress=False,
                  log=lines.append)
    assert failed and (tmp_path / "o" / "vectors.txt").exists()
    assert np.array_equal(load_checkpoint(tmp_path / "o" / "checkpoint.npz")["emb_in"], model.emb_in)
    assert sum("cannot append to" in ln for ln in lines) == 1
    assert sum("training goes on, the previous checkpoint is kept" in ln for ln in lines) == len(failed)


def test_atomic_open_turns_a_failed_write_into_one_line_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(OutputError, match=f"cannot write {target}: No space left on device") as info:
        with w2v.io.atomic_open(target) as fh:
            fh.write("new")
            raise enospc()
    assert info.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# a real filesystem that is too small: a tmpfs, where mounting is permitted

@pytest.fixture
def tiny_fs(tmp_path):
    mounted = []

    def mount(size):
        d = tmp_path / f"fs{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        if subprocess.run(["umount", str(d)]).returncode != 0:
            subprocess.run(["umount", "-l", str(d)])


def test_tiny_filesystem_refused_before_training(corpus, tiny_fs):
    fs = tiny_fs("256k")
    result = invoke("train", corpus, "--output", fs / "run", "--min-count", "1", "--dim", "300", "--cache-dir", "")
    assert_one_line_error(result, f"not enough disk space in {fs / 'run'}")
    assert list(fs.iterdir()) == []  # not even the run directory


def test_tiny_filesystem_filling_late_keeps_the_model(corpus, tiny_fs, monkeypatch, tmp_path):
    fs = tiny_fs("512k")
    monkeypatch.setattr(w2v.rundir, "disk_needed", lambda *a: (0, {}))  # the check before training cannot see it
    args = ["--min-count", "1", "--dim", "600", "--cache-dir", "", "--workers", "1", "--num-sampled", "3"]
    result = invoke("train", corpus, "--output", fs / "run", *args)
    assert_one_line_error(result, f"cannot write {fs / 'run' / 'vectors.txt'}: No space left on device",
                          "the trained model is safe in")
    assert not (fs / "run" / "vectors.txt").exists() and tmp_files(fs) == []
    reference = invoke("train", corpus, "--output", tmp_path / "ref", *args)
    assert reference.exit_code == 0
    assert invoke("export", fs / "run", "--to", "text", tmp_path / "v.txt").exit_code == 0
    assert (tmp_path / "v.txt").read_bytes() == (tmp_path / "ref" / "vectors.txt").read_bytes()


# ---------------------------------------------------------------- the run directory

def test_a_finished_run_is_not_overwritten_without_overwrite(finished_run, corpus):
    vectors = (finished_run / "vectors.txt").read_bytes()
    result = invoke("train", corpus, "--output", finished_run, "--min-count", "1", "--seed", "9", "--cache-dir", "")
    assert_one_line_error(result, f"{finished_run} holds a finished run (vectors.txt)", "--overwrite")
    assert (finished_run / "vectors.txt").read_bytes() == vectors
    with pytest.raises(OutputError, match="holds a finished run"):
        train([corpus], cfg(), finished_run)
    result = invoke("train", corpus, "--output", finished_run, "--min-count", "1", "--seed", "9", "--format",
                    "binary", "--overwrite", "--cache-dir", "", "--num-sampled", "3")
    assert result.exit_code == 0, result.output
    # the old run's files are gone, not mixed with the new run's
    assert sorted(p.name for p in finished_run.iterdir()) == ["checkpoint.npz", "config.yaml", "log.jsonl",
                                                              "vectors.bin", "vocab.txt"]


@pytest.mark.parametrize("leave", ["checkpoint.npz", "vectors.partial.txt"])
def test_an_unfinished_run_is_refused_with_the_resume_command(finished_run, corpus, leave):
    for p in finished_run.iterdir():
        if p.name not in (leave, "config.yaml"):
            p.unlink()
    if leave == "vectors.partial.txt":
        (finished_run / leave).write_text("1 1\na 0.5\n")
    result = invoke("train", corpus, "--output", finished_run, "--cache-dir", "")
    assert_one_line_error(result, f"{finished_run} holds an unfinished run ({leave})",
                          f"w2v train --resume {finished_run}", "--overwrite")


def _start_training(corpus, out):
    """A real ``w2v train`` that runs for a while; returns once it holds the directory."""
    proc = subprocess.Popen([sys.executable, "-m", "w2v.cli", "train", str(corpus), "--output", str(out),
                             "--epochs", "100000", "--min-count", "1", "--cache-dir", "", "--quiet", "--dim", "8"],
                            cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "config.yaml").exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc


def test_a_second_train_into_the_same_directory_refuses_and_a_crash_frees_it(corpus, tmp_path):
    out = tmp_path / "run"
    proc = _start_training(corpus, out)
    try:
        result = invoke("train", corpus, "--output", out, "--min-count", "1", "--cache-dir", "")
        assert_one_line_error(result, f"{out} is in use: another w2v train is writing it")
        assert_one_line_error(invoke("train", corpus, "--output", out, "--overwrite", "--cache-dir", ""), "is in use")
    finally:
        proc.kill()  # a crash: no checkpoint, no clean exit
        proc.wait()
        proc.stderr.close()
    result = invoke("train", corpus, "--output", out, "--min-count", "1", "--cache-dir", "", "--num-sampled", "3")
    assert result.exit_code == 0, result.output


def test_resume_takes_the_lock_too(finished_run, corpus, tmp_path):
    import fcntl

    fd = os.open(finished_run, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert_one_line_error(invoke("train", "--resume", finished_run, "--epochs", "2"), "is in use")
    finally:
        os.close(fd)
    assert invoke("train", "--resume", finished_run, "--epochs", "2", "--quiet").exit_code == 0


# ---------------------------------------------------------------- resuming on a changed corpus

def _grow(p):
    with open(p, "a") as fh:
        fh.write("w1 w2 w3\n")


def _touch(p):
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _same_size_and_mtime(p):
    st = p.stat()
    text = p.read_text()
    p.write_text(text.replace("w1 ", "w9 ", 1))  # same length
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("change, message", [
    (_grow, "bytes and is"), (_touch, "was modified (its mtime changed)"), (_same_size_and_mtime, "has other content"),
    (lambda p: p.with_name("extra.txt").write_text("w1 w2\n"), "extra.txt is new"),
])
def test_resume_refuses_a_changed_corpus(tmp_path, change, message):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a.txt").write_text("w1 w2 w3 w1 w2 w4 w1\n" * 300)
    out = tmp_path / "run"
    train([d], cfg(), out, show_progress=False)
    change(d / "a.txt")
    result = invoke("train", "--resume", out, "--epochs", "2")
    assert_one_line_error(result, f"cannot resume {out}: the corpus changed since the checkpoint", message)


def test_a_checkpoint_without_corpus_fingerprint_still_resumes_with_a_warning(finished_run):
    _rewrite_checkpoint(finished_run / "checkpoint.npz", corpus_files=None)
    lines = []
    resume(finished_run, epochs=2, show_progress=False, log=lines.append)
    assert any("records no corpus sizes and mtimes" in ln for ln in lines)


def test_report_skips_the_half_line_a_killed_run_leaves_in_its_log(finished_run):
    pytest.importorskip("matplotlib")
    with open(finished_run / "log.jsonl", "a") as fh:
        fh.write('{"words": 5, "epo')
    result = invoke("report", finished_run)
    assert result.exit_code == 0, result.output
    assert (finished_run / "report.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- config and vectors files

@pytest.mark.parametrize("content, message", [
    (b"dim: 5\n\xff\xfe\n", "is not UTF-8 text"),
    (b"[" * 5000 + b"]" * 5000, "not valid YAML"),
    (b"1: 2\n", "must be option names"),
    (b"alpha: .nan\n", "must be a finite number"),
    (b"dim: 18446744073709551616\n", "out of range"),
    (b"\0\0\0", "not valid YAML"),
    (b"# " + b"x" * (2 << 20), "not a w2v config file"),
])
def test_config_loader_turns_any_bytes_into_a_config_error(tmp_path, content, message):
    p = tmp_path / "c.yaml"
    p.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(p)


def test_a_directory_as_config_is_one_line(tmp_path, corpus):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path)
    result = invoke("train", corpus, "--config", tmp_path, "--output", tmp_path / "o")
    assert result.exit_code != 0 and "Traceback" not in result.output and "is a directory" in result.output


@pytest.mark.parametrize("content, message", [
    (b"1000000000 1000000000\nw " + b"\0" * 40, "truncated or damaged: its header says 1000000000 x 1000000000"),
    (b"2 3\na \x00\x00\x80?\x00\x00\x80?\x00\x00\x80?\n" + b"b" * 10 + b" \x00\x00\x80",
     "truncated: it ends in word 2 of 2"),
    (b"1 3\na \x00\x00\xc0\x7f\x00\x00\x80?\x00\x00\x80?\n", "non-finite value"),
    (b"2 2\na 1 2\nb 1 nan\n", "vector 2 (line 3) has a non-finite value"),
    (b"2 2\na 1 2\nb 1\n", ":3: expected a word and 2 numbers"),
    (b"2 2\na 1.5 2.5\n", ":3: the file ends"),
    (b"3 2\na 1 2\n\xff\xfe 1 2\n" + b"c 1 2\n", "not UTF-8 text"),
    (b"", "the first line must be 'count dim'"),
    (b"2 0\n", "dimension 0"),
])
def test_damaged_vectors_file_is_one_error_naming_it(tmp_path, content, message):
    p = tmp_path / "v.vec"
    p.write_bytes(content)
    with pytest.raises(DamagedFileError, match=re.escape(message)):
        read_vectors(p)
    for args in (["eval", p], ["similar", p, "a"], ["export", p, "--to", "npy", tmp_path / "o"]):
        assert_one_line_error(invoke(*args), str(p))


# ---------------------------------------------------------------- property tests: any bytes

def _mutate(data: bytes, edits, cut) -> bytes:
    b = bytearray(data)
    for pos, value in edits:
        if b:
            b[pos % len(b)] = value
    return bytes(b[:cut % (len(b) + 1)]) if cut is not None else bytes(b)


mutations = st.tuples(st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), max_size=6),
                      st.none() | st.integers(0, 1 << 30))


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(2)
    corpus = d / "c.txt"
    corpus.write_text("".join(" ".join(rng.choice(["a", "bb", "ccc", "d", "é"], size=8)) + "\n" for _ in range(200)))
    train([corpus], cfg(dim=4), d / "run", show_progress=False)
    words, vectors = read_word2vec_text(d / "run" / "vectors.txt")
    w2v.io.write_word2vec_binary(d / "v.bin", words, vectors)
    return {"checkpoint": (d / "run" / "checkpoint.npz").read_bytes(), "text": (d / "run" / "vectors.txt").read_bytes(),
            "binary": (d / "v.bin").read_bytes(), "corpus": corpus.read_bytes(),
            "gz": gzip.compress(corpus.read_bytes()), "config": (d / "run" / "config.yaml").read_bytes(),
            "run_dir": d / "run"}


def _bytes_for(kind):
    return st.one_of(st.binary(max_size=400), mutations.map(lambda m: ("mutate", kind, m)))


def _materialise(sample_files, drawn, kind):
    if isinstance(drawn, tuple):
        _, _, (edits, cut) = drawn
        return _mutate(sample_files[kind], edits, cut)
    return drawn


@FAST
@given(drawn=_bytes_for("checkpoint"))
def test_checkpoint_loader_on_any_bytes(sample_files, tmp_path, drawn):
    p = tmp_path / "checkpoint.npz"
    p.write_bytes(_materialise(sample_files, drawn, "checkpoint"))
    try:
        ck = load_checkpoint(p)
    except DamagedFileError:
        return
    assert ck["emb_in"].shape == ck["emb_out"].shape and np.isfinite(ck["emb_in"]).all()


@FAST
@given(drawn=st.one_of(_bytes_for("text"), _bytes_for("binary")))
def test_vectors_readers_on_any_bytes(sample_files, tmp_path, drawn):
    kind = drawn[1] if isinstance(drawn, tuple) else "text"
    p = tmp_path / "v"
    p.write_bytes(_materialise(sample_files, drawn, kind))
    for reader in (read_vectors, read_word2vec_text, read_word2vec_binary):
        try:
            words, vectors = reader(p)
        except DamagedFileError:
            continue
        assert len(words) == len(vectors) and np.isfinite(vectors).all()


@FAST
@given(drawn=st.one_of(_bytes_for("corpus"), _bytes_for("gz")), gz=st.booleans())
def test_corpus_reader_on_any_bytes(sample_files, tmp_path, drawn, gz):
    kind = drawn[1] if isinstance(drawn, tuple) else "corpus"
    p = tmp_path / ("c.txt.gz" if kind == "gz" or gz else "c.txt")
    p.write_bytes(_materialise(sample_files, drawn, kind))
    try:
        ds = prepare([p], cfg(chunk_bytes=64))
    except CorpusError:
        return
    assert len(ds.vocab) >= 1 and ds.ids.min() >= -1 and ds.ids.max() < len(ds.vocab)


@FAST
@given(drawn=_bytes_for("config"))
def test_config_loader_on_any_bytes(sample_files, tmp_path, drawn):
    p = tmp_path / "c.yaml"
    p.write_bytes(_materialise(sample_files, drawn, "config"))
    try:
        loaded = load_config(p)
    except ConfigError:
        return
    assert isinstance(loaded, Config)


_ODD_VALUES = [0, 1, -1, 2, 7, 10**6, -(10**6), 2**31, -(2**31), 2**63 - 1, -(2**63), float("nan"), float("inf"),
               -float("inf"), 1e30, 0.5]


def _cast(value, dtype):
    """``value`` as ``dtype`` stores it: integers wrap as in C, non-finite values become 0 there."""
    with np.errstate(all="ignore"):
        if dtype.kind in "iu":
            return np.array(int(value) % 2**64 if np.isfinite(value) else 0, dtype=np.uint64).astype(dtype)
        return np.array(value, dtype=np.float64).astype(dtype)


def _mutated_array(arr: np.ndarray, action: int, index: int, value_index: int, text: str):
    if action == 0:  # one element set to an odd value (cast as the array's dtype would)
        arr = arr.copy()
        if arr.size == 0:
            return arr
        flat = arr.reshape(-1)
        if arr.dtype.kind == "U":
            flat[index % arr.size] = text
        else:
            flat[index % arr.size] = _cast(_ODD_VALUES[value_index % len(_ODD_VALUES)], arr.dtype)
        return arr
    if action == 1:  # one row fewer or one more
        return arr[:-1] if arr.ndim and len(arr) and index % 2 else np.concatenate([arr, arr[:1]]) if arr.ndim else arr
    if action == 2:  # another dtype
        dtypes = [np.int32, np.int64, np.uint64, np.float32, np.float64]
        with np.errstate(all="ignore"):
            return arr.astype(dtypes[index % len(dtypes)]) if arr.dtype.kind != "U" else np.array(text)
    return None  # removed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key_index=st.integers(0, 40), action=st.integers(0, 3), index=st.integers(0, 1 << 20),
       value_index=st.integers(0, 100), text=st.text(max_size=30))
def test_resume_from_any_mutated_checkpoint_array(sample_files, tmp_path_factory, key_index, action, index,
                                                  value_index, text):
    """A checkpoint whose zip is whole but one array is wrong: `resume` trains on it (through the
    kernels) or stops with the project's one-line error, never anything else."""
    from w2v.cli import _user_errors

    run = tmp_path_factory.mktemp("mutated") / "run"
    shutil.copytree(sample_files["run_dir"], run)
    with np.load(run / "checkpoint.npz") as z:
        data = {k: z[k] for k in z.files}
    key = sorted(data)[key_index % len(data)]
    new = _mutated_array(data[key], action, index, value_index, text)
    if new is None:
        del data[key]
    else:
        data[key] = new
    write_arrays(run / "checkpoint.npz", data)
    try:
        model = resume(run, epochs=2, show_progress=False)
    except _user_errors():
        return
    assert np.isfinite(model.emb_in).all() or "emb" in key
