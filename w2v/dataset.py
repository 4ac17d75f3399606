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
from .corpus import CorpusError, ReadStats, corpus_files, iter_segments
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
