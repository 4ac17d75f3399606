"""Training: a Numba loop over pieces -> pairs -> batches -> one NCE SGD step each.

``train_span`` is the whole inner loop (no Python per batch); Python calls it for about
``_JOB_WORDS`` words at a time per worker, to update the progress bar and the shared word count
that drives the learning rate. Workers are threads on disjoint spans of the id stream sharing
the parameters without locks (Hogwild), each with its own RNG streams and scratch. A worker done
with its epochs takes over the end of another's span (``_take_over``), so the workers end together
instead of one training alone at the end.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os
import threading
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .config import Config, validate
from .dataset import Dataset, check_dataset, drop_pages
from .errors import ResourceError, TrainingError
from .kernel_cache import claim
from .loop import Interrupted, Progress, TrainingLoop  # noqa: F401  (Interrupted: w2v.train's API)
from .nce import Params, nce_sgd_step, step_scratch, step_scratch_bytes, sync_hot_rows
from .pairs import N_PAIRS, NEXT, keep_probabilities, max_batch_rows, new_cursor, next_batch, pair_stream, worker_spans
from .prefetch import prefetch_row
from .rng import NEGATIVES, PAIRS, make_state
from .sampler import draw_log_uniform, floor_table, log_expected_count, log_tables, stamp_size
from .schedule import learning_rate, sync_rows

claim()  # the kernel directory made, held in use and the other versions' pruned

_JOB_WORDS = 50_000
# With several workers, each steps its own copy of the _HOT_ROWS most frequent output rows (the
# rows the sampler draws most: shared, the cores would fight over their cache lines) and syncs it
# with the shared rows every _SYNC_PAIRS pairs: the k-th sync the _SYNC_ROWS * 2^(trailing zero
# bits of k) most frequent, so the hottest rows every 4,096 pairs, all of them every 32,768, and
# all at the start and end of every job (see nce.sync_hot_rows). A sync reads four and writes three
# 400-byte rows per hot row at D = 100, the shared one in lines the other worker writes: the rows
# drawn most often are synced most often. What the other worker did reaches a copy late, and it
# shows in the loss (big.txt, 2 workers: every row every 16,384 pairs, one epoch 2.3796-2.3800;
# these tiers 2.3731-2.3734; the pending-delta buffer before them 2.3732-2.3735; docs/
# performance.md, "Hot rows: a copy per worker").
_HOT_ROWS = 1024
_SYNC_PAIRS = 4096
_SYNC_ROWS = 128
_KERNELS_BYTES = 80 << 20
_PREFETCH_PAIRS = 8  # rows of the next batch prefetched (a window batch has ~4)
# A worker done with its epochs takes over part of another's span while that one has at least this
# many jobs' worth of ids left to train (fewer: the handover's wait would cost more than it saves).
_TAKE_OVER_JOBS = 4


# The kernel's state in named bundles (Numba takes namedtuples of arrays and scalars as they are):
# the model (nce.Params), one worker's pair stream (pairs.PairStream), the sampler's tables, the
# learning-rate schedule of this call, and one worker's negatives and step scratch.
Sampler = namedtuple("Sampler", ["table", "log_p", "log1m_p", "log_num_sampled", "num_sampled", "unique",
                                 "remove_hits"])
Schedule = namedtuple("Schedule", ["alpha", "min_alpha", "words_before", "total_words", "mean_loss"])
Negatives = namedtuple("Negatives", ["rng", "stamp", "mark", "sampled", "log_q_sampled", "log_q_true"])


@njit(cache=True, nogil=True)
def train_span(params, stream, sampler, schedule, neg, scratch, word_budget, totals, trace):
    """Train on ``stream`` until ``word_budget`` words are read (finishing the piece in hand) or
    its span ends; returns True when the span is done. Each batch: draw S negatives once, log Q of
    the sampled ids and the labels, one NCE SGD step.

    ``totals`` accumulates [words, pairs, loss sum, batches]. ``trace`` (int32 [n, 2]), when
    non-empty, records the first n (centre, context) pairs consumed, for tests that compare with
    ``iter_batches``.
    """
    vocab_size = params.emb_out.shape[0]
    by_window, cursor = stream.by_window, stream.cursor
    # window batches: inputs are the contexts, every label the centre; pairs: the other way round
    inputs = stream.contexts if by_window else stream.centres
    labels = stream.centres if by_window else stream.contexts
    # every field taken out of its bundle once: inside the loop each access would count a reference
    # to the array, atomically (profiled: ~7% of the time)
    centres, contexts = stream.centres, stream.contexts
    rng, stamp, mark, sampled = neg.rng, neg.stamp, neg.mark, neg.sampled
    log_q_sampled, log_q_true = neg.log_q_sampled, neg.log_q_true
    table, log_p, log1m_p = sampler.table, sampler.log_p, sampler.log1m_p
    num_sampled, log_num_sampled = sampler.num_sampled, sampler.log_num_sampled
    unique, remove_hits = sampler.unique, sampler.remove_hits
    hot_out, hot_bias = scratch.hot_out, scratch.hot_bias
    hot_base, hot_bias_base = scratch.hot_base, scratch.hot_bias_base
    n_hot = hot_out.shape[0]
    emb_in, emb_out = params.emb_in, params.emb_out
    words = 0
    since_sync = 0
    lr = learning_rate(schedule.alpha, schedule.min_alpha, schedule.words_before, schedule.total_words)
    syncs = 0
    if n_hot:  # the copy of the hot rows from the shared ones (changed since by the others, by a resume)
        sync_hot_rows(params, hot_out, hot_bias, hot_base, hot_bias_base, n_hot, False)
    while True:
        if words >= word_budget and cursor[NEXT] >= cursor[N_PAIRS]:
            break
        b0, b1, n_words = next_batch(stream)
        if n_words:  # a new piece: the learning rate follows the words read so far
            words += n_words
            lr = learning_rate(schedule.alpha, schedule.min_alpha, schedule.words_before + words,
                               schedule.total_words)
        if b0 == b1:
            break
        mark[0] += 1
        tries = draw_log_uniform(rng, vocab_size, table, num_sampled, unique, sampled, stamp, mark[0])
        for s in range(num_sampled):  # their rows start loading now, not when the step gathers them
            prefetch_row(emb_out, sampled[s])
        for s in range(num_sampled):
            log_q_sampled[s] = log_expected_count(sampled[s], tries, num_sampled, log_p, log1m_p, log_num_sampled)
        for r in range(b0, b1):  # a window's rows share their label: one log Q for all
            if r > b0 and labels[r] == labels[r - 1]:
                log_q_true[r - b0] = log_q_true[r - b0 - 1]
            else:
                log_q_true[r - b0] = log_expected_count(labels[r], tries, num_sampled, log_p, log1m_p,
                                                        log_num_sampled)
        # the next batch's rows start loading while this one computes (its pairs are in the piece)
        for r in range(b1, min(b1 + _PREFETCH_PAIRS, cursor[N_PAIRS])):
            prefetch_row(emb_in, inputs[r])
            if labels[r] != labels[r - 1]:
                prefetch_row(emb_out, labels[r])
        step = lr / (b1 - b0) if schedule.mean_loss else lr
        totals[2] += nce_sgd_step(params, inputs, labels, b0, b1, sampled, log_q_sampled, log_q_true, step,
                                  remove_hits, scratch)
        if n_hot:
            since_sync += b1 - b0
            if since_sync >= _SYNC_PAIRS:
                syncs += 1
                sync_hot_rows(params, hot_out, hot_bias, hot_base, hot_bias_base, sync_rows(syncs, _SYNC_ROWS, n_hot),
                              True)
                since_sync = 0
        base = np.int64(totals[1])
        for r in range(b0, min(b1, b0 + trace.shape[0] - base)):
            trace[base + r - b0, 0] = centres[r]
            trace[base + r - b0, 1] = contexts[r]
        totals[1] += b1 - b0
        totals[3] += 1
    if n_hot:
        sync_hot_rows(params, hot_out, hot_bias, hot_base, hot_bias_base, n_hot, True)
    totals[0] += words
    return b0 == b1


@dataclass
class Model:
    words: Sequence[str]
    counts: np.ndarray
    emb_in: np.ndarray  # [V, D] the word vectors
    emb_out: np.ndarray  # [V, D] NCE output weights
    bias: np.ndarray  # [V] NCE biases
    config: Config
    train_seconds: float = 0.0  # filled in when training ends
    words_per_sec: float = 0.0
    epoch_loss: dict = field(default_factory=dict)  # epoch -> mean loss per pair

    def vocab_save(self, path) -> None:
        from .vocab import Vocab

        Vocab(self.words, self.counts).save(path)


def memory_needed(vocab_size: int, n_ids: int, cfg: Config, mapped: bool = False, in_use: int = 0) -> dict:
    """Bytes training will hold: what the process holds already (``in_use``: the interpreter, the
    libraries, the vocabulary), the compiled kernels to load, both [V, D] float32 matrices, the biases,
    the encoded corpus and each worker's scratch. A ``mapped`` corpus (a file's memory map: the
    cache, or the temporary file of --no-cache) is read from disk with its pages let go behind the
    workers: it holds a window of a few jobs a worker (``corpus``), its size is ``corpus_file``,
    outside the total."""
    workers = cfg.resolved_workers()
    # the training kernels, loaded from Numba's cache at the first call, unless this process has
    # them: code and LLVM's memory for loading it (measured: training's peak less the rest of the
    # estimate, 83 MiB on big.txt, ~94 at 20x; the other ~14 there not itemised)
    kernels = 0 if train_span.signatures else _KERNELS_BYTES
    hot_rows = min(_HOT_ROWS, vocab_size) if workers > 1 else 0
    rows = max_batch_rows(cfg)
    per_worker = (stamp_size(vocab_size, cfg.num_sampled) * 8 + cfg.max_sentence_length * (4 + 2 * cfg.window * 12)
                  + rows * 8 + cfg.num_sampled * 16 + step_scratch_bytes(rows, cfg.num_sampled, cfg.dim, hot_rows))
    corpus = min(n_ids * 4, workers * (2 * _JOB_WORDS * 4 + (4 << 20))) if mapped else n_ids * 4
    # tables: keep_prob and the sampler's two log tables (float64 a word)
    parts = {"in_use": in_use, "matrices": 2 * vocab_size * cfg.dim * 4, "biases": vocab_size * 4,
             "corpus": corpus, "workers": workers * per_worker, "tables": vocab_size * 24, "kernels": kernels}
    parts["total"] = sum(parts.values())
    if mapped:
        parts["corpus_file"] = n_ids * 4
    return parts


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def resident_memory() -> int:
    """Bytes this process holds in memory now (0 where /proc is not there to say)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim; elsewhere nothing).
    Setup's temporaries (parsing the vocabulary, the tables, the workers' arrays) are mostly under
    glibc's mmap threshold once a large one has been freed: freed, they stay resident in the heap
    through training (measured: reading a 1.16M-word vocab.txt left 77 MiB resident for 26 MiB
    of arrays, 26 after a trim)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def check_memory(vocab_size: int, n_ids: int, cfg: Config, log=lambda msg: None, mapped: bool = False) -> None:
    release_freed_memory()  # before "in use" is measured: what setup has let go is not in use
    need = memory_needed(vocab_size, n_ids, cfg, mapped, resident_memory())
    mib = {k: v / 2**20 for k, v in need.items()}
    corpus = (f"corpus {mib['corpus']:,.0f} (read from its {mib['corpus_file']:,.0f} MiB file on disk)" if mapped
              else f"corpus {mib['corpus']:,.0f}")
    log(f"training needs about {mib['total']:,.0f} MiB: in use {mib['in_use']:,.0f}, matrices "
        f"{mib['matrices']:,.0f}, biases {mib['biases']:,.1f}, {corpus}, workers {mib['workers']:,.0f}, "
        f"tables {mib['tables']:,.1f}, kernels {mib['kernels']:,.0f}")
    have = physical_memory()
    if have and need["total"] > have:
        raise ResourceError(f"training needs about {mib['total']:,.0f} MiB but this machine has "
                            f"{have / 2**20:,.0f} MiB: lower dim ({cfg.dim}) or the vocabulary (min_count "
                            f"{cfg.min_count}, max_vocab_size {cfg.max_vocab_size})")


