"""Training: a Numba loop over pieces -> pairs -> batches -> one NCE SGD step each.

``train_span`` is the whole inner loop (no Python per batch); Python calls it for about
``_JOB_WORDS`` words at a time per worker, to update the progress bar and the shared word count
that drives the learning rate. Workers are threads on disjoint spans of the id stream sharing
the parameters without locks (Hogwild), each with its own RNG streams and scratch.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from .config import Config, save_config, validate
from .dataset import Dataset, prepare
from .io import write_word2vec_text
from .nce import nce_sgd_step
from .pairs import N_PAIRS, NEXT, keep_probabilities, new_cursor, next_batch, worker_spans
from .rng import NEGATIVES, PAIRS, make_state
from .sampler import draw_log_uniform, log_expected_count, log_tables

_JOB_WORDS = 50_000


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the CLI prints it as one line."""


@njit(cache=True, nogil=True)
def learning_rate(alpha, min_alpha, words_done, total_words):
    """Linear decay from alpha to min_alpha over all the words of all the epochs."""
    return max(min_alpha, alpha - (alpha - min_alpha) * words_done / total_words)


@njit(cache=True, nogil=True)
def train_span(ids, cursor, end, word_budget, emb_in, emb_out, bias, keep_prob, window, max_len,
               num_sampled, unique, remove_hits, batch_size, mean_loss, log_p, log1m_p,
               alpha, min_alpha, words_before, total_words, rng_pairs, rng_neg, stamp, mark,
               kept, centres, contexts, sampled, log_q_sampled, log_q_true, coef_true,
               coef_sampled, group_start, grad_in, totals, trace):
    """Train on the worker's pair stream until ``word_budget`` words are read and the current
    piece is finished, or the span ends; returns True at the end of the span.

    ``totals`` accumulates [words, pairs, loss sum, batches]. ``trace`` (int32 [n, 2]), when
    non-empty, records the first n pairs consumed, for tests that compare with ``iter_batches``.
    """
    vocab_size = emb_out.shape[0]
    log_range = np.log(vocab_size + 1.0)
    words = 0
    lr = learning_rate(alpha, min_alpha, words_before, total_words)
    while True:
        if words >= word_budget and cursor[NEXT] >= cursor[N_PAIRS]:
            totals[0] += words
            return False
        b0, b1, n_words = next_batch(ids, cursor, end, max_len, keep_prob, window, batch_size, rng_pairs,
                                     kept, centres, contexts)
        if n_words:  # a new piece: the learning rate follows the words read so far
            words += n_words
            lr = learning_rate(alpha, min_alpha, words_before + words, total_words)
        if b0 == b1:
            totals[0] += words
            return True
        mark[0] += 1
        tries = draw_log_uniform(rng_neg, vocab_size, log_range, num_sampled, unique, sampled, stamp, mark[0])
        for s in range(num_sampled):
            log_q_sampled[s] = log_expected_count(sampled[s], tries, num_sampled, log_p, log1m_p)
        for r in range(b0, b1):
            log_q_true[r - b0] = log_expected_count(contexts[r], tries, num_sampled, log_p, log1m_p)
        step = lr / (b1 - b0) if mean_loss else lr
        totals[2] += nce_sgd_step(emb_in, emb_out, bias, centres, contexts, b0, b1, sampled,
                                  log_q_sampled, log_q_true, step, remove_hits, coef_true,
                                  coef_sampled, group_start, grad_in)
        base = np.int64(totals[1])
        for r in range(b0, min(b1, b0 + trace.shape[0] - base)):
            trace[base + r - b0, 0] = centres[r]
            trace[base + r - b0, 1] = contexts[r]
        totals[1] += b1 - b0
        totals[3] += 1


@dataclass
class Model:
    words: list[str]
    counts: np.ndarray
    emb_in: np.ndarray  # [V, D] the word vectors
    emb_out: np.ndarray  # [V, D] NCE output weights
    bias: np.ndarray  # [V] NCE biases
    config: Config

    def vector(self, word: str) -> np.ndarray:
        return self.emb_in[self.words.index(word)]


