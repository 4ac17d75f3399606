"""The Ray backend (``w2v train --backend ray``): the same training, on one Ray actor per node.

- The driver (``RayTrainer``, in the ``w2v train`` process) counts the vocabulary in Ray tasks over
  byte ranges of the corpus files, starts the actors and holds the synchronised parameters.
- Each actor (``ShardActor``) encodes and caches its own contiguous share of the files (the files
  are at the same path on every node) and trains on it with a local ``Trainer``: ``workers``
  Hogwild threads on its own full copy of the parameters, through the very kernel the local
  backend runs (``Trainer._train_job``).
- Every ``sync_interval`` seconds the driver asks each actor for its change since the last sync
  (its parameters minus its copy of the synchronised ones) on the most frequent rows, adds the
  changes up, adds the sum to the synchronised parameters and sends it back; each actor then
  holds the new synchronised rows plus what its threads changed meanwhile. Adding changes up,
  rather than averaging parameters, keeps the whole update of a rare word that only one shard
  holds. The k-th sync moves the ``sync_rows * 2**(trailing zero bits of k)`` most frequent rows
  (1024, 2048, 1024, 4096, ...), so frequent rows meet every sync and all rows now and then, at
  every epoch boundary and at the end. The word count is global, so the learning rate follows
  the whole run. Training waits for a sync only at checkpoints, and when an actor has trained a
  quarter of its share or 1/64 of its part of the run since the last one (a small corpus, a fast
  kernel): two actors left to train epochs apart from the same start can settle on opposite
  solutions (the vectors' signs are free), whose changes cancel when added up (seen: a 360k-word
  corpus synced 3 times in 3 epochs left 18-26 of 30 words beside another group; one actor, none).
- An actor whose process dies is restarted by Ray and continues from the synchronised parameters
  and its position at the last sync (its work since then is lost); when Ray cannot restart it,
  training stops with a checkpoint to resume from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import threading
import time

import numpy as np
from numba import njit

from .config import Config, ConfigError, validate
from .corpus import CorpusError, corpus_files, split_ranges
from .dataset import Dataset, counted_vocab, shard_dataset
from .errors import TrainingError, WorkersLost
from .kernel_cache import claim
from .loop import Progress, TrainingLoop
from .schedule import sync_rows
from .train import Model, Trainer, init_model, load_progress, memory_needed, progress_arrays, resident_memory
from .vocab import Vocab, count_ranges, merge_counts

claim()  # the kernel directory made, held in use and the other versions' pruned

_COUNT_BYTES = 32 << 20  # corpus bytes per counting task
_RESTARTS = 3  # times Ray restarts an actor whose process died
_RESTART_WAIT_S = 120.0  # how long a restarting actor may take to answer again
# an actor waits for a sync once it has trained a quarter of its share, or 1/64 of its part of the
# run, since the last one (so at least 64 syncs a run: the first ones decide the vectors' signs)
_AHEAD_EPOCH, _AHEAD_RUN = 4, 64


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("backend ray needs Ray, which is not installed: pip install 'w2v[ray]'") from None
    return ray


def combine_changes(changes: list[list[np.ndarray]], damped_rows: int) -> list[np.ndarray]:
    """How the actors' changes since the last sync meet: added up, so a rare word that one shard
    holds keeps its whole update; but the ``damped_rows`` most frequent rows move by at most twice
    the mean change of the actors that moved them. Every actor moves those rows (the frequent
    words, the output rows the sampler draws most) thousands of times between syncs, most of the
    way to where its data pulls them: adding up N such moves goes N times too far (4 actors
    diverged in their first epoch), and twice the mean is the largest step that cannot diverge on a
    row every actor moved all the way (it lands as far past the target as the row was short of it).
    ``changes[i]`` holds actor i's arrays, rows first."""
    total = [np.zeros_like(a) for a in changes[0]]
    for k, t in enumerate(total):
        top = min(damped_rows, len(t))
        movers = np.zeros(top, np.float32)
        for actor in changes:
            np.add(t, actor[k], out=t)
            movers += np.any(actor[k][:top] != 0, axis=1)
        t[:top] /= np.maximum(movers / 2, 1)[:, None]
    return total