def init_model(dataset: Dataset, cfg: Config) -> Model:
    vocab_size, dim = len(dataset.vocab), cfg.dim
    rng = np.random.Generator(np.random.PCG64(cfg.seed))
    # word2vec.c: input vectors uniform in +-0.5/dim, output vectors zero.
    emb_in = rng.random((vocab_size, dim), dtype=np.float32, out=matrix(vocab_size, dim))
    emb_in -= 0.5  # in place: temporaries of a [V, D] matrix would stay in the heap
    emb_in /= dim
    emb_out = matrix(vocab_size, dim)
    counts = dataset.vocab.counts
    if cfg.bias_init == "log_unigram":
        # Start where NCE's logit (an unnormalised log-probability) is the unigram model.
        bias = np.log(counts / counts.sum()).astype(np.float32)
    else:
        bias = np.zeros(vocab_size, dtype=np.float32)
    return Model(dataset.vocab.words, counts, emb_in, emb_out, bias, cfg)


_HUGE_MIN = 4 << 20  # bytes: smaller matrices stay on the heap


def matrix(rows: int, cols: int, like: np.ndarray | None = None) -> np.ndarray:
    """A zeroed float32 [rows, cols] matrix (or a copy of ``like``) in its own anonymous mapping,
    advised to transparent huge pages (MADV_HUGEPAGE) where the OS has them: the step touches
    rows all over both [V, D] matrices, and with 4 KiB pages a large vocabulary's matrices miss
    the TLB on most rows (where THP is "madvise", the default of many distributions, nothing
    else asks for huge pages)."""
    nbytes = rows * cols * 4
    if nbytes < _HUGE_MIN or not hasattr(mmap, "MADV_HUGEPAGE"):
        out = np.zeros((rows, cols), dtype=np.float32)
    else:
        buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        try:
            buf.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass  # no THP here: 4 KiB pages
        out = np.frombuffer(buf, dtype=np.float32).reshape(rows, cols)
    if like is not None:
        out[...] = like
    return out


