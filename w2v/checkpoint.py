"""The checkpoint format: write it, read it back, and check everything it holds before use.

checkpoint.npz (an uncompressed .npz, no pickles) holds both matrices, the biases, the vocabulary
(format 2: the words' UTF-8 bytes end to end and their offsets, so its size follows the words'
bytes; format 1, still read, held them as a fixed-width array as wide as the longest word) and
counts, the resolved config, the corpus paths and their fingerprint (size, mtime, SHA-256 of
the first and last MiB), the progress counters, the per-epoch loss records and every worker's
position and RNG state, so a run continues bit for bit. Everything read back is checked
(``check_checkpoint``); the kernels' boundary checks for loaded state live here too
(``check_workers``, ``check_progress``, ``check_model``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import Config, ConfigError, parse_config, validate
from .corpus import CorpusError, corpus_files
from .errors import TrainingError
from .io import DamagedFileError, OutputError, atomic_open
from .pairs import new_cursor
from .rng import NEGATIVES, PAIRS, _mix, make_state
from .words import Words

CHECKPOINT = "checkpoint.npz"
_CHECKPOINT_VERSION = 3  # 3: a SHA-256 of the whole file in the zip's comment (2: words as UTF-8 bytes)
_READS = (1, 2, 3)  # the formats this w2v reads
# The zip's comment, the file's last bytes: this tag and the hex SHA-256 of every byte before it (the
# comment's length field included). zipfile and numpy ignore some header bytes (dates, flags, the
# directory's copy of fields they read elsewhere), so a flipped byte there changed nothing loaded
# while one elsewhere might; with the digest checked first, any flipped byte is refused.
_DIGEST_TAG = b"w2v-sha256 "
_TRAILER = len(_DIGEST_TAG) + 64


def pack_words(words) -> tuple[np.ndarray, np.ndarray]:
    """The words as one uint8 array of their UTF-8 bytes end to end, and int64 offsets [V + 1]
    (``words.Words``' arrays: a vocabulary's words are held so already)."""
    packed = Words.of(words)
    return packed.utf8, packed.offsets


def unpack_words(data: np.ndarray, offsets: np.ndarray) -> list[str] | None:
    """``pack_words`` undone; None when the arrays are not a packed list of non-empty words."""
    if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(data) \
            or (np.diff(offsets) < 1).any():
        return None
    try:
        return list(Words(data, offsets))  # each word decoded on its own, as the offsets cut them
    except UnicodeDecodeError:
        return None

def save_checkpoint(path: Path, trainer, corpus: list[str], fingerprint: list[dict] | None = None) -> None:
    import yaml

    m = trainer.model
    words_utf8, word_offsets = pack_words(m.words)
    arrays = {
        "version": np.int64(_CHECKPOINT_VERSION), "emb_in": m.emb_in, "emb_out": m.emb_out, "bias": m.bias,
        "words_utf8": words_utf8, "word_offsets": word_offsets, "counts": m.counts,
        "config": np.array(yaml.safe_dump(trainer.cfg.to_dict())),
        "corpus": np.array([str(Path(c).resolve()) for c in corpus]), "n_words": np.int64(trainer.dataset.n_words),
        "corpus_files": np.array(json.dumps(fingerprint if fingerprint is not None else corpus_fingerprint(corpus))),
        **trainer.state_arrays(),
    }
    write_arrays(path, arrays)


def write_arrays(path: Path, arrays: dict) -> None:
    """Write ``arrays`` as a checkpoint file: an uncompressed .npz whose comment is its checksum."""
    with atomic_open(path, "w+b") as fh:
        np.savez(fh, **arrays)
        _append_digest(fh)


def _append_digest(fh) -> None:
    """Give the zip just written (its end record last, with an empty comment) the comment
    _DIGEST_TAG + SHA-256 of everything before the comment."""
    fh.flush()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(size - 22)
    if fh.read(4) != b"PK\x05\x06":
        raise OutputError(f"{fh.name}: the zip numpy wrote does not end with its end record")
    fh.seek(size - 2)
    fh.write(struct.pack("<H", _TRAILER))
    fh.flush()
    fh.seek(0)
    digest = _sha256(fh, size)
    fh.seek(size)
    fh.write(_DIGEST_TAG + digest.encode())


def _sha256(fh, n: int) -> str:
    h = hashlib.sha256()
    while n > 0:
        chunk = fh.read(min(n, 1 << 22))
        if not chunk:
            break
        h.update(chunk)
        n -= len(chunk)
    return h.hexdigest()


def _digest_problem(fh, size: int) -> str | None:
    """None if the file ends with its digest and the digest matches; "none" when it has no digest
    (formats 1 and 2 had none); otherwise what is wrong."""
    if size < _TRAILER + 22:
        return "none"
    fh.seek(size - _TRAILER - 2)
    tail = fh.read(_TRAILER + 2)
    if tail[2:2 + len(_DIGEST_TAG)] != _DIGEST_TAG:
        return "none"
    if struct.unpack("<H", tail[:2])[0] != _TRAILER:
        return "its zip comment's length does not match its checksum"
    fh.seek(0)
    if _sha256(fh, size - _TRAILER).encode() != tail[2 + len(_DIGEST_TAG):]:
        return "its checksum does not match its bytes"
    return None


def load_checkpoint(path: Path) -> dict:
    """The arrays of a checkpoint, checked (``check_checkpoint``) before anyone uses them: a damaged
    file, or one that is not a w2v checkpoint, is a DamagedFileError naming the file and the fault.
    ``words`` is an object array of str, whichever format the file has."""
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
        problem = _digest_problem(fh, size)
        if problem not in (None, "none"):
            raise DamagedFileError(f"checkpoint {path} is damaged: {problem}")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as zf:
                data = {}
                for info in zf.infolist():
                    if not info.filename.endswith(".npy") or info.compress_type != zipfile.ZIP_STORED:
                        raise DamagedFileError(f"{path} is not a w2v checkpoint (it holds {info.filename!r})")
                    if info.file_size > size:
                        raise ValueError(f"{info.filename} claims {info.file_size} bytes in a file of {size}")
                    _check_local_header(fh, info)
                    with zf.open(info) as member:
                        data[info.filename[:-4]] = _read_npy(member, info.file_size, info.filename)
                if problem == "none" and "version" in data and data["version"].shape == () \
                        and data["version"].dtype.kind in "iu" and int(data["version"]) >= 3:
                    raise DamagedFileError(f"checkpoint {path} is damaged: its checksum is missing")
        except DamagedFileError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
                RuntimeError) as e:  # what zipfile and numpy's header parser raise on bad bytes
            raise DamagedFileError(f"checkpoint {path} is damaged or not a checkpoint "
                                   f"({type(e).__name__}: {str(e)[:200]})") from None
    return data


def _check_local_header(fh, info: zipfile.ZipInfo) -> None:
    """A member's local header says what the zip's directory says (zipfile reads the sizes from the
    directory only, so a damaged local header would go unseen). Sizes of 0xFFFFFFFF are in the
    header's zip64 field (numpy writes every member so)."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30:
        raise ValueError(f"{info.filename}: its local header is cut off")
    sig, _, flags, method, _, _, crc, csize, usize, name_len, extra_len = struct.unpack("<IHHHHHIIIHH", header)
    fh.seek(name_len, os.SEEK_CUR)
    extra = fh.read(extra_len)
    wide = []
    at = 0
    while at + 4 <= len(extra):
        tag, n = struct.unpack_from("<HH", extra, at)
        if tag == 1:
            wide = [v for (v,) in struct.iter_unpack("<Q", extra[at + 4:at + 4 + n - n % 8])]
        at += 4 + n
    if usize == 0xFFFFFFFF and wide:
        usize = wide.pop(0)
    if csize == 0xFFFFFFFF and wide:
        csize = wide.pop(0)
    if sig != 0x04034B50 or method != info.compress_type or (
            not flags & 0x08 and (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size)):
        raise ValueError(f"{info.filename}: its local header does not match the zip directory")


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
# V words, D dimensions, W workers, C corpus paths, E epochs logged, B bytes of the words
_CHECKPOINT_ARRAYS = {
    "emb_in": ("float32", "VD"), "emb_out": ("float32", "VD"), "bias": ("float32", "V"), "words_utf8": ("uint8", "B"),
    "counts": ("int64", "V"), "config": ("U", ""), "corpus": ("U", "C"), "n_words": ("int64", ""),
    "cursors": ("int64", "W4"), "epochs": ("int64", "W"), "rng_pairs": ("uint64", "W"), "rng_neg": ("uint64", "W"),
    "marks": ("int64", "W"), "totals": ("float64", "W4"), "words_done": ("int64", ""), "pairs": ("int64", ""),
    "seconds": ("float64", ""), "epoch_loss": ("float64", "E3"),
}
# older checkpoints lack them; without "spans" the workers' parts are pairs.worker_spans
_OPTIONAL_ARRAYS = {"corpus_files": ("U", ""), "spans": ("int64", "W2")}