@njit(cache=True, nogil=True)
def merge_sync(params, synced, sent, total):
    """An actor's side of a sync, on the first ``len(total)`` rows: ``synced`` (its copy of the
    synchronised rows) grows by ``total`` (every actor's change), and ``params`` becomes the new
    synchronised rows plus whatever its threads changed since it sent ``sent`` (params - synced
    then). Row by row, element by element, so training threads keep running meanwhile (Hogwild)."""
    for r in range(total.shape[0]):
        for k in range(total.shape[1]):
            s = synced[r, k] + total[r, k]
            params[r, k] = s + ((params[r, k] - synced[r, k]) - sent[r, k])
            synced[r, k] = s


def merge_sync_reference(params, synced, sent, total) -> None:
    """NumPy version of ``merge_sync``."""
    n = len(total)
    new = synced[:n] + total
    params[:n] = new + ((params[:n] - synced[:n]) - sent)
    synced[:n] = new


def _snapshot(w) -> dict:
    return {"span": np.array([w.start, w.end], np.int64), "cursor": w.cursor.copy(), "epoch": w.epoch,
            "rng_pairs": w.stream.rng.copy(), "rng_neg": w.neg.rng.copy(), "mark": w.neg.mark.copy(),
            "totals": w.totals.copy()}


def _stack(snaps: list[dict]) -> dict:
    """Worker snapshots as ``Trainer.worker_arrays`` lays them out."""
    return {"spans": np.stack([s["span"] for s in snaps]), "cursors": np.stack([s["cursor"] for s in snaps]),
            "epochs": np.array([s["epoch"] for s in snaps], np.int64),
            "rng_pairs": np.concatenate([s["rng_pairs"] for s in snaps]),
            "rng_neg": np.concatenate([s["rng_neg"] for s in snaps]),
            "marks": np.concatenate([s["mark"] for s in snaps]),
            "totals": np.stack([s["totals"] for s in snaps])}


