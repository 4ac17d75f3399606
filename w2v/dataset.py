"""The corpus encoded once: vocabulary plus an int32 id stream, cached on disk.

Stream layout: in-vocabulary tokens as ids in corpus order, ``-1`` after each sentence (line).
Out-of-vocabulary tokens are dropped before windowing, as word2vec.c does. The cache is keyed by
the files' paths, sizes and mtimes and the settings that change the ids, so later runs skip both
the counting and the encoding pass. A cache entry is checked before it is used (sizes against its
meta.json, CRC-32 checksums, every id in [0, V) or -1); a damaged one is reported and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .corpus import CorpusError, ReadStats, corpus_files, iter_segments
from .errors import ResourceError
from .io import check_free_space
from .tokenize import Tokens, count_pruned, encode_counted, tokenize
from .vocab import MAX_WORD_BYTES, CountStats, Vocab, build_vocab, table_cap

SENTENCE_END = -1
_OOV = -2
_FORMAT = 6  # bump when the cached layout changes (3: the Numba tokenizer, the tokenize key; 4: tokens
#              over 100 bytes left out of the vocabulary; 5: meta.json's own checksum; 6: max_vocab_size
#              prunes token by token, as word2vec.c does)
_SCAN_IDS = 1 << 22  # ids per block when checking a stream (16 MiB of int32)


@dataclass
class Dataset:
    vocab: Vocab
    ids: np.ndarray  # int32 stream, SENTENCE_END between sentences
    n_words: int  # in-vocabulary tokens in the stream (what the learning-rate schedule counts)
    stats: dict  # what counting saw: tokens read, distinct words, dropped, invalid UTF-8...
    cache_path: Path | None = None

    @property
    def mapped(self) -> bool:
        """The ids are a file's memory map (read from disk, pages let go behind the workers)."""
        return isinstance(self.ids, np.memmap)


