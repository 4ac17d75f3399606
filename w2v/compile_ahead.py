"""Compile the kernels ahead, in two short-lived child processes, off the critical path.

A first run (empty Numba cache) compiles its kernels with LLVM; in the training process that costs
seconds and is that run's memory peak (LLVM's working memory is not given back). ``start``
launches two children (``python -m w2v.compile_ahead``) while the parent counts and encodes the
corpus, one per core of a small machine, each calling its kernels on tiny inputs with the argument
types the parent's will have, so Numba writes them to its cache (keyed by w2v's sources, see
``w2v.kernel_cache``):

- the tokenizer's child prepares a tiny corpus, says so on its stdout (``tokenizer_ready`` waits
  for that line before the parent reads the corpus, so the parent loads those kernels instead of
  compiling them too), then writes a tiny vectors.txt (the number formatter);
- the training child trains on a tiny encoded corpus made without the tokenizer (its ids memory-
  mapped read-only when a corpus cache is used, as the parent's are), so it starts compiling at
  once instead of after the tokenizer (one child doing both in turn started training 4 s later on
  big.txt: docs/performance.md, "First runs").

``wait`` joins both before the parent's first training kernel call, which then loads the kernels
from the cache. With a warm cache no child is started. Nothing here is needed for correctness: if
a child fails, the parent compiles what it lacks as before.

    ahead = compile_ahead.start(cfg)        # first thing
    compile_ahead.tokenizer_ready(ahead)    # before counting the corpus
    ...                                     # count, encode
    compile_ahead.wait(ahead, log)          # before Trainer(...)
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .kernel_cache import child_command

_TOKENIZER_READY = b"tokenizer compiled\n"  # the child's line once the tokenizer's kernels are cached
_PARTS = ("tokenizer", "training")

# the settings that decide the kernels' argument types (the rest only changes sizes and values)
_TYPE_KEYS = ("batch", "unique", "remove_accidental_hits", "reduction", "bias_init", "lowercase")


@dataclass
class Children:
    """The compiling children: ``tokenizer`` (whose stdout says when its kernels are cached) and
    ``training`` (None if it could not be started); ``tmp``: their temporary directory."""
    tokenizer: subprocess.Popen
    training: subprocess.Popen | None = None
    tmp: str | None = None

    def procs(self) -> list[subprocess.Popen]:
        return [p for p in (self.tokenizer, self.training) if p is not None]


def cached() -> bool:
    """Whether Numba's cache (w2v.kernel_cache's directory) already holds the training loop: then
    the children would only load the kernels, so none is started. A kernel cached for other
    argument types is still compiled by the run itself, as it would be without this module."""
    cache = os.environ.get("NUMBA_CACHE_DIR")
    return bool(cache) and any(Path(cache).rglob("*train_span*.nbi"))


def start(cfg) -> Children | None:
    """Launch the compiling children for ``cfg`` (a Config) unless the kernels are cached; None
    if none is started."""
    if cached():
        return None
    settings = {k: v for k, v in asdict(cfg).items() if k in _TYPE_KEYS}
    settings["corpus_cache"] = bool(cfg.cache_dir)
    try:
        # the children's temporary files in a directory of ours, removed when they end: killed
        # (``stop``), they cannot remove them themselves
        tmp = tempfile.mkdtemp(prefix="w2v-compile-")
    except OSError:
        return None
    procs = []
    for part in _PARTS:
        try:
            procs.append(subprocess.Popen(child_command("w2v.compile_ahead", json.dumps(settings), part),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          env={**os.environ, "TMPDIR": tmp}))
        except OSError:
            break
    if not procs:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    return Children(*procs, tmp=tmp)


def tokenizer_ready(ahead: Children | None, timeout: float = 120.0) -> bool:
    """Wait until the tokenizer's child has cached its kernels (True), or has ended or failed, or
    ``timeout`` seconds passed (False: the parent then compiles what it needs itself)."""
    proc = ahead.tokenizer if ahead is not None else None
    if proc is None or proc.stdout is None:
        return False
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            return False
        chunk = os.read(proc.stdout.fileno(), 64)
        if not chunk:  # the child ended without the line
            return False
        line += chunk
    return line == _TOKENIZER_READY


def stop(ahead: Children | None) -> None:
    """End the children early (the run failed before training): no process outlives the run."""
    if ahead is None:
        return
    for proc in ahead.procs():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if ahead.tmp:
        shutil.rmtree(ahead.tmp, ignore_errors=True)


def wait(ahead: Children | None, log=lambda msg: None, timeout: float = 600.0) -> bool:
    """Join the children; True if both filled the cache. On failure the parent simply compiles
    what it lacks."""
    if ahead is None:
        return False
    t = time.perf_counter()
    failed = []
    for part, proc in zip(_PARTS, (ahead.tokenizer, ahead.training), strict=True):
        if proc is None:
            failed.append(f"{part}: not started")
            continue
        try:
            _, err = proc.communicate(timeout=max(0.0, timeout - (time.perf_counter() - t)))
        except subprocess.TimeoutExpired:
            stop(ahead)
            return False
        if proc.returncode != 0:
            failed.append(f"{part}: {err.decode(errors='replace')[-300:]}")
    stop(ahead)  # both have ended: this removes their temporary directory
    if failed:
        log(f"compiling the kernels ahead failed (the run compiles them itself): {'; '.join(failed)}")
        return False
    log(f"kernels compiled ahead (waited {time.perf_counter() - t:.1f}s for them)")
    return True


_TINY_WORDS = 40


def _tiny_sentences() -> list[list[int]]:
    """60 sentences of 12 ids in [0, 40), each id 17 to 19 times."""
    return [[(7 * n + 3 * k) % _TINY_WORDS for k in range(12)] for n in range(60)]


def _tiny_corpus(path: Path) -> None:
    lines = [" ".join(f"w{i}" for i in sentence) for sentence in _tiny_sentences()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _tiny_dataset(tmp: Path, corpus_cache: bool):
    """``_tiny_corpus`` encoded without the tokenizer, its ids of the parent's type: a read-only
    memory map when a corpus cache is used (``dataset._load_cached``), else an array."""
    import numpy as np

    from .dataset import SENTENCE_END, Dataset
    from .vocab import Vocab

    ids = np.array([i for sentence in _tiny_sentences() for i in [*sentence, SENTENCE_END]], dtype=np.int32)
    # the ids' own counts, sorted as a vocabulary's are (the kernels' types are what matters here)
    counts = np.sort(np.bincount(ids[ids >= 0], minlength=_TINY_WORDS))[::-1]
    if corpus_cache:
        ids.tofile(tmp / "ids.int32")
        ids = np.memmap(tmp / "ids.int32", dtype=np.int32, mode="r")
    vocab = Vocab([f"w{i}" for i in range(_TINY_WORDS)], counts)
    return Dataset(vocab, ids, int(counts.sum()), {"tokens": int(counts.sum())})


def main(argv: list[str]) -> None:
    """``SETTINGS tokenizer``: the tokenizer's kernels, the line to the parent, then the number
    formatter's. ``SETTINGS training``: the training kernels."""
    from .config import Config

    settings = json.loads(argv[0])
    corpus_cache = settings.pop("corpus_cache")
    with tempfile.TemporaryDirectory(prefix="w2v-compile-") as tmp:
        tmp = Path(tmp)
        if argv[1] == "tokenizer":
            import numpy as np

            from .dataset import prepare
            from .io import write_word2vec_text

            corpus = tmp / "corpus.txt"
            _tiny_corpus(corpus)
            # two threads: two shares, so their merge is compiled too
            dataset = prepare([corpus], Config(**settings, min_count=1, workers=2, cache_dir=""))
            os.write(sys.stdout.fileno(), _TOKENIZER_READY)  # unbuffered: the parent waits for it
            vectors = np.linspace(-1, 1, 8 * len(dataset.vocab), dtype=np.float32).reshape(len(dataset.vocab), 8)
            write_word2vec_text(tmp / "vectors.txt", dataset.vocab.words, vectors)  # its number kernel
            return
        from .train import fit

        dataset = _tiny_dataset(tmp, corpus_cache)
        # two workers: the multi-worker path (hot-row buffers, their flush) is compiled too; the
        # kernels' types do not depend on the number of workers
        for workers in (1, 2):
            cfg = Config(**settings, dim=8, window=2, min_count=1, epochs=1, num_sampled=2, sample=0.0,
                         workers=workers, cache_dir="")
            fit(dataset, cfg, show_progress=False)


if __name__ == "__main__":
    main(sys.argv[1:])