class _ShardTrainer(Trainer):
    """The Trainer of one actor: it also remembers each worker's state at its last job boundary and
    its words, pairs and loss by epoch, which a sync reports without stopping the threads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_epoch: dict[int, list] = {}  # epoch -> [loss sum, pairs, words]
        self.boundary = [_snapshot(w) for w in self.workers]
        self.since_sync = 0  # words trained since the last sync reached this actor
        n = self.dataset.n_words
        self.ahead_limit = max(self.job_words, min(n // _AHEAD_EPOCH, n * self.cfg.epochs // _AHEAD_RUN))

    def _job_done(self, w, epoch, words, pairs, loss):
        super()._job_done(w, epoch, words, pairs, loss)
        e = self.by_epoch.setdefault(epoch, [0.0, 0, 0])
        e[0] += loss
        e[1] += pairs
        e[2] += words
        self.boundary[next(i for i, x in enumerate(self.workers) if x is w)] = _snapshot(w)
        self.since_sync += words
        if w.epoch < self.cfg.epochs:  # too far ahead of the others: wait for the next sync (a pause or stop ends it)
            p = self.progress
            p.cond.wait_for(lambda: self.since_sync < self.ahead_limit or p.pause or p.stop or p.error is not None)

    def _hand_over(self, w) -> None:
        taker = w.asked_by
        super()._hand_over(w)
        for x in (w, taker):  # both parts changed at this boundary: a sync reports both, or neither
            self.boundary[self.workers.index(x)] = _snapshot(x)

    def synced(self) -> None:
        """A sync has reached this actor (call under progress.cond)."""
        self.since_sync = 0
        self.progress.cond.notify_all()

    def own_words(self) -> int:
        return int(sum(s["totals"][0] for s in self.boundary))


class ShardActor:
    """One node's part of a run (a Ray actor): a share of the corpus, a full copy of the parameters
    and the copy of the synchronised ones it last received, and a Trainer whose threads train."""

    def __init__(self, index: int, share: list, cfg: dict):
        self.index, self.share = index, share
        self.cfg = Config(**cfg)
        self.dataset: Dataset | None = None
        self.trainer: _ShardTrainer | None = None
        self.threads: list[threading.Thread] = []

    def load(self, vocab: tuple) -> dict:
        """Encode the share (or load it from this node's cache); say what it holds and where.
        (The vocabulary comes here, not to the constructor: Ray keeps a constructor's arguments for
        restarts, and warns about large ones.)"""
        import ray

        if self.dataset is None:
            self.vocab = Vocab(*vocab)
            self.dataset = shard_dataset(self.share, self.vocab, self.cfg)
        return {"n_words": self.dataset.n_words, "n_ids": len(self.dataset.ids), "host": socket.gethostname(),
                "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "mapped": self.dataset.mapped, "in_use": resident_memory()}

    def start(self, params: tuple, total_words: int, words_done: int, state: dict | None, by_epoch: dict | None):
        cfg, vocab = self.cfg, self.vocab
        emb_in, emb_out, bias = (np.array(a) for a in params)  # writable copies of the object store's arrays
        self.synced = [np.array(a) for a in params]
        model = Model(vocab.words, vocab.counts, emb_in, emb_out, bias.reshape(-1), cfg)
        tr = _ShardTrainer(self.dataset, cfg, model, first_worker=self.index * cfg.resolved_workers(),
                           total_words=total_words)
        if state is not None:
            tr.load_workers(state)
            tr.boundary = [_snapshot(w) for w in tr.workers]
        tr.by_epoch = {int(e): list(v) for e, v in (by_epoch or {}).items()}
        tr.progress.words_done = words_done
        self.reported = tr.own_words()
        self.trainer = tr
        self.threads = tr._runners(None)
        tr.n_runners = len(self.threads)
        for t in self.threads:
            t.start()

    def _params(self) -> list[np.ndarray]:
        m = self.trainer.model
        return [m.emb_in, m.emb_out, m.bias.reshape(-1, 1)]

    def delta(self, rows: int):
        """What this actor reports at a sync: its progress, its workers' states at their last job
        boundary and its change since the last sync on the first ``rows`` rows."""
        tr = self.trainer
        p = tr.progress
        with p.cond:
            error = p.error
            if error is not None and not isinstance(error, TrainingError):
                error = TrainingError(f"actor {self.index} on {socket.gethostname()}: {type(error).__name__}: {error}")
            report = {"by_epoch": {e: list(v) for e, v in tr.by_epoch.items()}, "state": _stack(tr.boundary),
                      "done": p.finished >= len(self.threads), "error": error}
            self.reported = tr.own_words()
        self.sent = [np.subtract(a[:rows], s[:rows]) for a, s in zip(self._params(), self.synced, strict=True)]
        return report, self.sent

    def apply(self, total: tuple, words_done: int) -> None:
        """The other side of a sync: ``total`` is every actor's change added up; ``words_done`` the
        run's word count at the sync, to which this actor's words since its report are added."""
        for a, s, d, t in zip(self._params(), self.synced, self.sent, total, strict=True):
            merge_sync(a, s, d, t)
        p = self.trainer.progress
        with p.cond:
            p.words_done = words_done + self.trainer.own_words() - self.reported
            self.trainer.synced()

    def pause(self) -> None:
        self.trainer._pause()

    def resume(self) -> None:
        self.trainer._unpause()

    def stop(self) -> None:
        p = self.trainer.progress
        with p.cond:
            p.stop = True
            p.cond.notify_all()

    def join(self) -> None:
        for t in self.threads:
            t.join()

    def parameters(self) -> tuple:
        m = self.trainer.model
        return m.emb_in, m.emb_out, m.bias

    def pid(self) -> int:
        return os.getpid()


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


@contextlib.contextmanager
def _signals_deferred():
    """SIGINT and SIGTERM recorded, not acted on, while Ray starts or stops its processes, then
    delivered to the handlers in place before: a KeyboardInterrupt inside ``ray.init`` or
    ``ray.shutdown`` would leave a half-started local instance whose agents outlive the driver.
    Outside the main thread, or where a signal is ignored, nothing changes."""
    caught: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])  # e.g. KeyboardInterrupt, raised from here


def _import_ray_for(cfg: Config):
    """The ray module, imported with the settings ``cfg.address`` needs."""
    if not cfg.address or _is_loopback(cfg.address):
        # Ray turns 127.0.0.1 into the machine's network address unless told this is a one-machine
        # cluster; then every Ray server listens on loopback only (read when ray is first imported).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    if cfg.address and _is_loopback(cfg.address) and "RAY_AUTH_MODE" not in os.environ \
            and os.path.exists(os.path.expanduser("~/.ray/auth_token")):
        # `ray start` on this machine uses this token; Ray sends it to a cluster it finds on its
        # own but not to one named by address unless told to
        os.environ["RAY_AUTH_MODE"] = "token"
    return import_ray()


def _connect(ray, cfg: Config, need_cpus: int, log) -> bool:
    """Ray as the caller left it (already initialised: used and left running), or joined at
    ``cfg.address``, or a local instance for this run. Returns whether we started it."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if cfg.address:
        host, _, port = cfg.address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot reach the Ray cluster at {cfg.address}: {getattr(e, 'strerror', None) or e}; "
                              "start it with `ray start --head` or give its address") from None
        ray.init(address=cfg.address, **quiet)
        log(f"joined the Ray cluster at {cfg.address}")
    else:
        ray.init(num_cpus=max(os.cpu_count() or 1, need_cpus), **quiet, **_local_temp_dir())
        log("started a local Ray instance")
    return True