_LINE = 128  # bytes: a cache line, or the pair of lines some CPUs fetch together


def _own_lines(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` on cache lines of its own. A worker writes its cursor, RNG states, totals and
    negatives every batch; small arrays of two workers allocated side by side would share a line,
    and every write would take it from the other core (false sharing)."""
    buf = np.zeros(a.nbytes + 2 * _LINE, np.uint8)
    off = _LINE - buf.ctypes.data % _LINE
    out = buf[off:off + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def _private(bundle, shared=()):
    """``bundle`` (a namedtuple) with each array field but those named in ``shared`` on lines of its own."""
    return bundle._replace(**{k: _own_lines(v) for k, v in bundle._asdict().items()
                              if isinstance(v, np.ndarray) and k not in shared})


class _Worker:
    """One thread's state: its span, its pair stream (cursor, RNG), negatives and step scratch,
    each array on cache lines no other worker writes."""

    def __init__(self, index: int, span, cfg: Config, ids: np.ndarray, keep_prob: np.ndarray, vocab_size: int):
        self.start, self.end = span
        self.epoch = 0
        self.asked_by: _Worker | None = None  # a worker waiting to take over part of this one's span
        stream = pair_stream(ids, self.start, self.end, keep_prob, cfg, make_state(cfg.seed, index, PAIRS))
        self.stream = _private(stream, shared=("ids", "keep_prob"))
        # stamp[k] == mark flags ids drawn in the current batch; marks only grow, so a resumed
        # worker can start from a zero stamp array and draw the same ids.
        rows, s = max_batch_rows(cfg), cfg.num_sampled
        self.neg = _private(Negatives(make_state(cfg.seed, index, NEGATIVES),
                                      np.zeros(stamp_size(vocab_size, s), np.int64),
                                      np.zeros(1, np.int64), np.empty(s, np.int64), np.empty(s, np.float64),
                                      np.empty(rows, np.float64)))
        n_hot = min(_HOT_ROWS, vocab_size) if cfg.resolved_workers() > 1 else 0  # one worker: no buffer
        self.scratch = _private(step_scratch(rows, s, cfg.dim, n_hot))
        self.totals = _own_lines(np.zeros(4, dtype=np.float64))

    @property
    def cursor(self) -> np.ndarray:
        return self.stream.cursor

    def rewind(self) -> None:
        """Back to the start of the span, for the next epoch."""
        self.stream.cursor[:] = new_cursor(self.start)

    def set_span(self, start: int, end: int) -> None:
        """Train [start, end) from now on (the cursor is left where it is)."""
        self.start, self.end = start, end
        self.stream = self.stream._replace(end=end)


class Trainer(TrainingLoop):
    """Training of one model on one dataset by worker threads in this process (Hogwild), fresh or
    continued from a checkpoint's state. A Ray actor runs one on its shard (w2v.distributed), with
    its workers numbered from ``first_worker`` and the learning rate following ``total_words``."""

    def __init__(self, dataset: Dataset, cfg: Config, model: Model | None = None, first_worker: int = 0,
                 total_words: int | None = None):
        from .checkpoint import check_model

        validate(cfg, len(dataset.vocab))
        check_dataset(dataset)  # the kernels do no bounds checks: what they index with is checked here
        self.dataset, self.cfg = dataset, cfg
        self.model = model or init_model(dataset, cfg)
        check_model(self.model, len(dataset.vocab), cfg.dim)
        vocab_size = len(dataset.vocab)
        keep_prob = keep_probabilities(dataset.vocab.counts, cfg.sample)
        self.workers = [_Worker(first_worker + i, span, cfg, dataset.ids, keep_prob, vocab_size)
                        for i, span in enumerate(worker_spans(len(dataset.ids), cfg.resolved_workers()))]
        self.progress = Progress(total_words=total_words or max(1, dataset.n_words * cfg.epochs))
        self.sampler = Sampler(floor_table(vocab_size), *log_tables(vocab_size), np.log(cfg.num_sampled),
                               cfg.num_sampled, cfg.unique, cfg.remove_accidental_hits)
        # words per call of the kernel: small enough for progress and logs to keep up (and for a
        # signal to stop the run within a fraction of a second), large enough to hide Python
        self.job_words = max(1000, min(_JOB_WORDS, self.progress.total_words // 200))
        release_freed_memory()  # the tables' temporaries

    def _runners(self, trace: np.ndarray | None) -> list[threading.Thread]:
        trace = trace if trace is not None else np.zeros((0, 2), dtype=np.int32)
        if all(w.epoch >= self.cfg.epochs for w in self.workers):
            return []
        # a worker already done (a resumed run) starts by taking over part of another's rest
        return [threading.Thread(target=self._work, args=(w, trace), daemon=True) for w in self.workers]

    def _work(self, w: _Worker, trace: np.ndarray):
        cfg, ds, progress = self.cfg, self.dataset, self.progress
        try:
            while w.epoch < cfg.epochs or self._take_over(w):
                with progress.cond:
                    if not progress.at_boundary():
                        return
                    words_before = progress.words_done
                before = w.totals.copy()
                job_start = int(w.cursor[0])
                span_done = self._train_job(w, words_before, trace)
                # the pages a worker has gone past: dropped, so resident memory does not grow with the corpus
                drop_pages(ds.ids, job_start, w.end if span_done else int(w.cursor[0]))
                words, pairs, loss = (w.totals[:3] - before[:3])
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss} in epoch {w.epoch + 1}: the learning rate (alpha={cfg.alpha}) is "
                        "probably too large for this batch_size/num_sampled; lower alpha")
                epoch = w.epoch
                if span_done:
                    w.epoch += 1
                    w.rewind()
                with progress.cond:
                    self._job_done(w, epoch, int(words), int(pairs), float(loss))
                    if w.asked_by is not None:
                        self._hand_over(w)
        except BaseException as e:  # reported by the main thread
            progress.fail(e)
        finally:
            with progress.cond:
                w.asked_by = None  # a worker waiting on this one looks elsewhere
                progress.finished += 1
                progress.cond.notify_all()

    def _rest(self, w: _Worker) -> int:
        """Ids worker ``w`` has still to train, this epoch and the later ones (0 while another
        worker waits for part of them)."""
        if w.epoch >= self.cfg.epochs or w.asked_by is not None:
            return 0
        return w.end - int(w.cursor[0]) + (self.cfg.epochs - 1 - w.epoch) * (w.end - w.start)

    def _worth_splitting(self, w: _Worker) -> bool:
        return self._rest(w) >= _TAKE_OVER_JOBS * self.job_words

    def _take_over(self, w: _Worker) -> bool:
        """Worker ``w`` has done its epochs: ask the worker with the most left for part of its span,
        and wait for it to hand it over at its next job boundary. True when ``w`` has a part to
        train; False when no worker has enough left (or the run stops)."""
        p = self.progress
        with p.cond:
            while p.at_boundary():
                busy = [v for v in self.workers if v is not w and self._worth_splitting(v)]
                if not busy:
                    return False
                victim = max(busy, key=self._rest)
                victim.asked_by = w
                p.cond.wait_for(lambda v=victim: v.asked_by is not w or p.pause or p.stop or p.error is not None)
                if victim.asked_by is w:  # a pause or a stop came first: withdraw, and ask again after it
                    victim.asked_by = None
                elif w.epoch < self.cfg.epochs:
                    return True
            return False

    def _hand_over(self, w: _Worker) -> None:
        """At a job boundary of ``w`` (under progress.cond): split what ``w`` has left in two equal
        amounts of work, the end of its span going to the worker that asked, for the rest of this
        epoch and the later ones. Every epoch still reads each id once: this epoch ``w`` reads up to
        the cut and the taker from it, later epochs ``w`` its span's start to the cut."""
        taker, w.asked_by = w.asked_by, None
        pos = int(w.cursor[0])
        later = self.cfg.epochs - 1 - w.epoch  # epochs after this one
        if self._worth_splitting(w):
            # w's (cut - pos) + later * (cut - start) = the taker's (1 + later) * (end - cut)
            cut = ((1 + later) * w.end + pos + later * w.start) // (2 + 2 * later)
            cut = min(max(cut, pos), w.end)
            taker.set_span(cut, w.end)
            taker.cursor[:] = new_cursor(cut)
            taker.epoch = w.epoch
            w.set_span(w.start, cut)
        self.progress.cond.notify_all()

    def _job_done(self, w: _Worker, epoch: int, words: int, pairs: int, loss: float) -> None:
        """A job of worker ``w`` (in ``epoch``) is done and ``w`` is at a job boundary; under progress.cond."""
        self.progress.add_job(epoch, words, pairs, loss)

    def _train_job(self, w: _Worker, words_before: int, trace: np.ndarray) -> bool:
        """One call of the kernel: about ``job_words`` words of worker ``w``'s span, at the learning
        rate of ``words_before`` words done. Returns True when the span (the epoch) is done."""
        cfg, model = self.cfg, self.model
        schedule = Schedule(cfg.alpha, cfg.min_alpha, words_before, self.progress.total_words, cfg.reduction == "mean")
        return train_span(Params(model.emb_in, model.emb_out, model.bias), w.stream, self.sampler, schedule, w.neg,
                          w.scratch, self.job_words, w.totals, trace)


    # checkpoint state: everything needed to continue bit for bit (with one worker)
    def worker_arrays(self) -> dict:
        """Every worker's position, RNG streams and totals, stacked in worker order."""
        return {
            "spans": np.array([[w.start, w.end] for w in self.workers], np.int64).reshape(-1, 2),
            "cursors": np.stack([w.cursor for w in self.workers]),
            "epochs": np.array([w.epoch for w in self.workers], np.int64),
            "rng_pairs": np.concatenate([w.stream.rng for w in self.workers]),
            "rng_neg": np.concatenate([w.neg.rng for w in self.workers]),
            "marks": np.concatenate([w.neg.mark for w in self.workers]),
            "totals": np.stack([w.totals for w in self.workers]),
        }

    def load_workers(self, st: dict) -> None:
        from .checkpoint import check_workers

        # the kernels index with it
        spans = check_workers(st, [(w.start, w.end) for w in self.workers], self.cfg)
        if len(st["cursors"]) != len(self.workers):
            raise TrainingError(f"the checkpoint has {len(st['cursors'])} workers; resume with the same number")
        for i, w in enumerate(self.workers):
            w.set_span(*spans[i])
            w.cursor[:] = st["cursors"][i]
            w.epoch = int(st["epochs"][i])
            w.stream.rng[:] = st["rng_pairs"][i:i + 1]
            w.neg.rng[:] = st["rng_neg"][i:i + 1]
            w.neg.mark[:] = st["marks"][i:i + 1]
            w.totals[:] = st["totals"][i]

    def state_arrays(self) -> dict:
        return {**self.worker_arrays(), **progress_arrays(self.progress)}

    def load_state(self, st: dict) -> None:
        from .checkpoint import check_progress

        check_progress(st, self.cfg)
        self.load_workers(st)
        load_progress(self.progress, st)


def progress_arrays(p: Progress) -> dict:
    return {"words_done": np.int64(p.words_done), "pairs": np.int64(p.pairs), "seconds": np.float64(p.seconds),
            "epoch_loss": np.array([[e, v[0], v[1]] for e, v in sorted(p.epoch_loss.items())],
                                   np.float64).reshape(-1, 3)}


def load_progress(p: Progress, st: dict) -> None:
    p.words_done, p.pairs, p.seconds = int(st["words_done"]), int(st["pairs"]), float(st["seconds"])
    p.epoch_loss = {int(e): [loss, int(n)] for e, loss, n in st["epoch_loss"]}


def fit(dataset: Dataset, cfg: Config, show_progress: bool | None = None, trace: np.ndarray | None = None,
        log=lambda msg: None) -> Model:
    """Train a fresh model on an encoded dataset (all epochs, no files); returns it."""
    trainer = Trainer(dataset, cfg)
    trainer.run(show_progress, trace, stop_signals=False)
    return _finish(trainer, log)


def _finish(trainer: Trainer, log) -> Model:
    model, p = trainer.model, trainer.progress
    model.train_seconds = p.seconds
    model.words_per_sec = p.words_done / p.seconds if p.seconds else 0.0
    model.epoch_loss = trainer.epoch_losses()
    log(f"trained {p.words_done:,} words ({p.pairs:,} pairs) in {p.seconds:.1f}s: {model.words_per_sec:,.0f} "
        f"words/s with {trainer.workers_text()}; mean loss per pair by epoch: "
        + ", ".join(f"{v:.4f}" for v in model.epoch_loss.values()))
    return model
