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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import Config, ConfigError, save_config
from .dataset import prepare
from .errors import TrainingError, WorkersLost
from .io import OutputError, atomic_open

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

    try:
        ok = trainer.run(show_progress, on_log=run.log_line if run else None, log_interval=trainer.cfg.log_interval,
                         checkpoint=(lambda: run.checkpoint(trainer)) if run else None,
                         checkpoint_interval=trainer.cfg.checkpoint_interval)
    except WorkersLost as e:
        raise _saved_after_loss(e, trainer, run) from None
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
    if cfg.backend == "ray":
        return _train_ray(corpus, cfg, out, show_progress, log)
    dataset = prepare(corpus, cfg, log)
    log(f"corpus: {dataset.stats['tokens']:,} tokens, {dataset.n_words:,} in a vocabulary of "
        f"{len(dataset.vocab):,} words")
    if dataset.stats.get("invalid_utf8"):
        log(f"warning: replaced {dataset.stats['invalid_utf8']} invalid UTF-8 sequence(s) by U+FFFD")
    validate(cfg, len(dataset.vocab))
    check_memory(len(dataset.vocab), len(dataset.ids), cfg, log)
    trainer = Trainer(dataset, cfg)
    run = None
    if out is not None:
        run = Run(out, cfg, corpus)
        (out / "log.jsonl").unlink(missing_ok=True)
        save_config(cfg, out / "config.yaml")
    return _train(trainer, run, show_progress, log)


def resume(run_dir, epochs: int | None = None, show_progress: bool | None = None, log=lambda msg: None,
           address: str | None = None) -> Model:
    """Continue the run in ``run_dir`` from its checkpoint: the rest of an interrupted run, or more
    epochs (``epochs`` is the new total). The learning rate and word count go on where they were.
    A run of the Ray backend resumes on Ray, at ``address`` if given (a restarted cluster)."""
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
    if address is not None and cfg.backend != "ray":
        raise ConfigError(f"--address is for runs of the Ray backend; {out} was trained with backend {cfg.backend}")
    if cfg.backend == "ray":
        if address is not None:
            cfg = Config(**{**cfg.to_dict(), "address": address})
        return _train_ray(corpus, cfg, out, show_progress, log, ck)
    dataset = prepare(corpus, cfg, log)
    if dataset.vocab.words != ck["words"].tolist() or dataset.n_words != int(ck["n_words"]):
        raise TrainingError(f"the corpus {' '.join(corpus)} changed since the checkpoint; it cannot be resumed")
    model = Model(dataset.vocab.words, dataset.vocab.counts, ck["emb_in"].copy(), ck["emb_out"].copy(),
                  ck["bias"].copy(), cfg)
    trainer = Trainer(dataset, cfg, model)
    trainer.load_state(ck)
    log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
    return _train(trainer, Run(out, cfg, corpus), show_progress, log)


def _check_corpus(corpus, words: list[str], n_words: int, ck: dict) -> None:
    if words != ck["words"].tolist() or n_words != int(ck["n_words"]):
        raise TrainingError(f"the corpus {' '.join(corpus)} changed since the checkpoint; it cannot be resumed")


def _train_ray(corpus, cfg: Config, out: Path | None, show_progress, log, ck: dict | None = None) -> Model:
    """The Ray backend (w2v.distributed) in the same run directory: fresh, or resumed from ``ck``."""
    from .distributed import RayTrainer

    trainer = RayTrainer(corpus, cfg, log, checkpoint=ck)
    try:
        run = Run(out, trainer.cfg, corpus) if out is not None else None
        if ck is not None:
            _check_corpus(corpus, trainer.dataset.vocab.words, trainer.dataset.n_words, ck)
            trainer.load_state(ck)
            log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
        elif out is not None:
            (out / "log.jsonl").unlink(missing_ok=True)
            save_config(trainer.cfg, out / "config.yaml")
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
