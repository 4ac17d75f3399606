"""Continued training (``w2v train NEW... --init-from RUN``): the config, the merged vocabulary
with the new corpus encoded by it, and the model's start from RUN's vectors.

``--init-from`` also takes a vectors file (word2vec text or binary: pretrained vectors, e.g.
gensim's or word2vec.c's): then the vocabulary is NEW's own, as in a fresh run, and its words
found in the file start from the file's vectors; output rows and biases start fresh."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from .checkpoint import CHECKPOINT, load_checkpoint
from .config import Config, ConfigError, load_config, validate
from .corpus import CorpusError, corpus_files
from .dataset import Dataset, encode
from .io import OutputError, read_vectors
from .prepare_child import prepare
from .train import Model, init_model
from .vocab import Vocab, count_words, merge_vocab

# A continued run starts at this fraction of RUN's alpha (measured: docs/continue.md).
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
    at their defaults; then the keys that ``config_path`` sets and the non-None ``overrides``.
    From a vectors file: the defaults, ``config_path`` and ``overrides``, with the file's dim."""
    if Path(run_dir).is_file():
        return _vectors_file_config(Path(run_dir), config_path, overrides)
    _checkpoint_of(run_dir)
    user = load_config(config_path, overrides)  # checks the file and the overrides
    given = {k for k, v in (overrides or {}).items() if v is not None}
    if config_path is not None:
        given |= set(yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {})
    run_cfg = load_config(Path(run_dir) / "config.yaml")
    values = {**run_cfg.to_dict(), "alpha": run_cfg.alpha * CONTINUE_ALPHA_FACTOR, "workers": user.workers,
              "cache_dir": user.cache_dir, **{k: getattr(user, k) for k in given}, "init_from": str(run_dir)}
    return validate(Config(**values))


def _vectors_file_dim(path: Path) -> int:
    """The dimension in a word2vec file's header line (``count dim``, text and binary alike)."""
    try:
        with open(path, "rb") as fh:
            header = fh.readline(256).split()
    except OSError as e:
        raise OutputError(f"cannot read vectors {path}: {e.strerror or e}") from None
    if len(header) != 2 or not all(h.isdigit() for h in header) or int(header[1]) < 1:
        raise OutputError(f"--init-from {path} is neither a run directory nor a word2vec vectors file (its first "
                          "line is not 'words dimensions')")
    return int(header[1])


def _vectors_file_config(path: Path, config_path, overrides: dict | None) -> Config:
    dim = _vectors_file_dim(path)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if overrides.get("prune"):
        raise ConfigError("--prune applies to --init-from a run directory (its vocabulary); from a vectors file "
                          "the vocabulary is the corpus's own")
    user = load_config(config_path, {k: v for k, v in overrides.items() if k != "dim"})
    given_dim = overrides.get("dim")
    if config_path is not None and given_dim is None:
        given_dim = (yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}).get("dim")
    if given_dim is not None and given_dim != dim:
        raise ConfigError(f"{path} holds vectors of dim {dim}, this run asks for dim {given_dim}: a run starting "
                          "from vectors keeps their dim")
    return validate(Config(**{**user.to_dict(), "dim": dim, "init_from": str(path)}))


def _from_vectors_file(corpus: list[str], cfg: Config, log):
    """NEW's own vocabulary and ids, and which of its words the file holds (``new_ids``, ``file_rows``)."""
    path = Path(cfg.init_from).resolve()
    try:
        words, vectors = read_vectors(path, repeated_words=True)  # pretrained files may repeat a word: first row
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise OutputError(f"cannot read vectors {path}: {getattr(e, 'strerror', None) or e}") from None
    if vectors.shape[1] != cfg.dim:
        raise ConfigError(f"{path} holds vectors of dim {vectors.shape[1]}, this run asks for dim {cfg.dim}")
    dataset = prepare(corpus, cfg, log)
    row_of: dict[str, int] = {}
    for i, w in enumerate(words):
        row_of.setdefault(w, i)
    if len(row_of) != len(words):
        log(f"warning: {path} holds {len(words) - len(row_of):,} repeated word(s); the first row of each is used")
    pairs = [(i, row_of[w]) for i, w in enumerate(dataset.vocab.words) if w in row_of]
    new_ids = np.array([p[0] for p in pairs], np.int64)
    file_rows = np.array([p[1] for p in pairs], np.int64)
    log(f"vocabulary: {len(dataset.vocab):,} words, {len(pairs):,} of them start from the vectors in {path} "
        f"({len(words):,} words); the others, the output rows and the biases start fresh")
    base = {"vectors": vectors[file_rows] if len(pairs) else np.zeros((0, cfg.dim), np.float32), "new_ids": new_ids}
    cfg = Config(**{**cfg.to_dict(), "init_from": str(path), "init_from_corpus": "",
                    "continued_on": os.pathsep.join(str(Path(c).resolve()) for c in corpus)})
    return dataset, base, cfg


def continued_dataset(corpus: list[str], cfg: Config, out: Path | None, log=lambda msg: None):
    """The new corpus encoded with the merged vocabulary (``vocab.merge_vocab``), RUN's checkpoint
    (its old-id -> new-id map added) and ``cfg`` with the run and both corpora recorded. From a
    vectors file: NEW's own vocabulary and the file's vectors of the words it holds."""
    if Path(cfg.init_from).is_file():
        return _from_vectors_file(corpus, cfg, log)
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
    counts, cstats = count_words(files, cfg.lowercase, cfg.chunk_bytes, cfg.max_vocab_size, cfg.tokenize,
                                 max(1, min(cfg.resolved_workers(), os.cpu_count() or 1)))
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
    model = init_model(dataset, cfg)
    if "new_ids" in base:  # from a vectors file: the input vectors of the words it holds
        model.emb_in[base["new_ids"]] = base.pop("vectors")
        return model
    old_to_new = base.pop("old_to_new")
    kept = old_to_new >= 0
    for name in ("emb_in", "emb_out", "bias"):
        getattr(model, name)[old_to_new[kept]] = base.pop(name)[kept]  # popped: RUN's copy is freed
    return model
