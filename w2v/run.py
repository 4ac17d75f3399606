"""A training run from start to end: ``train`` (fresh or continued with ``--init-from``) and
``resume``: pick the dataset, the model's start and the backend (threads or Ray, both a
``TrainingLoop``), run it, and save where it ends.

The pieces live below: the run directory (w2v.rundir), the checkpoint format (w2v.checkpoint),
continued training (w2v.continued), the backends (w2v.train, w2v.distributed).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import compile_ahead
from .checkpoint import (  # noqa: F401  (w2v.run's names before the split)
    CHECKPOINT,
    check_checkpoint,
    check_corpus_unchanged,
    check_corpus_vocab,
    check_model,
    check_progress,
    check_workers,
    corpus_fingerprint,
    load_checkpoint,
    resplit_workers,
    save_checkpoint,
)
from .config import Config, ConfigError, parse_config, validate
from .continued import (  # noqa: F401  (w2v.run's names before the split)
    CONTINUE_ALPHA_FACTOR,
    continued_config,
    continued_dataset,
    continued_model,
)
from .corpus import invalid_utf8_warning
from .dataset import encode
from .distributed import RayTrainer
from .errors import TrainingError, WorkersLost
from .io import OutputError
from .loop import StopSignals
from .prepare_child import prepare
from .rundir import (  # noqa: F401  (Run, disk_needed: w2v.run's names before the split)
    PARTIAL,
    DirLock,
    Run,
    check_disk_space,
    check_output,
    disk_needed,
    has_results,
    make_dir,
    open_run,
    refuse_existing_run,
    resume_run,
    save_results,
    stat_key,
)
from .train import Interrupted, Model, Trainer, _finish, check_memory, matrix
from .vocab import MAX_WORD_BYTES, Vocab


def train(corpus, cfg: Config | None = None, output: str | Path | None = "w2v-run",
          show_progress: bool | None = None, log=lambda msg: None, overwrite: bool = False) -> Model:
    """The whole pipeline: corpus file(s) -> vocabulary -> training -> the run directory ``output``
    (None: train in memory only). Raises ``Interrupted`` after saving on SIGINT/SIGTERM.

    A directory that holds a run (vectors or a checkpoint) is refused unless ``overwrite``, as is
    one another ``train`` is writing; a run that will not fit the disk is refused before training.
    """
    cfg = validate(cfg or Config())
    cfg = Config(**{**cfg.to_dict(), "workers": cfg.resolved_workers()})
    corpus = [str(c) for c in ([corpus] if isinstance(corpus, (str, os.PathLike)) else corpus)]
    out = Path(output) if output is not None else None
    if out is not None:  # refuse before the counting pass, not after it; the directory is made later
        check_output(out, overwrite)
    if cfg.backend == "ray":
        if cfg.init_from:
            raise ConfigError("--init-from runs on the local backend only (for now): drop --backend ray")
        return _train_ray(corpus, cfg, out, show_progress, log, overwrite=overwrite)
    base = None
    ahead = compile_ahead.start(cfg)  # a first run's kernels compile in a child while the corpus is read
    try:
        if cfg.init_from:  # continuing another run: see continued_config
            compile_ahead.tokenizer_ready(ahead)  # the tokenizer's kernels loaded, not compiled twice
            dataset, base, cfg = continued_dataset(corpus, cfg, out, log)
        else:
            dataset = prepare(corpus, cfg, log, before_counting=lambda: compile_ahead.tokenizer_ready(ahead))
        log(f"corpus: {dataset.stats['tokens']:,} tokens, {dataset.n_words:,} in a vocabulary of "
            f"{len(dataset.vocab):,} words")
        if invalid_utf8_warning(dataset.stats):
            log(invalid_utf8_warning(dataset.stats))
        _warn_long_words(dataset.stats, log)
        validate(cfg, len(dataset.vocab))
        check_memory(len(dataset.vocab), len(dataset.ids), cfg, log, dataset.mapped)
        if out is not None:
            check_disk_space(out, dataset.vocab.words, cfg)
        compile_ahead.wait(ahead, log)
    finally:
        compile_ahead.stop(ahead)  # a no-op once it has ended
    with StopSignals() as signals:  # held until the results are on disk
        trainer = Trainer(dataset, cfg, continued_model(dataset, cfg, base) if base is not None else None)
        _check_not_interrupted(signals, log)
        run = open_run(out, cfg, corpus, overwrite, log) if out is not None else None
        return _train(trainer, run, show_progress, log, signals)


def resume(run_dir, epochs: int | None = None, show_progress: bool | None = None, log=lambda msg: None,
           address: str | None = None, workers: int | None = None) -> Model:
    """Continue the run in ``run_dir`` from its checkpoint: the rest of an interrupted run, or more
    epochs (``epochs`` is the new total). The learning rate and word count go on where they were.
    Refused when the corpus files changed since the checkpoint (size, mtime, first and last MiB).
    A run of the Ray backend resumes on Ray, at ``address`` if given (a restarted cluster).
    ``workers`` (local backend): another number of threads, the rest of the work re-split
    (``checkpoint.resplit_workers``); only an unchanged count continues bit for bit.
    A finished run (every epoch done, no more asked, its vectors written) is left as it is: its
    model is returned; one whose results were never written (a stop or a kill -9 after its last
    checkpoint) gets them written."""
    out = Path(run_dir)
    ck_path = out / CHECKPOINT
    if not ck_path.exists():
        raise OutputError(f"no checkpoint in {out} (expected {ck_path})")
    DirLock(out).release()  # refuse at once if a run is writing it
    ck_stat = stat_key(ck_path)
    ck = load_checkpoint(ck_path)
    cfg = validate(parse_config(str(ck["config"]), f"in {ck_path}"))
    if epochs is not None:
        if epochs < cfg.epochs:
            raise ConfigError(f"--epochs {epochs} is below the run's {cfg.epochs}; a resumed run can only go further")
        cfg = Config(**{**cfg.to_dict(), "epochs": epochs})
    if (ck["epochs"] >= cfg.epochs).all() and has_results(out, cfg.format):
        log(f"{out} is finished ({cfg.epochs} epochs, {int(ck['words_done']):,} words trained): nothing to do, "
            f"nothing rewritten (--epochs N continues it to N epochs)")
        return Model(ck["words"].tolist(), ck["counts"], ck["emb_in"], ck["emb_out"], ck["bias"], cfg)
    if workers is not None:
        workers = validate(Config(workers=workers)).resolved_workers()
        if cfg.backend == "ray" and workers != cfg.workers:
            raise ConfigError(f"{out} is a run of the Ray backend: it resumes with its own --workers ({cfg.workers})")
        cfg = Config(**{**cfg.to_dict(), "workers": workers})
    corpus = [str(c) for c in ck["corpus"]]
    fingerprint = check_corpus_unchanged(ck, corpus, out, log)
    if address is not None and cfg.backend != "ray":
        raise ConfigError(f"--address is for runs of the Ray backend; {out} was trained with backend {cfg.backend}")
    if cfg.backend == "ray":
        if address is not None:
            cfg = Config(**{**cfg.to_dict(), "address": address})
        return _train_ray(corpus, cfg, out, show_progress, log, ck=ck, resume=(fingerprint, ck_path, ck_stat))
    dataset = (encode(corpus, Vocab(ck["words"].tolist(), ck["counts"]), cfg) if cfg.init_from
               else prepare(corpus, cfg, log))
    check_corpus_vocab(corpus, dataset.vocab.words, dataset.n_words, ck)
    check_memory(len(dataset.vocab), len(dataset.ids), cfg, log, dataset.mapped)
    check_disk_space(out, dataset.vocab.words, cfg)
    with StopSignals() as signals:
        model = Model(dataset.vocab.words, dataset.vocab.counts, matrix(*ck["emb_in"].shape, like=ck["emb_in"]),
                      matrix(*ck["emb_out"].shape, like=ck["emb_out"]), ck["bias"].copy(), cfg)
        trainer = Trainer(dataset, cfg, model)
        if len(ck["cursors"]) != len(trainer.workers):
            log(f"re-splitting the rest of the run from {len(ck['cursors']):,} worker(s) to {len(trainer.workers):,} "
                f"(it is no longer bit-identical to a run with one count)")
            ck = {**ck, **resplit_workers(ck, [(w.start, w.end) for w in trainer.workers], dataset.n_words, cfg)}
        trainer.load_state(ck)
        _check_not_interrupted(signals, log)
        run = resume_run(out, cfg, corpus, fingerprint, ck_path, ck_stat, log)
        run.saved_words = trainer.progress.words_done
        log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
        return _train(trainer, run, show_progress, log, signals)


def _train_ray(corpus, cfg: Config, out: Path | None, show_progress, log, ck: dict | None = None,
               overwrite: bool = False, resume: tuple | None = None) -> Model:
    """The Ray backend (w2v.distributed) in the same run directory: fresh, or resumed from ``ck``
    (``resume``: the corpus fingerprint and the checkpoint's path and stat, as ``resume`` read them)."""
    trainer = RayTrainer(corpus, cfg, log, checkpoint=ck)
    try:
        if ck is None:
            _warn_long_words(trainer.dataset.stats, log)
        if ck is not None:
            check_corpus_vocab(corpus, trainer.dataset.vocab.words, trainer.dataset.n_words, ck)
            trainer.load_state(ck)
        elif out is not None:
            check_disk_space(out, trainer.dataset.vocab.words, trainer.cfg)
        with StopSignals() as signals:  # held until the results are on disk
            _check_not_interrupted(signals, log)
            run = None
            if ck is not None:
                if out is not None:
                    run = resume_run(out, trainer.cfg, corpus, *resume, log)
                    run.saved_words = trainer.progress.words_done
                log(f"resuming {out} at {trainer.progress.words_done:,} of {trainer.progress.total_words:,} words")
            elif out is not None:
                run = open_run(out, trainer.cfg, corpus, overwrite, log)
            return _train(trainer, run, show_progress, log, signals)
    finally:
        trainer.close()


def _warn_long_words(stats: dict, log) -> None:
    if stats.get("long_words"):
        log(f"warning: left out of the vocabulary {stats['long_words']:,} distinct token(s) longer than "
            f"{MAX_WORD_BYTES} bytes ({stats['long_tokens']:,} occurrence(s)): not words, and each would cost "
            "memory and disk")


def _check_not_interrupted(signals: StopSignals, log) -> None:
    """A signal while the trainer was being set up (loading compiled kernels, where a Ctrl-C as an
    exception would be lost): stop before the run directory is touched."""
    if signals.caught:
        log("interrupted before training started: nothing was written")
        raise Interrupted(signals.caught[0], None)


def _train(trainer, run: Run | None, show_progress, log, signals: StopSignals | None = None) -> Model:
    """Run the training loop, then save where it ended: the results, or on a stop the checkpoint
    and the vectors so far with the command that continues. ``signals`` (held by the caller until
    this returns) only record a Ctrl-C or SIGTERM from the start of training to the last file
    written: the files are always finished, and the exit status says a signal came. Without
    ``signals`` the loop holds its own handlers while it trains."""
    try:
        try:
            ok = trainer.run(show_progress, on_log=run.log_line if run else None,
                             log_interval=trainer.cfg.log_interval,
                             checkpoint=(lambda: run.periodic_checkpoint(trainer)) if run else None,
                             checkpoint_interval=trainer.cfg.checkpoint_interval, signals=signals)
        except WorkersLost as e:
            raise _saved_after_loss(e, trainer, run) from None
        except BaseException:
            if run is not None:  # nothing of this run saved: leave no half-run behind
                run.discard()
            raise
        model = _finish(trainer, log)
        if run is None:
            if not ok:
                raise Interrupted(trainer.caught[0], None)
            return model
        path = save_results(run, trainer, model, partial=not ok)
        if not ok:
            log(f"stopped: checkpoint and the vectors so far ({path}) saved; continue with:\n"
                f"  w2v train --resume {run.out}")
            raise Interrupted(trainer.caught[0], run.out)
        log(f"wrote {path} ({len(model.words):,} x {trainer.cfg.dim:,}) and the run files in {run.out}/")
        if signals is not None and signals.caught:  # once training had ended: the results were written all the same
            log(f"interrupted after the run had finished: its results in {run.out}/ are complete")
            raise Interrupted(signals.caught[0], run.out, finished=True)
        return model
    finally:
        if run is not None:
            run.close()


def _saved_after_loss(error: WorkersLost, trainer, run: Run | None) -> TrainingError:
    """Workers were lost for good: save what the others did, and say how to go on."""
    if run is None:
        return error
    run.checkpoint(trainer)
    run.write_outputs(trainer.model, partial=True)
    return TrainingError(f"{error}; the other workers' training is saved in {run.out}/{CHECKPOINT}: "
                         f"continue with: w2v train --resume {run.out}")
