"""The run directory: what it holds (empty, an unfinished run, a finished one), its lock, the
refusals and ``--overwrite``, the disk a run needs, and its files written under temporary names.

DIR/vectors.txt (or the ``format`` chosen), vocab.txt, config.yaml (the resolved config),
log.jsonl (a JSON line every 1% of the run and every ``log_interval`` seconds) and
checkpoint.npz (w2v.checkpoint). A run stopped by SIGINT/SIGTERM writes the checkpoint and
vectors.partial.txt instead.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import CHECKPOINT, corpus_fingerprint, save_checkpoint
from .config import Config, save_config
from .export import VECTOR_FILES, write_vectors
from .io import OutputError, check_free_space, write_word2vec_text
from .words import utf8_size

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

PARTIAL = "vectors.partial.txt"


def make_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output directory {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"cannot write to output directory {out}: permission denied")
    return out


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output(out: Path, overwrite: bool) -> None:
    """Before any work, and creating nothing: refuse an output directory that cannot be created or
    written, that holds a run (unless ``overwrite``) or that another run is writing. The directory
    itself is made only when training is about to start (``open_run``), so an error found on the
    way (the corpus, the config, the memory) leaves nothing behind."""
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"cannot create output directory {out}: a file has that name")
        if not os.access(out, os.W_OK):
            raise OutputError(f"cannot write to output directory {out}: permission denied")
        refuse_existing_run(out, overwrite)
        DirLock(out).release()
        return
    base = _existing_ancestor(out)
    if not base.is_dir():
        raise OutputError(f"cannot create output directory {out}: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create output directory {out}: permission denied in {base}")


def _run_state(out: Path) -> tuple[str, Path] | None:
    """('finished', its vectors file), ('unfinished', its checkpoint) or None for no run."""
    for name in VECTOR_FILES.values():
        if (out / name).exists():
            return "finished", out / name
    for name in (CHECKPOINT, PARTIAL):
        if (out / name).exists():
            return "unfinished", out / name
    return None


def has_results(out: Path, fmt: str) -> bool:
    """The run's vectors (in its format) are written and no partial vectors are left."""
    return (out / VECTOR_FILES[fmt]).exists() and not (out / PARTIAL).exists()


def refuse_existing_run(out: Path, overwrite: bool) -> None:
    state = None if overwrite else _run_state(out)
    if state and state[0] == "finished":
        raise OutputError(f"{out} holds a finished run ({state[1].name}): give --overwrite to replace it, "
                          "or choose another --output")
    if state:
        raise OutputError(f"{out} holds an unfinished run ({state[1].name}): continue it with "
                          f"w2v train --resume {shlex.quote(str(out))} (or give --overwrite to start again)")


class DirLock:
    """An exclusive flock on the run directory itself (no file left behind). The kernel releases it
    when the process ends, however it ends, so a crashed run never leaves it stuck."""

    def __init__(self, out: Path):
        self.fd = None
        if fcntl is None:
            return
        try:
            self.fd = os.open(out, os.O_RDONLY)
        except OSError as e:
            raise OutputError(f"cannot open the run directory {out}: {e.strerror or e}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise OutputError(f"{out} is in use: another w2v train is writing it (wait for it to end, or choose "
                              "another --output)") from None
        except OSError:  # a filesystem without locks: go on unlocked
            pass

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


_RUN_FILES = ("checkpoint.npz", "vectors.partial.txt", "log.jsonl", "vocab.txt", "vectors.txt", "vectors.bin",
              "vectors.npy", "vectors.tsv", "metadata.tsv", "report.png")
# files a run writes under a temporary name first (io.atomic_open: .NAME.XXXXXXXX.tmp)
_ATOMIC_FILES = ("checkpoint.npz", "vectors.partial.txt", "vocab.txt", "vectors.txt", "vectors.bin", "vectors.npy",
                 "vectors.tsv", "metadata.tsv", "config.yaml")


def remove_stale_temporaries(out: Path) -> int:
    """The temporary files a killed run left in its directory (call with the directory's lock
    held: no run is writing them); returns how many were removed."""
    removed = 0
    try:
        names = [p.name for p in out.iterdir()]
    except OSError:
        return 0
    for name in names:
        if name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in _ATOMIC_FILES):
            try:
                (out / name).unlink()
                removed += 1
            except OSError:
                pass
    return removed


