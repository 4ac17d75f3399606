"""The run loop every backend shares: progress and the learning rate it drives, the progress bar,
log.jsonl records, periodic checkpoints with the workers paused, and SIGINT/SIGTERM.

A backend supplies its *runners*, threads that do the training and report each piece of work
through ``Progress.add_job``: the local backend runs one thread per worker (train.Trainer), the
Ray backend one thread that drives the actors and their syncs (distributed.RayTrainer). Runners
stop at a boundary when asked (``Progress.at_boundary``), which is what makes pauses for
checkpoints and stops on a signal consistent.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import TrainingError
from .schedule import learning_rate

# The loss is taken to diverge when the mean loss per pair of the recent jobs grows past
# DIVERGED_FACTOR times the lowest it has been (measured once DIVERGENCE_JOBS jobs are in): with
# alpha 0.3 on demo.txt it goes from 2.8 to 15 within 6% of the run and to 1e6 by 12%, while runs
# that converge stay within a few percent of their start (2.5-2.9).
DIVERGED_FACTOR = 10.0
DIVERGENCE_JOBS = 5


class Diverged(TrainingError):
    """The loss grew far above its start while staying finite."""

    def __init__(self, lowest: float, now: float, epoch: int):
        self.lowest, self.now, self.epoch = lowest, now, epoch
        super().__init__(f"the loss is diverging in epoch {epoch + 1}: the mean loss per pair grew from {lowest:.4g} "
                         f"to {now:.4g}")


@dataclass
class Progress:
    """Shared by the runners and the main thread, under ``cond``."""
    total_words: int
    words_done: int = 0  # drives the learning rate
    pairs: int = 0
    seconds: float = 0.0  # training time of earlier sessions of a resumed run
    recent: deque = field(default_factory=lambda: deque(maxlen=40))  # (loss sum, pairs) per job
    epoch_loss: dict = field(default_factory=dict)  # epoch -> [loss sum, pairs]
    error: BaseException | None = None
    stop: bool = False  # finish the current job, then return
    pause: bool = False  # finish the current job, then wait (for a checkpoint)
    paused: int = 0
    pending: list = field(default_factory=list)  # (words, recent loss, time) log points to write
    finished: int = 0
    lowest_loss: float = math.inf  # the lowest recent loss since DIVERGENCE_JOBS jobs of this session
    jobs: int = 0  # jobs of this session
    cond: threading.Condition = field(default_factory=threading.Condition)

    def recent_loss(self) -> float:
        loss = sum(r[0] for r in self.recent)
        pairs = sum(r[1] for r in self.recent)
        return loss / pairs if pairs else float("nan")

    def add_job(self, epoch: int, words: int, pairs: int, loss: float) -> None:
        """Count a finished piece of work (call under ``cond``); snapshots a log point every 1% of the run."""
        step = max(1, self.total_words // 100)
        crossed = (self.words_done + words) // step > self.words_done // step
        self.words_done += words
        self.pairs += pairs
        self.recent.append((loss, pairs))
        self.jobs += 1
        if self.jobs >= DIVERGENCE_JOBS:
            now = self.recent_loss()
            self.lowest_loss = min(self.lowest_loss, now)
            if now > DIVERGED_FACTOR * self.lowest_loss and self.error is None:
                self.error = Diverged(self.lowest_loss, now, epoch)
                self.cond.notify_all()
        if crossed:
            self.pending.append((self.words_done, self.recent_loss(), time.perf_counter()))
            self.cond.notify_all()
        ep = self.epoch_loss.setdefault(epoch, [0.0, 0])
        ep[0] += loss
        ep[1] += pairs

    def at_boundary(self) -> bool:
        """A runner between two pieces of work (call under ``cond``): wait while a pause is asked;
        False when the runner must return (a stop, or an error anywhere)."""
        if self.pause:
            self.paused += 1
            self.cond.notify_all()
            self.cond.wait_for(lambda: not self.pause)
            self.paused -= 1
        return not (self.stop or self.error is not None)

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.error = self.error or error
            self.cond.notify_all()


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; ``code`` is the exit status.
    ``finished``: the signal came once training had ended, and the complete results were saved."""

    def __init__(self, signum: int, run_dir: Path | None, finished: bool = False):
        self.signum, self.run_dir, self.finished = signum, run_dir, finished
        self.code = 128 + signum
        super().__init__(f"stopped by signal {signum}")


