"""A training run directory: what ``w2v train`` leaves behind, and how a run continues.

DIR/vectors.txt (or the ``format`` chosen), vocab.txt, config.yaml (the resolved config),
log.jsonl (a JSON line every 1% of the run and every ``log_interval`` seconds) and
checkpoint.npz: both matrices, the biases, vocabulary, config, corpus paths, progress and every
worker's RNG state and position, so ``w2v train --resume DIR`` continues bit for bit (one worker).
A run stopped by SIGINT/SIGTERM writes the checkpoint and vectors.partial.txt instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Config, ConfigError, save_config
from .dataset import Dataset, prepare
from .errors import TrainingError
from .io import OutputError, atomic_open
from .vocab import Vocab

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


def save_checkpoint(path: Path, trainer: Trainer, corpus: list[str]) -> None:
    import yaml

    m = trainer.model
    arrays = {
        "version": np.int64(_CHECKPOINT_VERSION), "emb_in": m.emb_in, "emb_out": m.emb_out, "bias": m.bias,
        "words": np.array(m.words), "counts": m.counts, "config": np.array(yaml.safe_dump(trainer.cfg.to_dict())),
        "corpus": np.array([str(Path(c).resolve()) for c in corpus]), "n_words": np.int64(trainer.dataset.n_words),
        **trainer.state_arrays(),
    }
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_checkpoint(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise OutputError(f"cannot read checkpoint {path}: {e}") from None
    if int(data.get("version", -1)) != _CHECKPOINT_VERSION:
        raise OutputError(f"{path} is not a w2v checkpoint of this version")
    return data


class Run:
    """Files of one run directory, written atomically (temporary name, then rename)."""

    def __init__(self, out: Path, cfg: Config, corpus: list[str]):
        self.out, self.cfg, self.corpus = out, cfg, corpus

    def log_line(self, record: dict) -> None:
        with open(self.out / "log.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def checkpoint(self, trainer: Trainer) -> None:
        save_checkpoint(self.out / CHECKPOINT, trainer, self.corpus)

    def write_outputs(self, model: Model, partial: bool = False) -> Path:
        from .export import write_vectors

        model.vocab_save(self.out / "vocab.txt")
        save_config(self.cfg, self.out / "config.yaml")
        if partial:
            from .io import write_word2vec_text

            write_word2vec_text(self.out / PARTIAL, model.words, model.emb_in)
            return self.out / PARTIAL
        path = write_vectors(self.out, model.words, model.counts, model.emb_in, self.cfg.format)
        stale = self.out / PARTIAL
        if stale.exists():
            stale.unlink()
        return path


def _train(trainer: Trainer, run: Run | None, show_progress, log) -> Model:
    from .train import Interrupted, _finish

    ok = trainer.run(show_progress, on_log=run.log_line if run else None, log_interval=trainer.cfg.log_interval,
                     checkpoint=(lambda: run.checkpoint(trainer)) if run else None,
                     checkpoint_interval=trainer.cfg.checkpoint_interval)
    model = _finish(trainer, log)
    if run is None:
        if not ok:
            raise Interrupted(trainer.caught[0], None)
        return model
    run.checkpoint(trainer)
    if not ok:
        path = run.write_outputs(model, partial=True)
        log(f"stopped: checkpoint and the vectors so far ({path}) saved; continue with:\n"
            f"  w2v train --resume {run.out}")
        raise Interrupted(trainer.caught[0], run.out)
    path = run.write_outputs(model)
    log(f"wrote {path} ({len(model.words)} x {trainer.cfg.dim}) and the run files in {run.out}/")
    return model


def train(corpus, cfg: Config | None = None, output: str | Path | None = "w2v-run",
          show_progress: bool | None = None, log=lambda msg: None) -> Model:
    """The whole pipeline: corpus file(s) -> vocabulary -> training -> the run directory ``output``
    (None: train in memory only). Raises ``Interrupted`` after saving on SIGINT/SIGTERM."""
    from .config import validate
    from .train import Trainer, check_memory

    cfg = validate(cfg or Config())
    cfg = Config(**{**cfg.to_dict(), "workers": cfg.resolved_workers()})
    corpus = [str(c) for c in ([corpus] if isinstance(corpus, (str, os.PathLike)) else corpus)]
    out = _make_dir(Path(output)) if output is not None else None
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
    trainer = Trainer(dataset, cfg, continued_model(dataset, cfg, base) if base is not None else None)
    run = None
    if out is not None:
        run = Run(out, cfg, corpus)
        (out / "log.jsonl").unlink(missing_ok=True)
        save_config(cfg, out / "config.yaml")
    return _train(trainer, run, show_progress, log)


def resume(run_dir, epochs: int | None = None, show_progress: bool | None = None, log=lambda msg: None) -> Model:
    """Continue the run in ``run_dir`` from its checkpoint: the rest of an interrupted run, or more
    epochs (``epochs`` is the new total). The learning rate and word count go on where they were."""
    import yaml

    from .train import Model, Trainer

    out = Path(run_dir)
    ck_path = out / CHECKPOINT
    if not ck_path.exists():
        raise OutputError(f"no checkpoint in {out} (expected {ck_path})")
    ck = load_checkpoint(ck_path)
    cfg = Config(**yaml.safe_load(str(ck["config"])))
    if epochs is not None:
        if epochs < cfg.epochs:
            raise ConfigError(f"--epochs {epochs} is below the run's {cfg.epochs}; a resumed run can only go further")
        cfg = Config(**{**cfg.to_dict(), "epochs": epochs})
    corpus = [str(c) for c in ck["corpus"]]
    dataset = (encode_with_vocab(corpus, Vocab(ck["words"].tolist(), ck["counts"]), cfg) if cfg.init_from
               else prepare(corpus, cfg, log))
    if dataset.vocab.words != ck["words"].tolist() or dataset.n_words != int(ck["n_words"]):
        raise TrainingError(f"the corpus {' '.join(corpus)} changed since the checkpoint; it cannot be resumed")
    model = Model(dataset.vocab.words, dataset.vocab.counts, ck["emb_in"].copy(), ck["emb_out"].copy(),
                  ck["bias"].copy(), cfg)
    trainer = Trainer(dataset, cfg, model)
    trainer.load_state(ck)
    log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
    return _train(trainer, Run(out, cfg, corpus), show_progress, log)


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


def _load_base(path: Path) -> dict:
    """RUN's checkpoint, refused in one line when it is damaged or inconsistent."""
    import zipfile
    import zlib

    try:
        ck = load_checkpoint(path)
        emb_in, emb_out, bias, words, counts, _ = (ck[k] for k in ("emb_in", "emb_out", "bias", "words", "counts",
                                                                    "corpus"))
    except (KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise OutputError(f"cannot read checkpoint {path}: it is damaged ({e})") from None
    v = len(words)
    if not (emb_in.ndim == 2 and emb_in.shape[0] == v and emb_out.shape == emb_in.shape and bias.shape == (v,)
            and counts.shape == (v,) and words.dtype.kind == "U" and len(set(words.tolist())) == v
            and np.isfinite(emb_in).all() and np.isfinite(emb_out).all() and np.isfinite(bias).all()
            and (counts > 0).all()):
        raise OutputError(f"cannot read checkpoint {path}: it is damaged (its arrays do not fit together)")
    return ck


def continued_dataset(corpus: list[str], cfg: Config, out: Path | None, log=lambda msg: None):
    """The new corpus encoded with the merged vocabulary (``vocab.merge_vocab``), RUN's checkpoint
    (its old-id -> new-id map added) and ``cfg`` with the run and both corpora recorded."""
    from .corpus import CorpusError, corpus_files
    from .vocab import count_words, merge_vocab

    run_dir = Path(cfg.init_from).resolve()
    path = _checkpoint_of(run_dir)
    if out is not None and out.resolve() == run_dir:
        raise OutputError(f"--output {out} is the run it starts from: a continued run needs a directory of its own")
    base = _load_base(path)
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
    dataset = encode_with_vocab(files, vocab, cfg)
    if dataset.n_words == 0:
        raise CorpusError(f"no word of the corpus is in the vocabulary of {run_dir} or reaches "
                          f"min_count={cfg.min_count}")
    dataset.stats = {"distinct": len(counts), "pruned_below": cstats.pruned_below,
                     "dropped_tokens": cstats.read.tokens - dataset.n_words, **asdict(cstats.read)}
    cfg = Config(**{**cfg.to_dict(), "init_from": str(run_dir),
                    "init_from_corpus": os.pathsep.join(str(c) for c in base["corpus"].tolist()),
                    "continued_on": os.pathsep.join(str(Path(c).resolve()) for c in corpus)})
    return dataset, base, cfg


def encode_with_vocab(corpus, vocab: Vocab, cfg: Config) -> Dataset:
    """The corpus as an id stream of a given vocabulary (in memory: a continued run is not cached)."""
    from .corpus import corpus_files
    from .dataset import _encode

    ids = np.concatenate(list(_encode(corpus_files(corpus), vocab, cfg)) or [np.zeros(0, np.int32)])
    return Dataset(vocab, ids, int((ids >= 0).sum()), {})


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