def open_run(out: Path, cfg: Config, corpus: list[str], overwrite: bool, log) -> Run:
    """Create the directory if need be, take its lock, check again what it holds (a run may have
    ended meanwhile), clear an overwritten run's files and a killed run's temporaries, and write
    the config. Should that fail, a directory made here is removed again."""
    created = _first_missing(out)
    make_dir(out)
    lock = None
    try:
        lock = DirLock(out)
        refuse_existing_run(out, overwrite)
        remove_stale_temporaries(out)
        if overwrite and _run_state(out):
            log(f"overwriting the run in {out}")
            for name in _RUN_FILES:
                (out / name).unlink(missing_ok=True)
        (out / "log.jsonl").unlink(missing_ok=True)
        save_config(cfg, out / "config.yaml")
        return Run(out, cfg, corpus, lock=lock, log=log, created=created)
    except BaseException:
        if lock is not None:
            lock.release()
        _remove_empty_dirs(out, created)
        raise


def _first_missing(out: Path) -> Path | None:
    """The outermost directory of ``out`` (itself or a parent) that does not exist yet."""
    missing = None
    for p in [out, *out.parents]:
        if p.exists():
            break
        missing = p
    return missing


def _remove_empty_dirs(out: Path, top: Path | None) -> None:
    """Remove ``out`` and its parents up to ``top`` (the directories a run made), while empty."""
    if top is None:
        return
    for p in [out, *out.parents]:
        try:
            p.rmdir()
        except OSError:  # not empty (someone else's files), or gone
            return
        if p == top:
            return


# bytes of one "%.9g" number and its separator in a text vectors file (13.6 measured on demo vectors)
_TEXT_NUMBER_BYTES = 14


def disk_needed(words: Sequence[str], cfg: Config, checkpoint_exists: bool = False) -> tuple[int, dict[str, int]]:
    """(the most the run adds to its directory at any moment, sizes of the files it writes). A
    checkpoint is replaced by writing the new one beside it; the vectors come after it."""
    n, dim = len(words), cfg.dim
    word_bytes = utf8_size(words)
    # both matrices, biases, counts, the words' UTF-8 bytes and their int64 offsets; the rest (zip
    # and .npy headers, config, paths as UTF-32) well under 32 KiB, and 100 bytes a worker
    checkpoint = n * (8 * dim + 4 + 8 + 8) + word_bytes + (1 << 15) + 100 * cfg.resolved_workers()
    vectors = {"text": n * (dim * _TEXT_NUMBER_BYTES + 2) + word_bytes,
               "binary": n * (4 * dim + 2) + word_bytes,
               "npy": n * 4 * dim + 128 + word_bytes + 12 * n,
               "projector": n * (dim * _TEXT_NUMBER_BYTES + 14) + word_bytes}[cfg.format]
    other = word_bytes + 12 * n + (1 << 20)  # vocab.txt, config.yaml, log.jsonl
    files = {CHECKPOINT: checkpoint, VECTOR_FILES[cfg.format]: vectors, "other files": other}
    peak = (0 if checkpoint_exists else checkpoint) + max(checkpoint, vectors) + other
    return peak, files


def check_disk_space(out: Path, words: Sequence[str], cfg: Config) -> None:
    peak, files = disk_needed(words, cfg, (out / CHECKPOINT).exists())
    hint = " (--format binary writes vectors about a third the size)" if cfg.format in ("text", "projector") else ""
    check_free_space(out, peak, files, hint)


