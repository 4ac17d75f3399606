"""The run loop every backend shares: progress and the learning rate it drives, the progress bar,
log.jsonl records, periodic checkpoints with the workers paused, and SIGINT/SIGTERM.

A backend supplies its *runners*, threads that do the training and report each piece of work
through ``Progress.add_job``: the local backend runs one thread per worker (train.Trainer), the
Ray backend one thread that drives the actors and their syncs (distributed.RayTrainer). Runners
stop at a boundary when asked (``Progress.at_boundary``), which is what makes pauses for
checkpoints and stops on a signal consistent.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .schedule import learning_rate


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
    """Training stopped on a signal after saving a checkpoint; ``code`` is the exit status."""

    def __init__(self, signum: int, run_dir: Path | None):
        self.signum, self.run_dir = signum, run_dir
        self.code = 128 + signum
        super().__init__(f"stopped by signal {signum}")


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
            log_interval: float = 30.0, checkpoint=None, checkpoint_interval: float = 0.0, stop_signals=True) -> bool:
        """Train until every epoch is done (True) or a SIGINT/SIGTERM stops it (False).

        ``on_log(record)`` is called every 1% of the run and every ``log_interval`` seconds;
        ``checkpoint()`` every ``checkpoint_interval`` seconds (0 = never), with the runners paused.
        """
        import signal

        from tqdm import tqdm

        progress = self.progress
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        caught: list[int] = []
        previous = {}
        if stop_signals and threading.current_thread() is threading.main_thread():
            def on_signal(signum, frame):
                caught.append(signum)
                with progress.cond:
                    progress.stop = True
                    progress.cond.notify_all()

            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, on_signal)
        bar = tqdm(total=progress.total_words, initial=progress.words_done, unit="w", unit_scale=True,
                   disable=not show_progress, dynamic_ncols=True, smoothing=0.1)
        threads = self._runners(trace)
        self.n_runners = len(threads)
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
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            bar.close()
        self.caught = caught
        if progress.error is not None:
            raise progress.error
        return not caught

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