_hold_to_exit = False
_collect_from_training = False


def hold_signals_to_exit() -> None:
    """For a command whose last work is the run (``w2v train``): once a run has held the signals,
    SIGINT and SIGTERM stay ignored until the process exits, so a Ctrl-C after the last file is
    written cannot cut short the exit or its last line (the exit status still says a signal came
    while the run held them)."""
    global _hold_to_exit
    _hold_to_exit = True


def collect_from_training() -> None:
    """For the `w2v train` process, which loads its modules and kernels with Python's cyclic
    collector off (two or three full walks over Numba's objects while they load, ~0.1 s, would find
    next to nothing: 1,156 unreachable of 117,004 at the start of a big.txt run): the collector is
    turned back on when training starts, with every object there then (modules, kernels, the
    vocabulary, kept to the exit; those few unreachable ones too) frozen out of its walks."""
    global _collect_from_training
    _collect_from_training = True


class StopSignals:
    """SIGINT and SIGTERM, held from the start of training until its results are on disk: a signal
    only asks the runners to stop (``watch``) and is recorded in ``caught``, so however many come,
    and whenever (while the checkpoint or the vectors are written too), the files being written are
    finished, never cut off. Outside the main thread (where handlers cannot be set) it does nothing,
    and a signal the process was started ignoring (``nohup``, ``cmd &`` in a script) stays ignored.
    """

    def __init__(self):
        self.caught: list[int] = []
        self._previous: dict = {}
        self._progress: Progress | None = None

    def watch(self, progress: Progress | None) -> None:
        """Signals from now on (and one already caught) stop the runners of ``progress``."""
        self._progress = progress
        if self.caught and progress is not None:
            self._stop(progress)

    @staticmethod
    def _stop(progress: Progress) -> None:
        with progress.cond:
            progress.stop = True
            progress.cond.notify_all()

    def _on_signal(self, signum, frame) -> None:
        self.caught.append(signum)
        if self._progress is not None:
            self._stop(self._progress)

    def __enter__(self) -> StopSignals:
        import signal

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) != signal.SIG_IGN:  # ignored by whoever started us (nohup, cmd &): stays so
                    self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        import signal

        if _hold_to_exit:
            # the run was the process's last work: ignore further signals until it exits (at its
            # exit Python puts back the default handlers, which would kill it before its last line)
            for sig in self._previous:
                signal.signal(sig, signal.SIG_IGN)
            self._previous = {}
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        self._progress = None