class Run:
    """Files of one run directory, written atomically (temporary name, then rename)."""

    def __init__(self, out: Path, cfg: Config, corpus: list[str], lock: DirLock | None = None,
                 log=lambda msg: None, fingerprint: list[dict] | None = None, created: Path | None = None):
        self.out, self.cfg, self.corpus = out, cfg, corpus
        self.lock, self.log = lock, log
        self.created = created  # the outermost directory this run made (out or a parent), None: none
        self.fingerprint = fingerprint if fingerprint is not None else corpus_fingerprint(corpus)
        self.saved_words: int | None = None  # words done at the last checkpoint on disk
        self._log_failed = False

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def discard(self) -> None:
        """Training failed before anything of it was saved: remove the files this run wrote
        (config.yaml, log.jsonl), and the directory if this run made it, so no half-run that
        refuses the next ``w2v train`` stays behind. A run with a checkpoint on disk keeps it all."""
        if self.saved_words is not None:
            return
        for name in ("config.yaml", "log.jsonl"):
            (self.out / name).unlink(missing_ok=True)
        _remove_empty_dirs(self.out, self.created)

    def log_line(self, record: dict) -> None:
        if self._log_failed:
            return
        try:
            with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as e:  # the log is not worth stopping hours of training for
            self._log_failed = True
            self.log(f"warning: cannot append to {self.out / 'log.jsonl'} ({e.strerror or e}); "
                     "training goes on without log lines")

    def checkpoint(self, trainer) -> None:
        save_checkpoint(self.out / CHECKPOINT, trainer, self.corpus, self.fingerprint)
        self.saved_words = trainer.progress.words_done

    def periodic_checkpoint(self, trainer) -> None:
        """A checkpoint while training; if it cannot be written, training goes on (the last good
        checkpoint stays in place) and the end of the run tries again."""
        try:
            self.checkpoint(trainer)
        except OutputError as e:
            self.log(f"warning: {e}; training goes on, the previous checkpoint is kept")

    def write_outputs(self, model, partial: bool = False) -> Path:
        """vocab.txt, the vectors, then config.yaml: should the vectors fail, the config still
        describes the files that are there (a resumed run's new epochs are not claimed)."""
        model.vocab_save(self.out / "vocab.txt")
        threads = self.cfg.resolved_workers()  # the training's threads are free now: text in blocks on each
        if partial:
            path = self.out / PARTIAL
            write_word2vec_text(path, model.words, model.emb_in, threads)
        else:
            path = write_vectors(self.out, model.words, model.counts, model.emb_in, self.cfg.format, threads)
            (self.out / PARTIAL).unlink(missing_ok=True)
        save_config(self.cfg, self.out / "config.yaml")
        return path


def save_results(run: Run, trainer, model, partial: bool) -> Path:
    """The checkpoint first, then the vectors. The checkpoint holds the whole model (both matrices,
    the biases, the vocabulary) and the state to go on: once it is on disk nothing of the training
    is lost, whatever happens to the vectors (``w2v export`` writes them from it). Should it fail,
    the vectors are still tried (in binary or npy format they are the smaller file)."""
    ck_error = None
    try:
        run.checkpoint(trainer)
    except OutputError as e:
        ck_error = e
    try:
        path = run.write_outputs(model, partial)
    except OutputError as e:
        if ck_error is not None:
            raise OutputError(f"{ck_error}; the vectors could not be written either; {_kept(run)}") from None
        fmt = run.cfg.format
        target = run.out / VECTOR_FILES[fmt] if fmt in ("text", "binary") else run.out
        raise OutputError(f"{e}; the trained model is safe in {run.out / CHECKPOINT}: free some space, then "
                          f"w2v export {shlex.quote(str(run.out))} --to {fmt} {shlex.quote(str(target))}") from None
    if ck_error is not None:
        raise OutputError(f"{ck_error}; the vectors are in {path}; {_kept(run)}")
    return path


def _kept(run: Run) -> str:
    if run.saved_words is None:
        return "no checkpoint of this run is on disk"
    return (f"the previous checkpoint ({run.saved_words:,} words trained) is kept: free some space, then "
            f"w2v train --resume {shlex.quote(str(run.out))}")


def stat_key(path: Path) -> tuple:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def resume_run(out: Path, cfg: Config, corpus: list[str], fingerprint: list[dict], ck_path: Path, ck_stat: tuple,
                log) -> Run:
    """Take the directory's lock; refuse if another run replaced the checkpoint since it was read."""
    lock = DirLock(out)
    try:
        if not ck_path.exists() or stat_key(ck_path) != ck_stat:
            raise OutputError(f"{ck_path} changed while it was being read (another w2v train --resume?); try again")
        remove_stale_temporaries(out)
    except BaseException:
        lock.release()
        raise
    return Run(out, cfg, corpus, lock=lock, log=log, fingerprint=fingerprint)