# what Ray adds to its temporary root for its longest socket: /ray/session_<date>_<time>_<us>_<pid>/sockets/plasma_store
_RAY_SOCKET_TAIL = len("/ray/session_2026-12-06_19-22-02_630018_4194304/sockets/plasma_store")
_UNIX_PATH_MAX = 107  # bytes of an AF_UNIX socket's path (Linux)


def _local_temp_dir() -> dict:
    """ray.init's temporary directory for a local instance: Ray's own choice (RAY_TMPDIR, else
    TMPDIR on Linux, else the system's), unless its sockets' paths would pass AF_UNIX's 107 bytes
    there (a long TMPDIR: Ray fails to start with an OSError); then /tmp/ray if /tmp is writable.
    (Ray reads TMPDIR on Linux only; elsewhere gettempdir() reads it too.)"""
    if "RAY_TMPDIR" in os.environ:
        return {}  # the user's choice
    root = os.environ.get("TMPDIR") or tempfile.gettempdir()
    if len(os.fsencode(root.rstrip("/"))) + _RAY_SOCKET_TAIL <= _UNIX_PATH_MAX:
        return {}
    if os.access("/tmp", os.W_OK):
        return {"_temp_dir": "/tmp/ray"}
    raise ConfigError(f"the temporary directory {root} is too long a path for Ray's sockets (at most "
                      f"{_UNIX_PATH_MAX - _RAY_SOCKET_TAIL} bytes): set RAY_TMPDIR to a shorter directory")


class _Lost:
    """An actor that died under a call."""

    def __init__(self, error):
        self.error = error


