"""A training run directory: what ``w2v train`` leaves behind, and how a run continues.

DIR/vectors.txt (or the ``format`` chosen), vocab.txt, config.yaml (the resolved config),
log.jsonl (a JSON line every 1% of the run and every ``log_interval`` seconds) and
checkpoint.npz: both matrices, the biases, vocabulary, config, corpus paths, progress and every
worker's RNG state and position, so ``w2v train --resume DIR`` continues bit for bit (one worker).
A run stopped by SIGINT/SIGTERM writes the checkpoint and vectors.partial.txt instead.

Everything read back is checked before use (``load_checkpoint``, ``check_workers``,
``check_progress``, ``check_model``); a directory holding a run is not overwritten without
``overwrite``, and a lock on the directory keeps two runs from writing it at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Config, ConfigError, parse_config, save_config, validate
from .corpus import corpus_files
from .dataset import Dataset, encode, prepare
from .errors import TrainingError, WorkersLost
from .io import DamagedFileError, OutputError, atomic_open, check_free_space
from .vocab import Vocab

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

if TYPE_CHECKING:
    from .train import Model, Trainer

CHECKPOINT = "checkpoint.npz"
PARTIAL = "vectors.partial.txt"
_CHECKPOINT_VERSION = 1


def _make_dir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output directory {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"cannot write to output directory {out}: permission denied")
    return out


def save_checkpoint(path: Path, trainer: Trainer, corpus: list[str], fingerprint: list[dict] | None = None) -> None:
    import yaml

    m = trainer.model
    arrays = {
        "version": np.int64(_CHECKPOINT_VERSION), "emb_in": m.emb_in, "emb_out": m.emb_out, "bias": m.bias,
        "words": np.array(m.words), "counts": m.counts, "config": np.array(yaml.safe_dump(trainer.cfg.to_dict())),
        "corpus": np.array([str(Path(c).resolve()) for c in corpus]), "n_words": np.int64(trainer.dataset.n_words),
        "corpus_files": np.array(json.dumps(fingerprint if fingerprint is not None else corpus_fingerprint(corpus))),
        **trainer.state_arrays(),
    }
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_checkpoint(path: Path) -> dict:
    """The arrays of a checkpoint, checked (``check_checkpoint``) before anyone uses them: a damaged
    file, or one that is not a w2v checkpoint, is a DamagedFileError naming the file and the fault."""
    data = _read_npz(Path(path))
    check_checkpoint(data, path)
    return data


def _read_npz(path: Path) -> dict:
    """Each .npy member of the zip file, its size checked against its header before it is read
    (np.load would allocate what a damaged header claims); the zip CRC checks the data."""
    try:
        fh = open(path, "rb")
    except OSError as e:
        raise OutputError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            with zipfile.ZipFile(fh) as zf:
                data = {}
                for info in zf.infolist():
                    if not info.filename.endswith(".npy") or info.compress_type != zipfile.ZIP_STORED:
                        raise DamagedFileError(f"{path} is not a w2v checkpoint (it holds {info.filename!r})")
                    if info.file_size > size:
                        raise ValueError(f"{info.filename} claims {info.file_size} bytes in a file of {size}")
                    with zf.open(info) as member:
                        data[info.filename[:-4]] = _read_npy(member, info.file_size, info.filename)
        except DamagedFileError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
                RuntimeError) as e:  # what zipfile and numpy's header parser raise on bad bytes
            raise DamagedFileError(f"checkpoint {path} is damaged or not a checkpoint "
                                   f"({type(e).__name__}: {str(e)[:200]})") from None
    return data


def _read_npy(fh, file_size: int, name: str) -> np.ndarray:
    from numpy.lib import format as npy

    version = npy.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = npy.read_array_header_2_0(fh)
    else:
        raise ValueError(f"{name}: .npy format version {version}")
    if dtype.hasobject or any(n < 0 for n in shape):
        raise ValueError(f"{name}: an array of {dtype} {shape}")
    need = math.prod(shape) * dtype.itemsize
    if fh.tell() + need != file_size:
        raise ValueError(f"{name} holds {file_size - fh.tell()} bytes, its header says {shape} {dtype} ({need} bytes)")
    if need == 0:
        return np.zeros(shape, dtype)
    data = fh.read(need)
    if len(data) != need:
        raise EOFError(f"{name} ends early")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


# what a checkpoint holds: dtype (or kind) and shape, by symbols every array must agree on:
# V words, D dimensions, W workers, C corpus paths, E epochs logged
_CHECKPOINT_ARRAYS = {
    "emb_in": ("float32", "VD"), "emb_out": ("float32", "VD"), "bias": ("float32", "V"), "words": ("U", "V"),
    "counts": ("int64", "V"), "config": ("U", ""), "corpus": ("U", "C"), "n_words": ("int64", ""),
    "cursors": ("int64", "W4"), "epochs": ("int64", "W"), "rng_pairs": ("uint64", "W"), "rng_neg": ("uint64", "W"),
    "marks": ("int64", "W"), "totals": ("float64", "W4"), "words_done": ("int64", ""), "pairs": ("int64", ""),
    "seconds": ("float64", ""), "epoch_loss": ("float64", "E3"),
}
_OPTIONAL_ARRAYS = {"corpus_files": ("U", "")}  # older checkpoints lack it


def check_checkpoint(data: dict, path) -> None:
    """Arrays present, dtypes and shapes consistent with each other and with the config inside,
    every number finite, positions and counters in range. Raises DamagedFileError."""
    def damaged(what):
        return DamagedFileError(f"checkpoint {path} is damaged: {what}")

    version = data.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise DamagedFileError(f"{path} is not a w2v checkpoint (no format version)")
    if int(version) != _CHECKPOINT_VERSION:
        raise DamagedFileError(f"{path} was written by another w2v version (checkpoint format {int(version)}; "
                               f"this w2v reads format {_CHECKPOINT_VERSION})")
    sizes: dict[str, int] = {}
    for key, (dtype, dims) in {**_CHECKPOINT_ARRAYS, **_OPTIONAL_ARRAYS}.items():
        if key not in data:
            if key in _OPTIONAL_ARRAYS:
                continue
            raise damaged(f"it has no '{key}' array")
        arr = data[key]
        if (arr.dtype.kind != dtype) if len(dtype) == 1 else (arr.dtype != np.dtype(dtype)):
            raise damaged(f"'{key}' is {arr.dtype}, expected {dtype}")
        if arr.ndim != len(dims):
            raise damaged(f"'{key}' has shape {arr.shape}, expected {len(dims)} dimension(s)")
        for n, sym in zip(arr.shape, dims, strict=True):
            expected = int(sym) if sym.isdigit() else sizes.setdefault(sym, n)
            if n != expected:
                raise damaged(f"'{key}' has shape {arr.shape}, which does not fit the other arrays")
    if min(sizes["V"], sizes["D"], sizes["W"], sizes["C"]) < 1:
        raise damaged(f"empty arrays ({sizes['V']} words, dimension {sizes['D']}, {sizes['W']} workers)")
    for key in ("emb_in", "emb_out", "bias"):
        if not math.isfinite(data[key].sum(dtype=np.float64)):  # one pass, no temporary of the matrix's size
            raise damaged(f"'{key}' holds NaN or infinite values")
    counts = data["counts"]
    if counts.min() < 1 or (np.diff(counts) > 0).any():
        raise damaged("the vocabulary counts are not positive and in descending order")
    try:
        cfg = validate(parse_config(str(data["config"]), f"in {path}"), sizes["V"])
    except ConfigError as e:
        raise damaged(f"its config: {e}") from None
    if cfg.dim != sizes["D"]:
        raise damaged(f"its config says dim {cfg.dim} but the vectors have {sizes['D']}")
    problem = _worker_state_problem(data, sizes["W"], cfg.epochs) or _loss_records_problem(data, cfg.epochs)
    if problem:
        raise damaged(problem)
    # a word read makes at most 2 * window pairs, and a batch (one sampler mark) at least one pair
    words_done, pairs = int(data["words_done"]), int(data["pairs"])
    if not 0 <= words_done <= int(data["n_words"]) * cfg.epochs or not 0 <= pairs <= words_done * 2 * cfg.window \
            or int(data["marks"].max()) > pairs or not 0 <= float(data["seconds"]) < math.inf:
        raise damaged("its progress counters are out of range")
    if "corpus_files" in data and _fingerprint_of(data) is None:
        raise damaged("'corpus_files' is not a list of corpus files")


def _worker_state_problem(st: dict, workers: int, epochs: int) -> str | None:
    """What is wrong with the workers' state arrays (None: nothing), shapes and dtypes included, as
    the kernels would index with them: a piece's pairs are read from [next, n_pairs) of a buffer a
    resumed worker starts empty, so next >= n_pairs; marks only grow from 0."""
    want = {"cursors": ("int64", (workers, 4)), "epochs": ("int64", (workers,)), "rng_pairs": ("uint64", (workers,)),
            "rng_neg": ("uint64", (workers,)), "marks": ("int64", (workers,)), "totals": ("float64", (workers, 4))}
    for key, (dtype, shape) in want.items():
        arr = st.get(key)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype) or arr.shape != shape:
            return f"'{key}' is missing or has the wrong type or shape for {workers} worker(s)"
    cursors, ep = st["cursors"], st["epochs"]
    if (cursors < 0).any() or (cursors[:, 1] > cursors[:, 2]).any():
        return "a worker's position is out of range"
    if (ep < 0).any() or (ep > epochs).any():
        return f"a worker's epoch is outside 0..{epochs}"
    if (st["marks"] < 0).any():
        return "a worker's sampler mark is negative"
    if not np.isfinite(st["totals"]).all():
        return "its loss records are not finite or name epochs the run does not have"
    return None


def _loss_records_problem(st: dict, epochs: int) -> str | None:
    """What is wrong with the per-epoch loss records [epoch, loss sum, pairs] (None: nothing)."""
    el = st.get("epoch_loss")
    if not isinstance(el, np.ndarray) or el.dtype != np.float64 or el.ndim != 2 or el.shape[1] != 3:
        return "'epoch_loss' is missing or has the wrong type or shape"
    if not np.isfinite(el).all() or ((el[:, 0] < 0) | (el[:, 0] >= epochs) | (el[:, 0] != np.round(el[:, 0]))).any():
        return "its loss records are not finite or name epochs the run does not have"
    return None


def check_workers(st: dict, spans: list[tuple[int, int]], cfg: Config) -> None:
    """The kernels' boundary for loaded worker state (a checkpoint's, or a Ray actor's last sync):
    the same number of workers, each position inside its part of this corpus. Raises TrainingError."""
    cursors = st.get("cursors")
    if isinstance(cursors, np.ndarray) and cursors.ndim == 2 and len(cursors) != len(spans):
        raise TrainingError(f"the checkpoint has {len(cursors)} workers; resume with the same number")
    problem = _worker_state_problem(st, len(spans), cfg.epochs)
    if problem is None:
        for i, (start, end) in enumerate(spans):
            if not start <= int(cursors[i, 0]) <= end:
                problem = f"worker {i + 1}'s position {int(cursors[i, 0])} lies outside its part [{start}, {end}]"
    if problem:
        raise TrainingError(f"the checkpoint's training state does not fit this corpus: {problem}")


def check_progress(st: dict, cfg: Config) -> None:
    """A loaded run's loss records fit its epochs. Raises TrainingError."""
    problem = _loss_records_problem(st, cfg.epochs)
    if problem:
        raise TrainingError(f"the checkpoint's training state does not fit this corpus: {problem}")


