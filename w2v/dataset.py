"""The corpus encoded once: vocabulary plus an int32 id stream, cached on disk.

Stream layout: in-vocabulary tokens as ids in corpus order, ``-1`` after each sentence (line).
Out-of-vocabulary tokens are dropped before windowing, as word2vec.c does. The cache is keyed by
the files' paths, sizes and mtimes and the settings that change the ids, so later runs skip both
the counting and the encoding pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .corpus import CorpusError, ReadStats, corpus_files, iter_range_segments, iter_segments
from .vocab import Vocab, build_vocab, count_words

SENTENCE_END = -1
_OOV = -2
_FORMAT = 1  # bump when the cached layout changes


@dataclass
class Dataset:
    vocab: Vocab
    ids: np.ndarray  # int32 stream, SENTENCE_END between sentences
    n_words: int  # in-vocabulary tokens in the stream (what the learning-rate schedule counts)
    stats: dict  # what counting saw: tokens read, distinct words, dropped, invalid UTF-8...
    cache_path: Path | None = None


def cache_key(cfg: Config, files: list[Path]) -> str:
    ident = {
        "format": _FORMAT,
        "files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
        "lowercase": cfg.lowercase, "min_count": cfg.min_count, "max_vocab_size": cfg.max_vocab_size,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def prepare(paths, cfg: Config, log=lambda msg: None) -> Dataset:
    """Count, build the vocabulary and encode the corpus, or load all three from the cache."""
    files = corpus_files(paths)
    cache_root = Path(os.path.expanduser(cfg.cache_dir)) if cfg.cache_dir else None
    if cache_root is not None:
        cached = cache_root / cache_key(cfg, files)
        if (cached / "meta.json").exists():
            try:
                return _load_cached(cached)
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is rebuilt below
    log(f"counting words in {len(files)} file(s)")
    counts, cstats = count_words(files, cfg.lowercase, cfg.chunk_bytes, cfg.max_vocab_size)
    if cstats.read.tokens == 0:
        raise CorpusError(f"the corpus is empty (no tokens in {cstats.read.files} file(s), "
                          f"{cstats.read.bytes} bytes)")
    vocab = build_vocab(counts, cfg.min_count, cfg.max_vocab_size)
    cstats.distinct = len(counts)
    cstats.max_count = max(counts.values())
    if not len(vocab):
        raise CorpusError(
            f"no word reaches min_count={cfg.min_count}: the corpus has {cstats.distinct} distinct "
            f"words and the most frequent appears {cstats.max_count} times")
    cstats.dropped_words = cstats.distinct - len(vocab)
    cstats.dropped_tokens = cstats.read.tokens - int(vocab.counts.sum())
    del counts
    stats = {**{k: v for k, v in asdict(cstats).items() if k != "read"}, **asdict(cstats.read)}
    log(f"vocabulary: {len(vocab)} words; encoding the corpus")
    if cache_root is None:
        ids = np.concatenate(list(_encode(files, vocab, cfg)) or [np.zeros(0, np.int32)])
        return Dataset(vocab, ids, int((ids >= 0).sum()), stats)
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_root))
    try:
        n_words = 0
        with open(tmp / "ids.int32", "wb") as fh:
            for block in _encode(files, vocab, cfg):
                n_words += int((block >= 0).sum())
                fh.write(block.tobytes())
        vocab.save(tmp / "vocab.txt")
        (tmp / "meta.json").write_text(json.dumps({"n_words": n_words, "stats": stats}))
        try:
            os.replace(tmp, cached)
        except OSError:  # another run filled it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _load_cached(cached)


def _load_cached(path: Path) -> Dataset:
    meta = json.loads((path / "meta.json").read_text())
    vocab = Vocab.load(path / "vocab.txt")
    size = (path / "ids.int32").stat().st_size
    ids = (np.memmap(path / "ids.int32", dtype=np.int32, mode="r") if size
           else np.zeros(0, np.int32))
    return Dataset(vocab, ids, meta["n_words"], meta["stats"], path)


def _encode(files, vocab: Vocab, cfg: Config, block_tokens: int = 1 << 20):
    """Yield int32 blocks of the id stream (OOV dropped, SENTENCE_END after each line)."""
    get = vocab.index.get
    buf: list[int] = []
    for tokens, ends_sentence in iter_segments(files, cfg.lowercase, cfg.chunk_bytes, ReadStats()):
        buf.extend([get(w, _OOV) for w in tokens])
        if ends_sentence:
            buf.append(SENTENCE_END)
        if len(buf) >= block_tokens:
            yield _pack(buf)
            buf = []
    if buf:
        yield _pack(buf)


def _pack(buf: list[int]) -> np.ndarray:
    arr = np.array(buf, dtype=np.int32)
    return arr[arr != _OOV]


# The Ray backend: the driver counts the corpus in tasks over byte ranges (w2v.distributed) and
# builds the vocabulary here; every actor encodes its own share of the files and caches it on its
# node, so nothing ships the corpus through the driver.

def vocab_from_counts(counts, cstats, cfg: Config) -> tuple[Vocab, dict]:
    """The vocabulary of merged counts and the statistics ``prepare`` reports, with its checks."""
    if cstats.read.tokens == 0:
        raise CorpusError(f"the corpus is empty (no tokens in {cstats.read.files} file(s), "
                          f"{cstats.read.bytes} bytes)")
    vocab = build_vocab(counts, cfg.min_count, cfg.max_vocab_size)
    cstats.distinct = len(counts)
    cstats.max_count = max(counts.values())
    if not len(vocab):
        raise CorpusError(
            f"no word reaches min_count={cfg.min_count}: the corpus has {cstats.distinct} distinct "
            f"words and the most frequent appears {cstats.max_count} times")
    cstats.dropped_words = cstats.distinct - len(vocab)
    cstats.dropped_tokens = cstats.read.tokens - int(vocab.counts.sum())
    return vocab, {**{k: v for k, v in asdict(cstats).items() if k != "read"}, **asdict(cstats.read)}


def counted_vocab(paths, cfg: Config, count, log=lambda msg: None) -> tuple[Vocab, dict]:
    """The vocabulary of a corpus and its counting statistics, from the cache or from ``count()``
    (which returns merged counts and their CountStats)."""
    files = corpus_files(paths)
    cache_root = Path(os.path.expanduser(cfg.cache_dir)) if cfg.cache_dir else None
    entry = cache_root / f"{cache_key(cfg, files)}.vocab" if cache_root is not None else None
    if entry is not None and (entry / "meta.json").exists():
        try:
            return Vocab.load(entry / "vocab.txt"), json.loads((entry / "meta.json").read_text())["stats"]
        except (OSError, ValueError, KeyError, CorpusError):
            pass  # rebuilt below
    log(f"counting words in {len(files)} file(s)")
    vocab, stats = vocab_from_counts(*count(), cfg)
    if entry is not None:
        _write_entry(cache_root, entry, lambda tmp: (vocab.save(tmp / "vocab.txt"),
                                                      (tmp / "meta.json").write_text(json.dumps({"stats": stats}))))
    return vocab, stats


def shard_dataset(ranges, vocab: Vocab, cfg: Config) -> Dataset:
    """One share of a corpus (byte ranges of its files) encoded with the run's vocabulary, cached
    like a whole corpus; ``stats`` holds the share's ``n_ids``."""
    cache_root = Path(os.path.expanduser(cfg.cache_dir)) if cfg.cache_dir else None
    if cache_root is None:
        ids = np.concatenate(list(_encode_ranges(ranges, vocab, cfg)) or [np.zeros(0, np.int32)])
        return Dataset(vocab, ids, int((ids >= 0).sum()), {"n_ids": len(ids)})
    entry = cache_root / _shard_key(ranges, vocab, cfg)
    if not (entry / "meta.json").exists():
        def fill(tmp: Path):
            n_words = n_ids = 0
            with open(tmp / "ids.int32", "wb") as fh:
                for block in _encode_ranges(ranges, vocab, cfg):
                    n_words += int((block >= 0).sum())
                    n_ids += len(block)
                    fh.write(block.tobytes())
            (tmp / "meta.json").write_text(json.dumps({"n_words": n_words, "n_ids": n_ids}))
        _write_entry(cache_root, entry, fill)
    meta = json.loads((entry / "meta.json").read_text())
    if (entry / "ids.int32").stat().st_size != 4 * meta["n_ids"]:
        raise CorpusError(f"the cached shard {entry} is damaged: delete it and run again")
    ids = np.memmap(entry / "ids.int32", dtype=np.int32, mode="r") if meta["n_ids"] else np.zeros(0, np.int32)
    return Dataset(vocab, ids, meta["n_words"], {"n_ids": meta["n_ids"]}, entry)