class RayTrainer(TrainingLoop):
    """Training on Ray actors (see the module docstring); the run loop, the run directory and the
    checkpoint are those of the local backend. ``close()`` releases the actors (and the Ray
    instance, when this trainer started it)."""

    def __init__(self, corpus, cfg: Config, log=lambda msg: None, checkpoint: dict | None = None):
        self.log = log
        self.actors: list = []
        self.ray, self._started = None, False
        try:
            self.ray = _import_ray_for(cfg)
            with _signals_deferred():  # _started set before a Ctrl-C meanwhile is raised, so close() stops Ray
                self._started = _connect(self.ray, cfg, max(1, cfg.nodes) * cfg.resolved_workers(), log)
            self._setup(corpus, cfg, checkpoint)
        except BaseException:
            self.close()
            raise

    def _setup(self, corpus, cfg: Config, checkpoint: dict | None) -> None:
        ray, log = self.ray, self.log
        n_nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        nodes, workers = cfg.nodes or n_nodes, cfg.resolved_workers()
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < nodes * workers:
            raise ConfigError(f"the Ray cluster has {cpus:g} CPUs for {nodes} actor(s) x {workers} worker(s): "
                              "lower --nodes or --workers")
        self.cfg = cfg = Config(**{**cfg.to_dict(), "nodes": nodes, "workers": workers})
        files = corpus_files(corpus)
        vocab, stats = counted_vocab(files, cfg, lambda: self._count(files), log)
        validate(cfg, len(vocab))
        shares = split_ranges(files, nodes, cfg.chunk_bytes)
        log(f"ray: {nodes} actor(s) x {workers} worker(s) on {n_nodes} node(s); each encodes its share of the corpus")
        actor_class = ray.remote(ShardActor).options(num_cpus=workers, max_restarts=_RESTARTS, max_task_retries=0,
                                                     scheduling_strategy="SPREAD")
        self._vocab_ref = ray.put((vocab.words, vocab.counts))  # held for the actors' restarts
        self.actors = [actor_class.remote(i, shares[i], cfg.to_dict()) for i in range(nodes)]
        self.info = [self._get(a.load.remote(self._vocab_ref)) for a in self.actors]
        n_words = sum(i["n_words"] for i in self.info)
        self.dataset = Dataset(vocab, np.zeros(0, np.int32), n_words, stats)
        if checkpoint is None:
            self.model = init_model(self.dataset, cfg)
        else:
            self.model = Model(vocab.words, vocab.counts, checkpoint["emb_in"].copy(), checkpoint["emb_out"].copy(),
                               checkpoint["bias"].copy(), cfg)
        self.progress = Progress(total_words=max(1, n_words * cfg.epochs))
        self.states: list[dict | None] = [None] * nodes  # each actor's workers at its last sync
        self.by_epoch: list[dict] = [{} for _ in range(nodes)]  # each actor's [loss, pairs, words] by epoch then
        self.alive = [True] * nodes
        self.round = 0
        self.syncs = {"rounds": 0, "full": 0, "bytes": 0, "seconds": 0.0, "restarts": 0}
        v, d = len(vocab), cfg.dim
        # the largest actor's: what its process holds, its share (on disk when cached), the parameters
        need = max(memory_needed(v, i["n_ids"], cfg, i.get("mapped", False), i.get("in_use", 0))["total"]
                   for i in self.info) + (2 * v * d + v) * 4
        log(f"corpus: {n_words:,} words in a vocabulary of {v:,}; each actor needs about {need / 2**20:,.0f} MiB "
            f"(the parameters twice: trained and last synchronised); a sync of all rows moves "
            f"{(2 * v * d + v) * 4 / 2**20:,.1f} MiB each way per actor")

    def _get(self, ref):
        """ray.get, with the error a task raised (a CorpusError, say) as itself."""
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, (CorpusError, ConfigError, TrainingError, OSError)):
                raise cause from None
            raise

    def _count(self, files):
        """Count the corpus in tasks over byte ranges, merged here in corpus order."""
        cfg = self.cfg
        total = sum(f.stat().st_size for f in files)
        shares = [s for s in split_ranges(files, max(1, -(-total // _COUNT_BYTES)), cfg.chunk_bytes) if s]
        task = self.ray.remote(num_cpus=1)(count_ranges)
        refs = [task.remote(s, cfg.lowercase, cfg.chunk_bytes, cfg.max_vocab_size, cfg.tokenize) for s in shares]
        return merge_counts((self._get(r) for r in refs), cfg.max_vocab_size)

    def workers_text(self) -> str:
        return f"{len(self.actors)} Ray actor(s) x {self.cfg.workers} worker(s)"

    def _global(self) -> list[np.ndarray]:
        m = self.model
        return [m.emb_in, m.emb_out, m.bias.reshape(-1, 1)]

    # checkpoint state: the synchronised parameters (the model) and each actor's workers at the last sync
    def state_arrays(self) -> dict:
        if any(s is None for s in self.states):
            raise TrainingError("no sync has reported every actor's position yet")
        return {**{k: np.concatenate([s[k] for s in self.states]) for k in self.states[0]},
                **progress_arrays(self.progress)}

    def load_state(self, st: dict) -> None:
        w, n = self.cfg.workers, len(self.actors)
        if len(st["cursors"]) != n * w:
            raise TrainingError(f"the checkpoint has {len(st['cursors'])} workers, not {n} actors x {w}")
        self.states = [{k: np.asarray(st[k][i * w:(i + 1) * w]) for k in
                        ("spans", "cursors", "epochs", "rng_pairs", "rng_neg", "marks", "totals") if k in st}
                       for i in range(n)]
        from .checkpoint import check_progress

        check_progress(st, self.cfg)  # the workers' part is checked by each actor's Trainer.load_workers
        load_progress(self.progress, st)

    def _runners(self, trace) -> list[threading.Thread]:
        if trace is not None and len(trace):
            raise ValueError("the Ray backend keeps no pair trace")
        return [threading.Thread(target=self._drive, daemon=True)]

    def _live(self) -> list[int]:
        return [i for i, ok in enumerate(self.alive) if ok]

    def _start(self, indices) -> None:
        p = self.progress
        params = self.ray.put(tuple(self._global()))
        self._calls([(i, self.actors[i].start.remote(params, p.total_words, p.words_done, self.states[i],
                                                      self.by_epoch[i])) for i in indices], restore=False)

    def _drive(self) -> None:
        """The Ray backend's one runner: start the actors, sync them every sync_interval seconds,
        pause them for checkpoints, stop them on a signal, end with a sync of all rows."""
        p = self.progress
        vocab_size = len(self.dataset.vocab)
        try:
            self._start(self._live())
            while True:
                done = self._sync_until_done()
                if not done:
                    self._broadcast("stop")
                self._broadcast("join")
                if self._sync(vocab_size) is not None:
                    break
                # an actor died under the last sync and was restored: it trains on (or stops again)
            s = self.syncs
            self.log(f"ray: {s['rounds']} syncs ({s['full']} of all rows), {s['bytes'] / 2**20:,.0f} MiB sent each "
                     f"way per actor, {1000 * s['seconds'] / max(1, s['rounds']):.1f} ms a sync on average"
                     + (f"; {s['restarts']} actor restart(s)" if s["restarts"] else ""))
        except BaseException as e:
            p.fail(e)
        finally:
            with p.cond:
                p.finished += 1
                p.cond.notify_all()

    def _sync_until_done(self) -> bool:
        """Sync every sync_interval seconds until every actor has finished (True) or a stop or an
        error (False); a checkpoint's pause meanwhile syncs all rows with the actors paused."""
        p, cfg = self.progress, self.cfg
        vocab_size, n_words = len(self.dataset.vocab), max(1, self.dataset.n_words)
        full_epoch = p.words_done // n_words
        next_sync = time.perf_counter() + cfg.sync_interval
        while True:
            with p.cond:
                p.cond.wait_for(lambda: p.pause or p.stop or p.error is not None,
                                timeout=max(0.0, next_sync - time.perf_counter()))
                pause, stop = p.pause, p.stop or p.error is not None
            if stop:
                return False
            if pause:  # a checkpoint: every actor at a job boundary, then all rows meet
                self._broadcast("pause")
                self._sync(vocab_size)
                with p.cond:
                    p.at_boundary()
                self._broadcast("resume")
                continue
            next_sync = time.perf_counter() + cfg.sync_interval
            self.round += 1
            rows = sync_rows.py_func(self.round, cfg.sync_rows, vocab_size)  # plain Python: no kernel to compile here
            if p.words_done // n_words > full_epoch:  # all rows at least once an epoch
                rows, full_epoch = vocab_size, p.words_done // n_words
            if self._sync(rows):
                return True

    def _broadcast(self, method: str) -> None:
        self._calls([(i, getattr(self.actors[i], method).remote()) for i in self._live()])

    def _calls(self, calls, restore: bool = True) -> dict:
        """Results of remote calls by actor; actors that died under them are restored (or lost)."""
        ray = self.ray
        results, lost = {}, []
        for i, ref in calls:
            try:
                results[i] = self._get(ref)
            except ray.exceptions.RayActorError as e:
                results[i] = _Lost(e)
                lost.append(i)
        if lost:
            if not restore:
                self._lose(lost[0], results[lost[0]].error)
            self._restore(lost)
        return results

    def _restore(self, lost: list[int]) -> None:
        """Bring dead actors back (Ray restarts their process) at the synchronised parameters and
        their workers' positions at the last sync."""
        for i in lost:
            where = self.info[i]["host"]
            self.log(f"ray: actor {i} on {where} died; restarting it from the last sync")
            ray = self.ray
            try:
                self._wait_restarted(i)
                self.info[i] = self._get(self.actors[i].load.remote(self._vocab_ref))
                self._start([i])
            except ray.exceptions.RayActorError as e:
                self._lose(i, e)
            self.syncs["restarts"] += 1

    def _wait_restarted(self, i: int) -> None:
        """Until Ray has restarted actor ``i``'s process: a call meanwhile fails with "the actor is
        restarting" (ActorUnavailableError, temporary; seen on a loaded machine), which is not a loss.
        Raises the last such error after _RESTART_WAIT_S seconds."""
        unavailable = getattr(self.ray.exceptions, "ActorUnavailableError", ())
        deadline = time.monotonic() + _RESTART_WAIT_S
        while True:
            try:
                self._get(self.actors[i].pid.remote())
                return
            except unavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _lose(self, i: int, error) -> None:
        """Give up on actor ``i``: the others stop and meet once more, so that the state (their
        work, and actor i's up to its last sync) can be checkpointed and resumed."""
        self.alive[i] = False
        lost = WorkersLost(f"Ray actor {i} on {self.info[i]['host']} died and could not be restarted "
                           f"({type(error).__name__})")
        try:
            self._broadcast("stop")
            self._broadcast("join")
            self._sync(len(self.dataset.vocab))
        except Exception as e:
            raise lost from e
        raise lost

    def _sync(self, rows: int) -> bool | None:
        """One sync of the first ``rows`` rows: True when every actor has finished its epochs, None
        when an actor died under it (it is restored; the others' changes go with the next sync)."""
        ray, p = self.ray, self.progress
        t0 = time.perf_counter()
        live = self._live()
        replies = self._calls([(i, self.actors[i].delta.remote(rows)) for i in live])
        if any(isinstance(r, _Lost) for r in replies.values()):
            return None
        for i in live:
            if replies[i][0]["error"] is not None:
                raise replies[i][0]["error"]
        total = combine_changes([replies[i][1] for i in live], self.cfg.sync_damped_rows)
        for g, t in zip(self._global(), total, strict=True):
            g[:rows] += t
        with p.cond:
            for i in live:
                report = replies[i][0]
                for e, (loss, pairs, words) in report["by_epoch"].items():
                    l0, p0, w0 = self.by_epoch[i].get(e, (0.0, 0, 0))
                    if pairs != p0 or words != w0:
                        p.add_job(e, words - w0, pairs - p0, loss - l0)
                self.by_epoch[i], self.states[i] = report["by_epoch"], report["state"]
            words_done = p.words_done
        shared = ray.put(tuple(total))
        self._calls([(i, self.actors[i].apply.remote(shared, words_done)) for i in live])
        s = self.syncs
        s["rounds"] += 1
        s["full"] += rows == len(self.dataset.vocab)
        s["bytes"] += sum(t.nbytes for t in total)
        s["seconds"] += time.perf_counter() - t0
        return all(replies[i][0]["done"] for i in live)

    def actor_parameters(self) -> list[tuple]:
        """Every live actor's parameters (for tests: after a sync of all rows they equal the model's)."""
        return [self._get(self.actors[i].parameters.remote()) for i in self._live()]

    def actor_pids(self) -> list[int]:
        return [self._get(a.pid.remote()) for a in self.actors]

    def close(self) -> None:
        with _signals_deferred():  # a Ctrl-C now would leave the actors or Ray's processes behind
            ray = self.ray
            for a in self.actors if ray is not None else ():
                try:
                    ray.kill(a)
                except Exception:  # already gone
                    pass
            self.actors = []
            if self._started:
                ray.shutdown()
                self._started = False