def check_checkpoint(data: dict, path) -> None:
    """Arrays present, dtypes and shapes consistent with each other and with the config inside,
    every number finite, positions and counters in range. Raises DamagedFileError."""
    def damaged(what):
        return DamagedFileError(f"checkpoint {path} is damaged: {what}")

    version = data.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise DamagedFileError(f"{path} is not a w2v checkpoint (no format version)")
    if int(version) not in _READS:
        raise DamagedFileError(f"{path} was written by another w2v version (checkpoint format {int(version)}; "
                               f"this w2v reads formats {', '.join(map(str, _READS))})")
    spec = dict(_CHECKPOINT_ARRAYS)
    if int(version) == 1:  # the words as a fixed-width str array
        del spec["words_utf8"]
        spec["words"] = ("U", "V")
    sizes: dict[str, int] = {}
    for key, (dtype, dims) in {**spec, **_OPTIONAL_ARRAYS}.items():
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
    if int(version) == 1:
        words = data["words"].tolist()
    else:
        offsets = data.get("word_offsets")
        if not isinstance(offsets, np.ndarray) or offsets.dtype != np.int64 or offsets.shape != (sizes["V"] + 1,):
            raise damaged("'word_offsets' is missing or does not fit the other arrays")
        words = unpack_words(data["words_utf8"], offsets)
        if words is None:
            raise damaged("its words are not UTF-8 text at the offsets it gives")
    if len(set(words)) != len(words) or any(w.split() != [w] for w in words):
        raise damaged("its vocabulary has an empty or repeated word, or one with white space")
    data["words"] = np.array(words, dtype=object)
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