def init_model(dataset: Dataset, cfg: Config) -> Model:
    vocab_size, dim = len(dataset.vocab), cfg.dim
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    # word2vec.c: input vectors uniform in +-0.5/dim, output vectors zero.
    emb_in = ((rng.random((vocab_size, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    emb_out = np.zeros((vocab_size, dim), dtype=np.float32)
    counts = dataset.vocab.counts
    if cfg.bias_init == "log_unigram":
        # Start where NCE's logit (an unnormalised log-probability) is the unigram model.
        bias = np.log(counts / counts.sum()).astype(np.float32)
    else:
        bias = np.zeros(vocab_size, dtype=np.float32)
    return Model(dataset.vocab.words, counts, emb_in, emb_out, bias, cfg)


class _Worker:
    """One thread's state: its span, RNG streams and scratch buffers."""

    def __init__(self, index: int, span, cfg: Config, vocab_size: int):
        self.index = index
        self.start, self.end = span
        self.cursor = new_cursor(self.start)
        self.epoch = 0
        self.rng_pairs = make_state(cfg.seed, index, PAIRS)
        self.rng_neg = make_state(cfg.seed, index, NEGATIVES)
        self.stamp = np.zeros(vocab_size, dtype=np.int64)
        self.mark = np.zeros(1, dtype=np.int64)
        cap = cfg.max_sentence_length * 2 * cfg.window
        b, s, d = cfg.batch_size, cfg.num_sampled, cfg.dim
        self.kept = np.empty(cfg.max_sentence_length, dtype=np.int32)
        self.centres = np.empty(cap, dtype=np.int32)
        self.contexts = np.empty(cap, dtype=np.int32)
        self.sampled = np.empty(s, dtype=np.int64)
        self.log_q_sampled = np.empty(s, dtype=np.float64)
        self.log_q_true = np.empty(b, dtype=np.float64)
        self.coef_true = np.empty(b, dtype=np.float32)
        self.coef_sampled = np.empty((b, s), dtype=np.float32)
        self.group_start = np.empty(b + 1, dtype=np.int64)
        self.grad_in = np.empty((b, d), dtype=np.float32)
        self.totals = np.zeros(4, dtype=np.float64)


@dataclass
class Progress:
    """Shared by the workers: words done (drives the learning rate) and recent losses."""
    total_words: int
    words_done: int = 0
    pairs: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=40))  # (loss sum, pairs) per job
    epoch_loss: dict = field(default_factory=dict)  # epoch -> [loss sum, pairs]
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recent_loss(self) -> float:
        loss = sum(r[0] for r in self.recent)
        pairs = sum(r[1] for r in self.recent)
        return loss / pairs if pairs else float("nan")


def _run_worker(w: _Worker, model: Model, ds: Dataset, cfg: Config, keep_prob, tables, progress: Progress,
                trace: np.ndarray):
    log_p, log1m_p = tables
    try:
        while w.epoch < cfg.epochs:
            before = w.totals.copy()
            span_done = train_span(
                ds.ids, w.cursor, w.end, _JOB_WORDS, model.emb_in, model.emb_out, model.bias, keep_prob,
                cfg.window, cfg.max_sentence_length, cfg.num_sampled, cfg.unique,
                cfg.remove_accidental_hits, cfg.batch_size, cfg.reduction == "mean", log_p, log1m_p,
                cfg.alpha, cfg.min_alpha, progress.words_done, progress.total_words, w.rng_pairs,
                w.rng_neg, w.stamp, w.mark, w.kept, w.centres, w.contexts, w.sampled, w.log_q_sampled,
                w.log_q_true, w.coef_true, w.coef_sampled, w.group_start, w.grad_in, w.totals, trace)
            words, pairs, loss = (w.totals[:3] - before[:3])
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} in epoch {w.epoch + 1}: the learning rate (alpha="
                    f"{cfg.alpha}) is probably too large for this batch_size/num_sampled; lower it")
            with progress.lock:
                progress.words_done += int(words)
                progress.pairs += int(pairs)
                progress.recent.append((loss, pairs))
                ep = progress.epoch_loss.setdefault(w.epoch, [0.0, 0])
                ep[0] += loss
                ep[1] += int(pairs)
                if progress.error is not None:
                    return
            if span_done:
                w.epoch += 1
                w.cursor = new_cursor(w.start)
    except BaseException as e:  # reported by the main thread
        with progress.lock:
            progress.error = progress.error or e


def fit(dataset: Dataset, cfg: Config, show_progress: bool | None = None, trace: np.ndarray | None = None,
        log=lambda msg: None) -> Model:
    """Train a model on an encoded dataset (all epochs); returns it."""
    validate(cfg, len(dataset.vocab))
    from tqdm import tqdm

    workers = cfg.resolved_workers()
    model = init_model(dataset, cfg)
    keep_prob = keep_probabilities(dataset.vocab.counts, cfg.sample)
    tables = log_tables(len(dataset.vocab))
    progress = Progress(total_words=max(1, dataset.n_words * cfg.epochs))
    trace = trace if trace is not None else np.zeros((0, 2), dtype=np.int32)
    spans = worker_spans(len(dataset.ids), workers)
    state = [_Worker(i, spans[i], cfg, len(dataset.vocab)) for i in range(workers)]
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    bar = tqdm(total=progress.total_words, unit="w", unit_scale=True, disable=not show_progress,
               dynamic_ncols=True, smoothing=0.1)
    threads = [threading.Thread(target=_run_worker, daemon=True,
                                args=(w, model, dataset, cfg, keep_prob, tables, progress, trace))
               for w in state]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    shown = 0
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(timeout=0.25)
        with progress.lock:
            done, loss = progress.words_done, progress.recent_loss()
        bar.update(done - shown)
        shown = done
        bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
    bar.update(progress.words_done - shown)
    bar.close()
    if progress.error is not None:
        raise progress.error
    seconds = time.perf_counter() - t0
    model.train_seconds = seconds
    model.words_per_sec = progress.words_done / seconds if seconds else 0.0
    model.epoch_loss = {e + 1: v[0] / max(1, v[1]) for e, v in sorted(progress.epoch_loss.items())}
    log(f"trained {progress.words_done:,} words ({progress.pairs:,} pairs) in {seconds:.1f}s: "
        f"{model.words_per_sec:,.0f} words/s with {workers} worker(s); mean loss per pair by epoch: "
        + ", ".join(f"{v:.4f}" for v in model.epoch_loss.values()))
    return model


def train(corpus, cfg: Config | None = None, output: str | Path | None = "w2v-run",
          show_progress: bool | None = None, log=lambda msg: None) -> Model:
    """The whole pipeline: corpus file(s) -> vocabulary -> training -> ``output``/vectors.txt.

    ``output`` also receives ``config.yaml``, the resolved config (workers made explicit).
    """
    cfg = validate(cfg or Config())
    cfg = Config(**{**cfg.to_dict(), "workers": cfg.resolved_workers()})
    out = Path(output) if output is not None else None
    if out is not None:
        from .io import OutputError
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create output directory {out}: {e.strerror or e}") from None
    dataset = prepare(corpus, cfg, log)
    log(f"corpus: {dataset.stats['tokens']:,} tokens, {dataset.n_words:,} in a vocabulary of "
        f"{len(dataset.vocab):,} words")
    if dataset.stats.get("invalid_utf8"):
        log(f"warning: replaced {dataset.stats['invalid_utf8']} invalid UTF-8 sequence(s)")
    model = fit(dataset, cfg, show_progress, log=log)
    if out is not None:
        save_config(cfg, out / "config.yaml")
        write_word2vec_text(out / "vectors.txt", model.words, model.emb_in)
        log(f"wrote {out / 'vectors.txt'} ({len(model.words)} x {cfg.dim})")
    return model