class TrainingLoop:
    """The backend-independent part of a trainer. Subclasses set ``cfg``, ``dataset`` (its
    ``n_words`` and vocabulary), ``model`` and ``progress`` and implement ``_runners``,
    ``state_arrays`` and ``load_state``."""

    n_runners = 0
    caught: list[int]

    def _runners(self, trace: np.ndarray | None) -> list[threading.Thread]:
        """The threads that train, not started yet; each ends by counting itself in ``progress.finished``."""
        raise NotImplementedError

    def workers_text(self) -> str:
        return f"{self.cfg.resolved_workers()} worker(s)"

    def learning_rate(self) -> float:
        return learning_rate(self.cfg.alpha, self.cfg.min_alpha, self.progress.words_done, self.progress.total_words)

    def _pause(self) -> None:
        """Return once every runner waits at a boundary (or has finished)."""
        p = self.progress
        with p.cond:
            p.pause = True
            p.cond.notify_all()  # a runner may be waiting on something else (a Ray actor ahead of its sync)
            p.cond.wait_for(lambda: p.paused + p.finished >= self.n_runners)

    def _unpause(self) -> None:
        with self.progress.cond:
            self.progress.pause = False
            self.progress.cond.notify_all()

    @contextmanager
    def _paused(self):
        """Every runner waits at a boundary meanwhile, so the state is consistent."""
        self._pause()
        try:
            yield
        finally:
            self._unpause()

    def run(self, show_progress: bool | None = None, trace: np.ndarray | None = None, on_log=None,
            log_interval: float = 30.0, checkpoint=None, checkpoint_interval: float = 0.0, stop_signals=True,
            signals: StopSignals | None = None) -> bool:
        """Train until every epoch is done (True) or a SIGINT/SIGTERM stops it (False).

        ``on_log(record)`` is called every 1% of the run and every ``log_interval`` seconds;
        ``checkpoint()`` every ``checkpoint_interval`` seconds (0 = never), with the runners paused.
        ``signals``: handlers the caller holds (until its results are written); without them, and
        with ``stop_signals``, the handlers are held while training only.
        """
        if signals is None:
            with StopSignals() if stop_signals else nullcontext(StopSignals()) as own:
                return self.run(show_progress, trace, on_log, log_interval, checkpoint, checkpoint_interval,
                                signals=own)
        from tqdm import tqdm

        progress = self.progress
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        signals.watch(progress)
        bar = tqdm(total=progress.total_words, initial=progress.words_done, unit="w", unit_scale=True,
                   disable=not show_progress, dynamic_ncols=True, smoothing=0.1)
        threads = self._runners(trace)
        self.n_runners = len(threads)
        if _collect_from_training and not gc.isenabled():
            gc.freeze()
            gc.enable()
        t0 = time.perf_counter()
        last_log = (t0, progress.words_done)
        last_checkpoint = t0
        try:
            for t in threads:
                t.start()
            shown = progress.words_done
            while any(t.is_alive() for t in threads):
                with progress.cond:  # wake for a log point, or every 0.2 s
                    progress.cond.wait_for(lambda: progress.pending or progress.finished == len(threads),
                                           timeout=0.2)
                    done, loss = progress.words_done, progress.recent_loss()
                    points, progress.pending = progress.pending, []
                now = time.perf_counter()
                bar.update(done - shown)
                shown = done
                bar.set_postfix_str(f"loss {loss:.4f} lr {self.learning_rate():.5f}", refresh=False)
                if on_log and not points and now - last_log[0] >= log_interval:
                    points = [(done, loss, now)]
                if on_log:
                    last_log = self._emit(on_log, points, last_log, progress.seconds - t0)
                if checkpoint and checkpoint_interval and now - last_checkpoint >= checkpoint_interval \
                        and progress.error is None and not progress.stop:
                    with self._paused():
                        if progress.error is None:
                            progress.seconds += time.perf_counter() - t0
                            t0 = time.perf_counter()
                            checkpoint()
                    last_checkpoint = time.perf_counter()
            progress.seconds += time.perf_counter() - t0
            # the last log points go out while the handlers are still ours: a signal meanwhile
            # (a short run may log every point here) stops the run like one during training
            points, progress.pending = progress.pending, []
            if on_log and progress.error is None:
                if progress.words_done != (points[-1][0] if points else last_log[1]):
                    points.append((progress.words_done, progress.recent_loss(), time.perf_counter()))
                self._emit(on_log, points, last_log, progress.seconds - time.perf_counter())
        finally:
            signals.watch(None)
            bar.close()
        self.caught = list(signals.caught)
        if isinstance(progress.error, Diverged):
            raise TrainingError(f"{progress.error}: the learning rate (alpha={self.cfg.alpha}) is probably too large; "
                                "lower alpha") from None
        if progress.error is not None:
            raise progress.error
        return not progress.stop

    def _emit(self, on_log, points, last_log, clock_offset: float):
        """Log points (words, loss, time) as records; ``clock_offset`` + time = training seconds."""
        for words, loss, t in points:
            on_log(self._log_record(words, loss, (words - last_log[1]) / max(t - last_log[0], 1e-9),
                                    clock_offset + t))
            last_log = (t, words)
        return last_log

    def _log_record(self, words: int, loss: float, rate: float, seconds: float) -> dict:
        """One log.jsonl line: loss is the mean per pair over recent jobs, words_per_sec since the last line."""
        n = max(1, self.dataset.n_words)
        lr = learning_rate(self.cfg.alpha, self.cfg.min_alpha, words, self.progress.total_words)
        return {"words": int(words), "epoch": int(min(self.cfg.epochs, words // n + 1)),
                "progress": words / self.progress.total_words, "learning_rate": lr,
                "loss": loss if math.isfinite(loss) else None, "words_per_sec": rate, "seconds": seconds}

    def epoch_losses(self) -> dict[int, float]:
        return {e + 1: v[0] / max(1, v[1]) for e, v in sorted(self.progress.epoch_loss.items())}