def check_model(model: Model, vocab_size: int, dim: int) -> None:
    """Trainer's boundary for the parameters the kernels write: [V, D], [V, D] and [V] float32
    arrays the kernels may write to."""
    for name, shape in (("emb_in", (vocab_size, dim)), ("emb_out", (vocab_size, dim)), ("bias", (vocab_size,))):
        arr = getattr(model, name)
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != shape \
                or not arr.flags.writeable:
            raise TrainingError(f"the model's {name} must be a writeable float32 array of shape {shape}, got "
                                f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")


# ---- the corpus a checkpoint was trained on

_EDGE_BYTES = 1 << 20


def corpus_fingerprint(corpus) -> list[dict]:
    """Each corpus file's path, size, mtime and a SHA-256 of its first and last MiB: enough to see
    that a file changed without reading it all."""
    prints = []
    for f in corpus_files(corpus):
        st = f.stat()
        h = hashlib.sha256()
        try:
            with open(f, "rb") as fh:
                h.update(fh.read(_EDGE_BYTES))
                if st.st_size > _EDGE_BYTES:
                    fh.seek(max(_EDGE_BYTES, st.st_size - _EDGE_BYTES))
                    h.update(fh.read(_EDGE_BYTES))
        except OSError as e:
            from .corpus import CorpusError

            raise CorpusError(f"cannot read {f}: {e.strerror or e}") from None
        prints.append({"path": str(f.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "edges_sha256": h.hexdigest()})
    return prints


def _fingerprint_of(ck: dict) -> list[dict] | None:
    try:
        prints = json.loads(str(ck["corpus_files"]))
    except ValueError:
        return None
    fields = {"path": str, "size": int, "mtime_ns": int, "edges_sha256": str}
    ok = isinstance(prints, list) and all(
        isinstance(p, dict) and all(isinstance(p.get(k), t) for k, t in fields.items()) for p in prints)
    return prints if ok else None


def _corpus_changes(recorded: list[dict], now: list[dict]) -> list[str]:
    before, after = {p["path"]: p for p in recorded}, {p["path"]: p for p in now}
    changes = [f"{path} is gone" for path in before if path not in after]
    changes += [f"{path} is new" for path in after if path not in before]
    for path in before.keys() & after.keys():
        a, b = before[path], after[path]
        if a["size"] != b["size"]:
            changes.append(f"{path} was {a['size']:,} bytes and is {b['size']:,}")
        elif a["edges_sha256"] != b["edges_sha256"]:
            changes.append(f"{path} has other content")
        elif a["mtime_ns"] != b["mtime_ns"]:
            changes.append(f"{path} was modified (its mtime changed)")
    return changes


def _check_corpus_unchanged(ck: dict, corpus: list[str], out: Path, log) -> list[dict]:
    """Refuse to resume on a corpus that is not the checkpoint's; returns its fingerprint."""
    now = corpus_fingerprint(corpus)
    if "corpus_files" not in ck:
        log("warning: the checkpoint records no corpus sizes and mtimes (an older w2v); the corpus is checked "
            "by its vocabulary only")
        return now
    changes = _corpus_changes(_fingerprint_of(ck), now)
    if changes:
        more = f" (and {len(changes) - 1} more change(s))" if len(changes) > 1 else ""
        raise TrainingError(f"cannot resume {out}: the corpus changed since the checkpoint: {changes[0]}{more}; "
                            "restore it, or start a new run (--overwrite)")
    return now


# ---- the run directory: what it holds, its lock, the disk space a run needs


def _run_state(out: Path) -> tuple[str, Path] | None:
    """('finished', its vectors file), ('unfinished', its checkpoint) or None for no run."""
    from .export import VECTOR_FILES

    for name in VECTOR_FILES.values():
        if (out / name).exists():
            return "finished", out / name
    for name in (CHECKPOINT, PARTIAL):
        if (out / name).exists():
            return "unfinished", out / name
    return None


def _refuse_existing_run(out: Path, overwrite: bool) -> None:
    state = None if overwrite else _run_state(out)
    if state and state[0] == "finished":
        raise OutputError(f"{out} holds a finished run ({state[1].name}): give --overwrite to replace it, "
                          "or choose another --output")
    if state:
        raise OutputError(f"{out} holds an unfinished run ({state[1].name}): continue it with "
                          f"w2v train --resume {shlex.quote(str(out))} (or give --overwrite to start again)")


class _DirLock:
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


def _open_run(out: Path, cfg: Config, corpus: list[str], overwrite: bool, log) -> Run:
    """Take the directory's lock, check again what it holds (a run may have ended meanwhile), clear
    an overwritten run's files and write the config."""
    lock = _DirLock(out)
    try:
        _refuse_existing_run(out, overwrite)
        if overwrite and _run_state(out):
            log(f"overwriting the run in {out}")
            for name in _RUN_FILES:
                (out / name).unlink(missing_ok=True)
        (out / "log.jsonl").unlink(missing_ok=True)
        save_config(cfg, out / "config.yaml")
        return Run(out, cfg, corpus, lock=lock, log=log)
    except BaseException:
        lock.release()
        raise


# bytes of one "%.9g" number and its separator in a text vectors file (13.6 measured on demo vectors)
_TEXT_NUMBER_BYTES = 14


def disk_needed(words: list[str], cfg: Config, checkpoint_exists: bool = False) -> tuple[int, dict[str, int]]:
    """(the most the run adds to its directory at any moment, sizes of the files it writes). A
    checkpoint is replaced by writing the new one beside it; the vectors come after it."""
    from .export import VECTOR_FILES

    n, dim = len(words), cfg.dim
    word_bytes = sum(len(w.encode("utf-8")) for w in words)
    longest = max((len(w) for w in words), default=1)
    # both matrices, biases, counts, the words as a fixed-width UTF-32 array; the rest (zip and
    # .npy headers, config, paths as UTF-32) well under 32 KiB, and 100 bytes a worker
    checkpoint = n * (8 * dim + 4 + 8 + 4 * longest) + (1 << 15) + 100 * cfg.resolved_workers()
    vectors = {"text": n * (dim * _TEXT_NUMBER_BYTES + 2) + word_bytes,
               "binary": n * (4 * dim + 2) + word_bytes,
               "npy": n * 4 * dim + 128 + word_bytes + 12 * n,
               "projector": n * (dim * _TEXT_NUMBER_BYTES + 14) + word_bytes}[cfg.format]
    other = word_bytes + 12 * n + (1 << 20)  # vocab.txt, config.yaml, log.jsonl
    files = {CHECKPOINT: checkpoint, VECTOR_FILES[cfg.format]: vectors, "other files": other}
    peak = (0 if checkpoint_exists else checkpoint) + max(checkpoint, vectors) + other
    return peak, files


def _check_disk_space(out: Path, words: list[str], cfg: Config) -> None:
    peak, files = disk_needed(words, cfg, (out / CHECKPOINT).exists())
    hint = " (--format binary writes vectors about a third the size)" if cfg.format in ("text", "projector") else ""
    check_free_space(out, peak, files, hint)


class Run:
    """Files of one run directory, written atomically (temporary name, then rename)."""

    def __init__(self, out: Path, cfg: Config, corpus: list[str], lock: _DirLock | None = None,
                 log=lambda msg: None, fingerprint: list[dict] | None = None):
        self.out, self.cfg, self.corpus = out, cfg, corpus
        self.lock, self.log = lock, log
        self.fingerprint = fingerprint if fingerprint is not None else corpus_fingerprint(corpus)
        self.saved_words: int | None = None  # words done at the last checkpoint on disk
        self._log_failed = False

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

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

    def checkpoint(self, trainer: Trainer) -> None:
        save_checkpoint(self.out / CHECKPOINT, trainer, self.corpus, self.fingerprint)
        self.saved_words = trainer.progress.words_done

    def periodic_checkpoint(self, trainer: Trainer) -> None:
        """A checkpoint while training; if it cannot be written, training goes on (the last good
        checkpoint stays in place) and the end of the run tries again."""
        try:
            self.checkpoint(trainer)
        except OutputError as e:
            self.log(f"warning: {e}; training goes on, the previous checkpoint is kept")

    def write_outputs(self, model: Model, partial: bool = False) -> Path:
        """vocab.txt, the vectors, then config.yaml: should the vectors fail, the config still
        describes the files that are there (a resumed run's new epochs are not claimed)."""
        from .export import write_vectors

        model.vocab_save(self.out / "vocab.txt")
        if partial:
            from .io import write_word2vec_text

            path = self.out / PARTIAL
            write_word2vec_text(path, model.words, model.emb_in)
        else:
            path = write_vectors(self.out, model.words, model.counts, model.emb_in, self.cfg.format)
            (self.out / PARTIAL).unlink(missing_ok=True)
        save_config(self.cfg, self.out / "config.yaml")
        return path


def _train(trainer: Trainer, run: Run | None, show_progress, log) -> Model:
    try:
        return _train_and_save(trainer, run, show_progress, log)
    finally:
        if run is not None:
            run.close()


def _train_and_save(trainer: Trainer, run: Run | None, show_progress, log) -> Model:
    from .train import Interrupted, _finish

    try:
        ok = trainer.run(show_progress, on_log=run.log_line if run else None, log_interval=trainer.cfg.log_interval,
                         checkpoint=(lambda: run.periodic_checkpoint(trainer)) if run else None,
                         checkpoint_interval=trainer.cfg.checkpoint_interval)
    except WorkersLost as e:
        raise _saved_after_loss(e, trainer, run) from None
    model = _finish(trainer, log)
    if run is None:
        if not ok:
            raise Interrupted(trainer.caught[0], None)
        return model
    path = _save_results(run, trainer, model, partial=not ok)
    if not ok:
        log(f"stopped: checkpoint and the vectors so far ({path}) saved; continue with:\n"
            f"  w2v train --resume {run.out}")
        raise Interrupted(trainer.caught[0], run.out)
    log(f"wrote {path} ({len(model.words)} x {trainer.cfg.dim}) and the run files in {run.out}/")
    return model


def _save_results(run: Run, trainer: Trainer, model: Model, partial: bool) -> Path:
    """The checkpoint first, then the vectors. The checkpoint holds the whole model (both matrices,
    the biases, the vocabulary) and the state to go on: once it is on disk nothing of the training
    is lost, whatever happens to the vectors (``w2v export`` writes them from it). Should it fail,
    the vectors are still tried (in binary or npy format they are the smaller file)."""
    from .export import VECTOR_FILES

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


def train(corpus, cfg: Config | None = None, output: str | Path | None = "w2v-run",
          show_progress: bool | None = None, log=lambda msg: None, overwrite: bool = False) -> Model:
    """The whole pipeline: corpus file(s) -> vocabulary -> training -> the run directory ``output``
    (None: train in memory only). Raises ``Interrupted`` after saving on SIGINT/SIGTERM.

    A directory that holds a run (vectors or a checkpoint) is refused unless ``overwrite``, as is
    one another ``train`` is writing; a run that will not fit the disk is refused before training.
    """
    from .train import Trainer, check_memory

    cfg = validate(cfg or Config())
    cfg = Config(**{**cfg.to_dict(), "workers": cfg.resolved_workers()})
    corpus = [str(c) for c in ([corpus] if isinstance(corpus, (str, os.PathLike)) else corpus)]
    out = _make_dir(Path(output)) if output is not None else None
    if out is not None:  # refuse before the counting pass, not after it
        _refuse_existing_run(out, overwrite)
        _DirLock(out).release()
    if cfg.backend == "ray":
        if cfg.init_from:
            raise ConfigError("--init-from runs on the local backend only (for now): drop --backend ray")
        return _train_ray(corpus, cfg, out, show_progress, log, overwrite=overwrite)
    base = None
    if cfg.init_from:  # continuing another run: see continued_config
        dataset, base, cfg = continued_dataset(corpus, cfg, out, log)
    else:
        dataset = prepare(corpus, cfg, log)
    log(f"corpus: {dataset.stats['tokens']:,} tokens, {dataset.n_words:,} in a vocabulary of "
        f"{len(dataset.vocab):,} words")
    if dataset.stats.get("invalid_utf8"):
        log(f"warning: replaced {dataset.stats['invalid_utf8']} invalid UTF-8 sequence(s) by U+FFFD")
    validate(cfg, len(dataset.vocab))
    check_memory(len(dataset.vocab), len(dataset.ids), cfg, log)
    if out is not None:
        _check_disk_space(out, dataset.vocab.words, cfg)
    trainer = Trainer(dataset, cfg, continued_model(dataset, cfg, base) if base is not None else None)
    run = _open_run(out, cfg, corpus, overwrite, log) if out is not None else None
    return _train(trainer, run, show_progress, log)


def resume(run_dir, epochs: int | None = None, show_progress: bool | None = None, log=lambda msg: None,
           address: str | None = None) -> Model:
    """Continue the run in ``run_dir`` from its checkpoint: the rest of an interrupted run, or more
    epochs (``epochs`` is the new total). The learning rate and word count go on where they were.
    Refused when the corpus files changed since the checkpoint (size, mtime, first and last MiB).
    A run of the Ray backend resumes on Ray, at ``address`` if given (a restarted cluster)."""
    from .train import Model, Trainer, check_memory

    out = Path(run_dir)
    ck_path = out / CHECKPOINT
    if not ck_path.exists():
        raise OutputError(f"no checkpoint in {out} (expected {ck_path})")
    _DirLock(out).release()  # refuse at once if a run is writing it
    ck_stat = _stat_key(ck_path)
    ck = load_checkpoint(ck_path)
    cfg = validate(parse_config(str(ck["config"]), f"in {ck_path}"))
    if epochs is not None:
        if epochs < cfg.epochs:
            raise ConfigError(f"--epochs {epochs} is below the run's {cfg.epochs}; a resumed run can only go further")
        cfg = Config(**{**cfg.to_dict(), "epochs": epochs})
    corpus = [str(c) for c in ck["corpus"]]
    fingerprint = _check_corpus_unchanged(ck, corpus, out, log)
    if address is not None and cfg.backend != "ray":
        raise ConfigError(f"--address is for runs of the Ray backend; {out} was trained with backend {cfg.backend}")
    if cfg.backend == "ray":
        if address is not None:
            cfg = Config(**{**cfg.to_dict(), "address": address})
        return _train_ray(corpus, cfg, out, show_progress, log, ck=ck,
                          resume=(fingerprint, ck_path, ck_stat))
    dataset = (encode(corpus, Vocab(ck["words"].tolist(), ck["counts"]), cfg) if cfg.init_from
               else prepare(corpus, cfg, log))
    if dataset.vocab.words != ck["words"].tolist() or dataset.n_words != int(ck["n_words"]):
        raise TrainingError(f"the corpus {' '.join(corpus)} changed since the checkpoint; it cannot be resumed")
    check_memory(len(dataset.vocab), len(dataset.ids), cfg, log)
    _check_disk_space(out, dataset.vocab.words, cfg)
    model = Model(dataset.vocab.words, dataset.vocab.counts, ck["emb_in"].copy(), ck["emb_out"].copy(),
                  ck["bias"].copy(), cfg)
    trainer = Trainer(dataset, cfg, model)
    trainer.load_state(ck)
    run = _resume_run(out, cfg, corpus, fingerprint, ck_path, ck_stat, log)
    run.saved_words = trainer.progress.words_done
    log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
    return _train(trainer, run, show_progress, log)


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _resume_run(out: Path, cfg: Config, corpus: list[str], fingerprint: list[dict], ck_path: Path, ck_stat: tuple,
                log) -> Run:
    """Take the directory's lock; refuse if another run replaced the checkpoint since it was read."""
    lock = _DirLock(out)
    try:
        if not ck_path.exists() or _stat_key(ck_path) != ck_stat:
            raise OutputError(f"{ck_path} changed while it was being read (another w2v train --resume?); try again")
    except BaseException:
        lock.release()
        raise
    return Run(out, cfg, corpus, lock=lock, log=log, fingerprint=fingerprint)


# Continued training: w2v train NEW... --init-from RUN

# A continued run starts at this fraction of RUN's alpha (measured: README, "Continuing on new text").
CONTINUE_ALPHA_FACTOR = 0.5


def _checkpoint_of(run_dir) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise OutputError(f"run directory {run_dir} does not exist")
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise OutputError(f"no checkpoint in {run_dir} (expected {path}): --init-from needs a run directory "
                          "that w2v train wrote")
    return path


def continued_config(run_dir, config_path=None, overrides: dict | None = None) -> Config:
    """The config of ``w2v train NEW --init-from RUN``: RUN's own settings (its config.yaml), with
    alpha at ``CONTINUE_ALPHA_FACTOR`` times RUN's and the machine's settings (workers, cache_dir)
    at their defaults; then the keys that ``config_path`` sets and the non-None ``overrides``."""
    import yaml

    from .config import load_config, validate

    _checkpoint_of(run_dir)
    user = load_config(config_path, overrides)  # checks the file and the overrides
    given = {k for k, v in (overrides or {}).items() if v is not None}
    if config_path is not None:
        given |= set(yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {})
    run_cfg = load_config(Path(run_dir) / "config.yaml")
    values = {**run_cfg.to_dict(), "alpha": run_cfg.alpha * CONTINUE_ALPHA_FACTOR, "workers": user.workers,
              "cache_dir": user.cache_dir, **{k: getattr(user, k) for k in given}, "init_from": str(run_dir)}
    return validate(Config(**values))


def continued_dataset(corpus: list[str], cfg: Config, out: Path | None, log=lambda msg: None):
    """The new corpus encoded with the merged vocabulary (``vocab.merge_vocab``), RUN's checkpoint
    (its old-id -> new-id map added) and ``cfg`` with the run and both corpora recorded."""
    from .corpus import CorpusError, corpus_files
    from .vocab import count_words, merge_vocab

    run_dir = Path(cfg.init_from).resolve()
    path = _checkpoint_of(run_dir)
    if out is not None and out.resolve() == run_dir:
        raise OutputError(f"--output {out} is the run it starts from: a continued run needs a directory of its own")
    base = load_checkpoint(path)  # checked like any checkpoint: damaged or inconsistent is one line
    dim = base["emb_in"].shape[1]
    if cfg.dim != dim:
        raise ConfigError(f"{run_dir} has dim {dim}, this run asks for dim {cfg.dim}: a continued run keeps "
                          "the dim of the run it starts from")
    files = corpus_files(corpus)
    log(f"counting words in {len(files)} file(s)")
    counts, cstats = count_words(files, cfg.lowercase, cfg.chunk_bytes, cfg.max_vocab_size)
    if cstats.read.tokens == 0:
        raise CorpusError(f"the corpus is empty (no tokens in {cstats.read.files} file(s), "
                          f"{cstats.read.bytes} bytes)")
    old = Vocab(base["words"].tolist(), base["counts"])
    vocab, old_to_new = merge_vocab(old, counts, cfg.min_count, cfg.max_vocab_size, cfg.prune)
    base["old_to_new"] = old_to_new
    kept = int((old_to_new >= 0).sum())
    log(f"vocabulary: {kept:,} words of {run_dir}" + (f" ({len(old) - kept:,} pruned)" if kept < len(old) else "")
        + f" + {len(vocab) - kept:,} new reaching min_count={cfg.min_count} = {len(vocab):,} words; encoding")
    dataset = encode(files, vocab, cfg)
    if dataset.n_words == 0:
        raise CorpusError(f"no word of the corpus is in the vocabulary of {run_dir} or reaches "
                          f"min_count={cfg.min_count}")
    dataset.stats = {"distinct": len(counts), "pruned_below": cstats.pruned_below,
                     "dropped_tokens": cstats.read.tokens - dataset.n_words, **asdict(cstats.read)}
    cfg = Config(**{**cfg.to_dict(), "init_from": str(run_dir),
                    "init_from_corpus": os.pathsep.join(str(c) for c in base["corpus"].tolist()),
                    "continued_on": os.pathsep.join(str(Path(c).resolve()) for c in corpus)})
    return dataset, base, cfg


def continued_model(dataset: Dataset, cfg: Config, base: dict) -> Model:
    """RUN's input and output vectors and biases moved to their words' new ids; new words start
    as in a fresh run (``init_model``, biases from the merged counts). RUN's biases are kept,
    not re-centred on the merged counts: they are what RUN learnt, and training on NEW moves them."""
    from .train import init_model

    model = init_model(dataset, cfg)
    old_to_new = base.pop("old_to_new")
    kept = old_to_new >= 0
    for name in ("emb_in", "emb_out", "bias"):
        getattr(model, name)[old_to_new[kept]] = base.pop(name)[kept]  # popped: RUN's copy is freed
    return model




def _check_corpus(corpus, words: list[str], n_words: int, ck: dict) -> None:
    if words != ck["words"].tolist() or n_words != int(ck["n_words"]):
        raise TrainingError(f"the corpus {' '.join(corpus)} changed since the checkpoint; it cannot be resumed")


def _train_ray(corpus, cfg: Config, out: Path | None, show_progress, log, ck: dict | None = None,
               overwrite: bool = False, resume: tuple | None = None) -> Model:
    """The Ray backend (w2v.distributed) in the same run directory: fresh, or resumed from ``ck``
    (``resume``: the corpus fingerprint and the checkpoint's path and stat, as ``resume`` read them)."""
    from .distributed import RayTrainer

    trainer = RayTrainer(corpus, cfg, log, checkpoint=ck)
    try:
        run = None
        if ck is not None:
            _check_corpus(corpus, trainer.dataset.vocab.words, trainer.dataset.n_words, ck)
            trainer.load_state(ck)
            if out is not None:
                run = _resume_run(out, trainer.cfg, corpus, *resume, log)
                run.saved_words = trainer.progress.words_done
            log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
        elif out is not None:
            _check_disk_space(out, trainer.dataset.vocab.words, trainer.cfg)
            run = _open_run(out, trainer.cfg, corpus, overwrite, log)
        return _train(trainer, run, show_progress, log)
    finally:
        trainer.close()


def _saved_after_loss(error: WorkersLost, trainer: Trainer, run: Run | None) -> TrainingError:
    """Workers were lost for good: save what the others did, and say how to go on."""
    if run is None:
        return error
    run.checkpoint(trainer)
    run.write_outputs(trainer.model, partial=True)
    return TrainingError(f"{error}; the other workers' training is saved in {run.out}/{CHECKPOINT}: "
                         f"continue with: w2v train --resume {run.out}")