def check_workers(st: dict, spans: list[tuple[int, int]], cfg: Config) -> list[tuple[int, int]]:
    """The kernels' boundary for loaded worker state (a checkpoint's, or a Ray actor's last sync):
    the same number of workers, each position inside its part of this corpus. ``spans``: the
    workers' parts as a fresh run splits this corpus; the state's own parts (its "spans": a worker
    may have taken over part of another's; states written before them have none) must lie within
    the corpus. Returns the parts the workers train from now on. Raises TrainingError."""
    cursors = st.get("cursors")
    if isinstance(cursors, np.ndarray) and cursors.ndim == 2 and len(cursors) != len(spans):
        raise TrainingError(f"the checkpoint has {len(cursors)} workers, this run {len(spans)}: "
                            "re-split them first (checkpoint.resplit_workers)")
    problem = _worker_state_problem(st, len(spans), cfg.epochs)
    own = st.get("spans")
    if problem is None and own is not None:
        low, high = spans[0][0], spans[-1][1]
        if not isinstance(own, np.ndarray) or own.dtype != np.int64 or own.shape != (len(spans), 2):
            problem = f"'spans' has the wrong type or shape for {len(spans)} worker(s)"
        elif (own[:, 0] < low).any() or (own[:, 0] > own[:, 1]).any() or (own[:, 1] > high).any():
            problem = f"a worker's part lies outside [{low}, {high}]"
        else:
            spans = [(int(a), int(b)) for a, b in own]
    if problem is None:
        for i, (start, end) in enumerate(spans):
            if not start <= int(cursors[i, 0]) <= end:
                problem = f"worker {i + 1}'s position {int(cursors[i, 0])} lies outside its part [{start}, {end}]"
    if problem:
        raise TrainingError(f"the checkpoint's training state does not fit this corpus: {problem}")
    return spans


def resplit_workers(st: dict, spans: list[tuple[int, int]], n_words: int, cfg: Config) -> dict:
    """A checkpoint's worker state (``spans``, ``cursors``, ``epochs``, ``rng_pairs``, ``rng_neg``,
    ``marks``, ``totals``) for ``len(spans)`` workers instead of the number that wrote it (``w2v train --resume
    DIR --workers N``): the rest of the run re-split.

    The words done (which drive the learning rate and are kept) are a fraction of the epochs; each
    new worker starts that fraction into its span of the epoch they are in, so the words still to
    read are those of an unchanged run, up to rounding at the piece where each worker starts. The
    random streams are new ones, derived from the seed and the old streams (a resumed run repeats
    bit for bit only with its own worker count). Per-worker loss totals are summed into the first.
    """
    words_done, n = int(st["words_done"]), max(1, int(n_words))
    epoch, within = divmod(words_done, n)
    if epoch >= cfg.epochs:
        epoch, within = cfg.epochs, 0
    frac = within / n
    cursors = np.stack([new_cursor(start + int(round(frac * (end - start)))) for start, end in spans])
    salt = cfg.seed
    for state in (*st["rng_pairs"].tolist(), *st["rng_neg"].tolist()):
        salt = _mix(salt ^ int(state))
    totals = np.zeros((len(spans), 4), np.float64)
    totals[0] = st["totals"].sum(axis=0)
    return {"spans": np.array(spans, np.int64).reshape(-1, 2), "cursors": cursors,
            "epochs": np.full(len(spans), epoch, np.int64),
            "rng_pairs": np.concatenate([make_state(salt, i, PAIRS) for i in range(len(spans))]),
            "rng_neg": np.concatenate([make_state(salt, i, NEGATIVES) for i in range(len(spans))]),
            "marks": np.zeros(len(spans), np.int64), "totals": totals}


def check_progress(st: dict, cfg: Config) -> None:
    """A loaded run's loss records fit its epochs. Raises TrainingError."""
    problem = _loss_records_problem(st, cfg.epochs)
    if problem:
        raise TrainingError(f"the checkpoint's training state does not fit this corpus: {problem}")


def check_model(model, vocab_size: int, dim: int) -> None:
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


def check_corpus_unchanged(ck: dict, corpus: list[str], out: Path, log) -> list[dict]:
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


def check_corpus_vocab(corpus, words: Sequence[str], n_words: int, ck: dict) -> None:
    """The corpus encoded now gives the checkpoint's vocabulary and word count."""
    if words != ck["words"].tolist() or n_words != int(ck["n_words"]):
        raise TrainingError(f"the corpus {' '.join(corpus)} changed since the checkpoint; it cannot be resumed")