def _shard_key(ranges, vocab: Vocab, cfg: Config) -> str:
    digest = hashlib.sha256()
    for word, count in zip(vocab.words, vocab.counts.tolist(), strict=True):
        digest.update(f"{word} {count}\n".encode())
    ident = {"format": _FORMAT, "lowercase": cfg.lowercase, "vocab": digest.hexdigest(),
             "ranges": [[str(Path(r.path).resolve()), Path(r.path).stat().st_size, Path(r.path).stat().st_mtime_ns,
                         r.start, r.end] for r in ranges]}
    return "shard-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _write_entry(cache_root: Path, entry: Path, fill) -> None:
    """Fill a temporary directory, then rename it to ``entry`` (another run may win the race)."""
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_root))
    try:
        fill(tmp)
        try:
            os.replace(tmp, entry)
        except OSError:  # another run filled it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _encode_ranges(ranges, vocab: Vocab, cfg: Config, block_tokens: int = 1 << 20):
    """``_encode`` over byte ranges."""
    get = vocab.index.get
    buf: list[int] = []
    for tokens, ends_sentence in iter_range_segments(ranges, cfg.lowercase, cfg.chunk_bytes, ReadStats()):
        buf.extend([get(w, _OOV) for w in tokens])
        if ends_sentence:
            buf.append(SENTENCE_END)
        if len(buf) >= block_tokens:
            yield _pack(buf)
            buf = []
    if buf:
        yield _pack(buf)