def cache_key(cfg: Config, files: list[Path]) -> str:
    ident = {
        "format": _FORMAT,
        "files": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
        "lowercase": cfg.lowercase, "min_count": cfg.min_count, "max_vocab_size": cfg.max_vocab_size,
        "tokenize": cfg.tokenize,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def prepare(paths, cfg: Config, log=lambda msg: None) -> Dataset:
    """Count, build the vocabulary and encode the corpus, or load all three from the cache. A
    corpus file that changes meanwhile (size or mtime: appended to, rewritten) is a CorpusError:
    the counts and the id stream would come from different texts."""
    files = corpus_files(paths)
    before = _file_stats(files)
    dataset = _prepare(files, cfg, log)
    for f, was, now in zip(files, before, _file_stats(files), strict=True):
        if was != now:
            if dataset.cache_path is not None:
                _discard(dataset.cache_path)
            grew = f"{was[0]:,} bytes, then {now[0]:,}" if was[0] != now[0] else "its mtime changed"
            raise CorpusError(f"{f} changed while it was read ({grew}): train on a copy that nothing writes to, "
                              "or once it is complete")
    return dataset


def _cache_root(cfg: Config) -> Path | None:
    """The corpus cache's directory, None with --no-cache."""
    return Path(os.path.expanduser(cfg.cache_dir)) if cfg.cache_dir else None


def cached_entry(files: list[Path], cfg: Config) -> Path | None:
    """The corpus cache's entry for ``files`` (from ``corpus_files``) if there is one (unchecked)."""
    root = _cache_root(cfg)
    entry = root / cache_key(cfg, files) if root is not None else None
    return entry if entry is not None and entry.exists() else None


def _file_stats(files) -> list[tuple[int, int]]:
    stats = []
    for f in files:
        try:
            st = os.stat(f)
            stats.append((st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((-1, -1))
    return stats


def _prepare(files: list[Path], cfg: Config, log) -> Dataset:
    cache_root = _cache_root(cfg)
    if cache_root is not None:
        cached = cache_root / cache_key(cfg, files)
        if cached.exists():
            try:
                return _load_cached(cached)
            except DamagedCache as e:
                log(f"warning: the corpus cache {cached} is damaged ({e}); rebuilding it")
                _discard(cached)
        cache_root = _writable_cache_root(cache_root, log)

    def count(spill_dir):
        log(f"counting words in {len(files)} file(s)")
        return _counted(files, cfg, spill_dir, log)

    if cache_root is not None:
        # the entry is filled in a locked temporary directory: the tokenizer's spilled ids first,
        # then ids.int32 written from them block by block, then the rename into place
        lock = None
        try:
            tmp, lock = _new_tmp_dir(cache_root)
            try:
                vocab, stats, blocks = count(tmp)
                need = _ids_bytes(vocab, stats)
                check_free_space(cache_root, need, {"corpus cache": need},
                                 " (--no-cache writes the encoded corpus to the temporary directory instead)")
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return _fill_cache(cached, tmp, vocab, stats, blocks)
        except OSError as e:
            log(f"warning: cannot write the corpus cache in {cache_root} ({e.strerror or e}); "
                "encoding the corpus in a temporary file")
        finally:
            _release(lock)
    return _uncached(count, log)


def _counted(files, cfg: Config, spill_dir: Path | None, log) -> tuple[Vocab, dict, object]:
    """The vocabulary, the counting statistics and the id stream to come (int32 blocks), from
    one read of the corpus: the Numba tokenizer spills its ids to ``spill_dir`` (in memory when
    None) and maps them to the vocabulary's as they are read back."""
    if cfg.max_vocab_size:  # pruning while counting: two passes, as word2vec.c reads the file twice
        counted = count_pruned(files, table_cap(cfg.max_vocab_size), cfg.lowercase, cfg.tokenize, cfg.chunk_bytes)
        vocab, stats, mapping = vocab_from_tokens(counted, cfg)
        tokens = encode_counted(counted, files, cfg.lowercase, cfg.tokenize, cfg.chunk_bytes, _threads(cfg),
                                spill_dir=spill_dir)
        blocks = tokens.iter_ids(mapping)
    else:
        tokens = tokenize(files, cfg.lowercase, cfg.tokenize, cfg.chunk_bytes, _threads(cfg), spill_dir=spill_dir)
        vocab, stats, mapping = vocab_from_tokens(tokens, cfg)
        blocks = tokens.iter_ids(mapping)
    log(f"vocabulary: {len(vocab):,} words; encoding the corpus")
    return vocab, stats, blocks


def _ids_bytes(vocab: Vocab, stats: dict) -> int:
    # ids of the in-vocabulary tokens (counts may be a little low after pruning) and sentence ends
    return 4 * (int(vocab.counts.sum()) + stats.get("lines", 0)) + 16 * len(vocab)


def _uncached(count, log) -> Dataset:
    """A Dataset whose id stream is a temporary file (removed at once, its memory map readable
    until it is let go: the page cache holds it, not this process); in memory when no temporary
    file can be written. ``count(spill_dir)`` returns (vocab, stats, blocks)."""
    try:
        work = Path(tempfile.mkdtemp(prefix="w2v-corpus-"))
    except OSError as e:
        log(f"warning: cannot create a temporary directory ({e.strerror or e}); encoding the corpus in memory")
    else:
        try:
            vocab, stats, blocks = count(work)
            need = _ids_bytes(vocab, stats)
            check_free_space(work, need, {"encoded corpus": need})
            n_ids, n_words, _ = _write_ids(work / "ids.int32", blocks)
            ids = np.memmap(work / "ids.int32", dtype=np.int32, mode="r") if n_ids else np.zeros(0, np.int32)
            return Dataset(vocab, ids, n_words, stats)
        except (OSError, ResourceError) as e:
            log(f"warning: cannot write the encoded corpus in {work.parent} ({getattr(e, 'strerror', None) or e}); "
                "encoding it in memory")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    vocab, stats, blocks = count(None)
    return _in_memory(blocks, vocab, stats)


def _write_ids(path: Path, blocks) -> tuple[int, int, int]:
    """Write the id stream's blocks to ``path``: (ids, in-vocabulary ids, CRC-32 of the bytes)."""
    n_words, n_ids, crc = 0, 0, 0
    with open(path, "wb") as fh:
        for block in blocks:
            n_words += int(np.count_nonzero(block >= 0))
            n_ids += len(block)
            crc = zlib.crc32(block, crc)
            fh.write(block)
    return n_ids, n_words, crc


def _threads(cfg: Config) -> int:
    return max(1, min(cfg.resolved_workers(), os.cpu_count() or 1))


def encode(corpus, vocab: Vocab, cfg: Config, log=lambda msg: None) -> Dataset:
    """The corpus (files, .gz files, directories) as the id stream of a given vocabulary, not
    cached (a continued run's merged vocabulary, a resumed continued run): in a temporary file."""
    files = corpus_files(corpus)

    def count(spill_dir):
        tokens = tokenize(files, cfg.lowercase, cfg.tokenize, cfg.chunk_bytes, _threads(cfg), spill_dir=spill_dir)
        return vocab, {}, tokens.iter_ids(_vocab_mapping(tokens, vocab))

    return _uncached(count, log)


def _vocab_mapping(tokens: Tokens, vocab: Vocab) -> np.ndarray:
    """Each tokenised word's id in ``vocab`` (_OOV if not in it): one dict look-up per distinct word."""
    get = vocab.lookup().get
    return np.array([get(w, _OOV) for w in tokens.words()], dtype=np.int32).reshape(-1)


def vocab_from_tokens(tokens: Tokens, cfg: Config) -> tuple[Vocab, dict, np.ndarray]:
    """``vocab_from_counts`` for the Numba tokenizer's counts (ids in order of first appearance,
    as a Counter's), plus each word's id in the vocabulary (_OOV for a dropped word); only the
    kept words become Python strings."""
    counts = tokens.counts
    cstats = CountStats(read=tokens.stats, pruned_below=tokens.pruned_below)
    _refuse_empty(cstats)
    long = tokens.word_bytes() > MAX_WORD_BYTES  # left out, like rare words (vocab.MAX_WORD_BYTES)
    cstats.long_words, cstats.long_tokens = int(long.sum()), int(counts[long].sum())
    kept = np.flatnonzero((counts >= cfg.min_count) & ~long)
    order = kept[np.argsort(-counts[kept], kind="stable")]  # ties: first appearance
    if cfg.max_vocab_size:
        order = order[:cfg.max_vocab_size]
    _refuse_no_word(cstats, cfg, len(counts), int(counts.max()), len(order))
    vocab = Vocab(tokens.words(order.tolist()), counts[order])
    mapping = np.full(len(counts), _OOV, dtype=np.int32)
    mapping[order] = np.arange(len(order), dtype=np.int32)
    return vocab, _vocab_stats(cstats, vocab), mapping


def _in_memory(blocks, vocab: Vocab, stats: dict) -> Dataset:
    blocks = list(blocks)
    ids = np.empty(sum(len(b) for b in blocks), dtype=np.int32)
    at = 0
    blocks.reverse()
    while blocks:  # each block let go once copied: the stream is held about once, not twice
        block = blocks.pop()
        ids[at:at + len(block)] = block
        at += len(block)
    return Dataset(vocab, ids, int((ids >= 0).sum()), stats)


def _writable_cache_root(cache_root: Path, log) -> Path | None:
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        log(f"warning: cannot create the corpus cache directory {cache_root} ({e.strerror or e}); "
            "encoding the corpus in memory")
        return None
    return cache_root


# A cache entry is filled in a temporary directory (.tmp-XXXXXXXX) its writer holds an flock on;
# one that nobody holds and that is older than this many seconds was left by a killed run.
_STALE_TMP_SECONDS = 60


def _new_tmp_dir(parent: Path) -> tuple[Path, int | None]:
    """A temporary directory for a cache entry, locked while it is filled; first, those killed runs
    left behind go (another run's, still being filled, is locked: it stays)."""
    _remove_stale_tmp_dirs(parent)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
    return tmp, _lock_dir(tmp)


def _lock_dir(path: Path) -> int | None:
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks; stale directories go by age alone
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return -1  # held by another process
    return fd


def _release(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        os.close(fd)


def _remove_stale_tmp_dirs(parent: Path) -> None:
    import time

    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(".tmp-")]
    except OSError:
        return
    for p in candidates:
        try:
            if not p.is_dir() or time.time() - p.stat().st_mtime < _STALE_TMP_SECONDS:
                continue
        except OSError:
            continue
        fd = _lock_dir(p)
        if fd == -1:
            continue  # a run is filling it
        try:
            shutil.rmtree(p, ignore_errors=True)
        finally:
            _release(fd)


def _fill_cache(cached: Path, tmp: Path, vocab: Vocab, stats: dict, blocks) -> Dataset:
    """Write the id stream (``blocks``) and the vocabulary into ``tmp`` (a locked temporary
    directory beside ``cached``), then rename it into place."""
    try:
        n_ids, n_words, crc = _write_ids(tmp / "ids.int32", blocks)
        vocab.save(tmp / "vocab.txt")
        meta = {"format": _FORMAT, "n_ids": n_ids, "n_words": n_words, "vocab_size": len(vocab),
                "ids_crc32": crc, "vocab_crc32": zlib.crc32((tmp / "vocab.txt").read_bytes()), "stats": stats}
        (tmp / "meta.json").write_text(json.dumps(_sealed(meta)))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, cached)
    except OSError:  # another run filled it meanwhile, or a damaged entry could not be removed
        try:
            return _load_cached(cached)
        except DamagedCache:
            # ours is good: on POSIX its memory map stays readable after the files are removed
            return _load_cached(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _load_cached(cached)


def _sealed(meta: dict) -> dict:
    """``meta`` with ``meta_crc32``: the CRC-32 of its canonical JSON, so a changed byte of
    meta.json (its statistics included, loaded as they are) is caught like one of the ids."""
    return {**meta, "meta_crc32": zlib.crc32(json.dumps(meta, sort_keys=True).encode())}


def _unsealed(meta) -> dict | None:
    """``meta`` without its checksum, or None when it has none or it does not match."""
    if not isinstance(meta, dict) or type(meta.get("meta_crc32")) is not int:
        return None
    rest = {k: v for k, v in meta.items() if k != "meta_crc32"}
    return rest if zlib.crc32(json.dumps(rest, sort_keys=True).encode()) == meta["meta_crc32"] else None


class DamagedCache(CorpusError):
    """A cache entry that fails its checks; ``prepare`` rebuilds it."""


def _discard(path: Path) -> None:
    """Remove a damaged entry: renamed aside first, so no other run loads it meanwhile."""
    aside = path.with_name(f".damaged-{path.name}-{os.getpid()}")
    try:
        os.replace(path, aside)
    except OSError:
        return  # removed by another run already, or not ours to remove: the rebuild copes
    shutil.rmtree(aside, ignore_errors=True)


def _load_cached(path: Path) -> Dataset:
    try:
        meta = json.loads((path / "meta.json").read_bytes())
        vocab_bytes = (path / "vocab.txt").read_bytes()
        size = (path / "ids.int32").stat().st_size
    except (OSError, ValueError) as e:  # missing, unreadable, not JSON
        raise DamagedCache(f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from None
    if isinstance(meta, dict) and meta.get("format") != _FORMAT and type(meta.get("format")) is int:
        raise DamagedCache(f"cache format {meta['format']}, this w2v writes {_FORMAT}")
    meta = _unsealed(meta)
    if meta is None:
        raise DamagedCache("meta.json does not match its checksum")
    ints = ("format", "n_ids", "n_words", "vocab_size", "ids_crc32", "vocab_crc32")
    if not isinstance(meta, dict) or not all(type(meta.get(k)) is int for k in ints) \
            or not isinstance(meta.get("stats"), dict):
        raise DamagedCache("meta.json lacks the fields of this w2v's cache")
    if meta["format"] != _FORMAT:
        raise DamagedCache(f"cache format {meta['format']}, this w2v writes {_FORMAT}")
    if zlib.crc32(vocab_bytes) != meta["vocab_crc32"]:
        raise DamagedCache("vocab.txt does not match its checksum")
    try:
        vocab = Vocab.load(path / "vocab.txt")
    except (OSError, ValueError) as e:
        raise DamagedCache(str(e)) from None
    if len(vocab) != meta["vocab_size"] or not len(vocab):
        raise DamagedCache(f"vocab.txt has {len(vocab)} words, meta.json says {meta['vocab_size']}")
    if size != 4 * meta["n_ids"]:
        raise DamagedCache(f"ids.int32 has {size} bytes, meta.json says {meta['n_ids']} ids")
    try:
        ids = np.memmap(path / "ids.int32", dtype=np.int32, mode="r") if size else np.zeros(0, np.int32)
    except (OSError, ValueError) as e:
        raise DamagedCache(f"ids.int32: {getattr(e, 'strerror', None) or e}") from None
    crc, lo, hi = scan_ids(ids)
    if crc != meta["ids_crc32"]:
        raise DamagedCache("ids.int32 does not match its checksum")
    if lo < SENTENCE_END or hi >= len(vocab):
        raise DamagedCache(f"ids.int32 holds id {lo if lo < SENTENCE_END else hi} outside the vocabulary "
                           f"of {len(vocab)} words")
    if not 0 <= meta["n_words"] <= meta["n_ids"]:
        raise DamagedCache(f"meta.json says {meta['n_words']} words in {meta['n_ids']} ids")
    try:
        check_counts(vocab)
    except CorpusError as e:
        raise DamagedCache(str(e)) from None
    return Dataset(vocab, ids, meta["n_words"], meta["stats"], path)


def scan_ids(ids: np.ndarray) -> tuple[int, int, int]:
    """CRC-32 of the stream's bytes, its smallest and its largest id: one pass in blocks, so a
    stream of any length needs no temporary of its size, and the pages of a memory-mapped one are
    let go behind the scan (resident memory does not grow by the corpus before training)."""
    crc, lo, hi = 0, 0, -1
    for start in range(0, len(ids), _SCAN_IDS):
        block = np.ascontiguousarray(ids[start:start + _SCAN_IDS])
        crc = zlib.crc32(block, crc)
        lo, hi = min(lo, int(block.min())), max(hi, int(block.max()))
        drop_pages(ids, start, start + len(block))
    return crc, lo, hi


def drop_pages(ids: np.ndarray, start: int, stop: int) -> None:
    """MADV_DONTNEED on the whole pages of ids[start:stop] when ``ids`` is a file's memory map
    (clean, file-backed pages: read again from the page cache when needed)."""
    mm = getattr(ids, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or getattr(ids, "offset", None) != 0 or ids.base is not mm:
        return
    page = mmap.PAGESIZE
    lo = -(-start * ids.itemsize // page) * page
    hi = stop * ids.itemsize // page * page
    if hi > lo:
        try:
            mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):
            pass


def check_counts(vocab: Vocab) -> None:
    counts = vocab.counts
    if counts.ndim != 1 or len(counts) != len(vocab.words):
        raise CorpusError(f"the vocabulary has {len(vocab.words)} words but {counts.size} counts")
    if len(counts) and (counts.min() < 1 or (np.diff(counts) > 0).any()):
        raise CorpusError("vocabulary counts must be positive and sorted in descending order")


def check_dataset(dataset: Dataset) -> None:
    """What the kernels index with, checked at their boundary (they do no bounds checks): every
    id in [0, V) or SENTENCE_END, counts positive and non-increasing, one count per word."""
    vocab_size = len(dataset.vocab)
    if vocab_size < 1:
        raise CorpusError("the vocabulary is empty")
    check_counts(dataset.vocab)
    ids = dataset.ids
    if not isinstance(ids, np.ndarray) or ids.dtype != np.int32 or ids.ndim != 1:
        raise CorpusError(f"the encoded corpus must be a 1-D int32 array, got {getattr(ids, 'dtype', type(ids))}")
    _, lo, hi = scan_ids(ids)
    if lo < SENTENCE_END or hi >= vocab_size:
        raise CorpusError(f"the encoded corpus holds id {lo if lo < SENTENCE_END else hi} outside the vocabulary "
                          f"of {vocab_size} words")


def _encode(files, vocab: Vocab, cfg: Config, block_tokens: int = 1 << 20):
    """Yield int32 blocks of the id stream (OOV dropped, SENTENCE_END after each line): the Python
    path (corpus.iter_segments), the reference of the Numba tokenizer."""
    return _encode_segments(iter_segments(files, cfg.lowercase, cfg.chunk_bytes, ReadStats(), cfg.tokenize), vocab,
                            block_tokens)


def _encode_segments(segments, vocab: Vocab, block_tokens: int = 1 << 20):
    get = vocab.lookup().get
    buf: list[int] = []
    for tokens, ends_sentence in segments:
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
    """The vocabulary of counts (one pass's, or byte ranges' merged) and the statistics ``prepare``
    reports; an empty corpus, or one where no word reaches min_count, is a CorpusError."""
    _refuse_empty(cstats)
    vocab = build_vocab(counts, cfg.min_count, cfg.max_vocab_size)
    _refuse_no_word(cstats, cfg, len(counts), max(counts.values()), len(vocab))
    return vocab, _vocab_stats(cstats, vocab)


def _refuse_empty(cstats) -> None:
    if cstats.read.tokens == 0:
        raise CorpusError(f"the corpus is empty (no tokens in {cstats.read.files} file(s), "
                          f"{cstats.read.bytes} bytes)")


def _refuse_no_word(cstats, cfg: Config, distinct: int, max_count: int, kept: int) -> None:
    """Record the counts' size and top; no word kept is a CorpusError that gives both."""
    cstats.distinct, cstats.max_count = distinct, max_count
    if not kept:
        raise CorpusError(
            f"no word reaches min_count={cfg.min_count}: the corpus has {distinct} distinct "
            f"words and the most frequent appears {max_count} times")


def _vocab_stats(cstats, vocab: Vocab) -> dict:
    """What ``prepare`` reports of the counting pass (one flat dict, the read statistics included)."""
    cstats.dropped_words = cstats.distinct - len(vocab)
    cstats.dropped_tokens = cstats.read.tokens - int(vocab.counts.sum())
    return {**{k: v for k, v in asdict(cstats).items() if k != "read"}, **asdict(cstats.read)}


def counted_vocab(paths, cfg: Config, count, log=lambda msg: None) -> tuple[Vocab, dict]:
    """The vocabulary of a corpus and its counting statistics, from the cache or from ``count()``
    (which returns merged counts and their CountStats)."""
    files = corpus_files(paths)
    cache_root = _cache_root(cfg)
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


def shard_dataset(ranges, vocab: Vocab, cfg: Config, log=lambda msg: None) -> Dataset:
    """One share of a corpus (byte ranges of its files) encoded with the run's vocabulary, cached
    like a whole corpus (its ids checked against their CRC-32 and the vocabulary when loaded; a
    damaged entry is rebuilt once); ``stats`` holds the share's ``n_ids``."""
    cache_root = _cache_root(cfg)

    def count(spill_dir):
        tokens = tokenize(None, cfg.lowercase, cfg.tokenize, cfg.chunk_bytes, ranges=ranges, spill_dir=spill_dir)
        return vocab, {}, tokens.iter_ids(_vocab_mapping(tokens, vocab))

    if cache_root is None:
        dataset = _uncached(count, log)
        dataset.stats["n_ids"] = len(dataset.ids)
        return dataset
    entry = cache_root / _shard_key(ranges, vocab, cfg)

    def fill(tmp: Path):
        n_ids, n_words, crc = _write_ids(tmp / "ids.int32", count(tmp)[2])
        (tmp / "meta.json").write_text(json.dumps(_sealed({"n_words": n_words, "n_ids": n_ids, "ids_crc32": crc})))

    for attempt in range(2):
        if not (entry / "meta.json").exists():
            _write_entry(cache_root, entry, fill)
        try:
            return _load_shard(entry, vocab)
        except DamagedCache as e:
            if attempt:
                raise CorpusError(f"the cached shard {entry} is damaged ({e}) and could not be rebuilt") from None
            log(f"warning: the cached shard {entry} is damaged ({e}); rebuilding it")
            _discard(entry)
    raise AssertionError("unreachable")


def _load_shard(entry: Path, vocab: Vocab) -> Dataset:
    try:
        meta = _unsealed(json.loads((entry / "meta.json").read_bytes()))
        size = (entry / "ids.int32").stat().st_size
    except (OSError, ValueError) as e:
        raise DamagedCache(f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from None
    if meta is None or not all(type(meta.get(k)) is int for k in ("n_words", "n_ids", "ids_crc32")):
        raise DamagedCache("meta.json does not match its checksum")
    if size != 4 * meta["n_ids"] or not 0 <= meta["n_words"] <= meta["n_ids"]:
        raise DamagedCache(f"ids.int32 has {size} bytes, meta.json says {meta['n_ids']} ids")
    ids = np.memmap(entry / "ids.int32", dtype=np.int32, mode="r") if meta["n_ids"] else np.zeros(0, np.int32)
    crc, lo, hi = scan_ids(ids)
    if crc != meta["ids_crc32"]:
        raise DamagedCache("ids.int32 does not match its checksum")
    if lo < SENTENCE_END or hi >= len(vocab):
        raise DamagedCache(f"ids.int32 holds id {lo if lo < SENTENCE_END else hi} outside the vocabulary")
    return Dataset(vocab, ids, meta["n_words"], {"n_ids": meta["n_ids"]}, entry)


def _shard_key(ranges, vocab: Vocab, cfg: Config) -> str:
    digest = hashlib.sha256()
    for word, count in zip(vocab.words, vocab.counts.tolist(), strict=True):
        digest.update(f"{word} {count}\n".encode())
    ident = {"format": _FORMAT, "lowercase": cfg.lowercase, "tokenize": cfg.tokenize, "vocab": digest.hexdigest(),
             "ranges": [[str(Path(r.path).resolve()), Path(r.path).stat().st_size, Path(r.path).stat().st_mtime_ns,
                         r.start, r.end] for r in ranges]}
    return "shard-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _write_entry(cache_root: Path, entry: Path, fill) -> None:
    """Fill a temporary directory, then rename it to ``entry`` (another run may win the race)."""
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp, lock = _new_tmp_dir(cache_root)
    try:
        fill(tmp)
        try:
            os.replace(tmp, entry)
        except OSError:  # another run filled it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _release(lock)
