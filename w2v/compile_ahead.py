"""Compile the training kernels ahead, in a short-lived child process, off the critical path.

A first run (empty Numba cache) compiles its kernels with LLVM; in the training process that costs
seconds and is that run's memory peak (LLVM's working memory is not given back). ``start`` launches
``python -m w2v.compile_ahead`` while the parent counts and encodes the corpus: the child prepares
and trains on a tiny corpus with the parent's settings, so every kernel training calls is compiled
for the same argument types (the encoded corpus memory-mapped read-only when a corpus cache is used)
and written to Numba's cache (keyed by w2v's sources, see ``w2v.kernel_cache``). The child
compiles the tokenizer's kernels first and says so on its stdout; ``tokenizer_ready`` waits for
that line before the parent reads the corpus, so the parent loads those kernels instead of
compiling them too (LLVM's working memory is not given back: compiling in the training process
made a first run's peak). ``wait`` joins the child before the parent's first training kernel call,
which then loads the kernels from the cache. With a warm cache no child is started. Nothing here
is needed for correctness: if the child fails, the parent compiles as before.

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
from dataclasses import asdict
from pathlib import Path

_TOKENIZER_READY = b"tokenizer compiled\n"  # the child's line once the tokenizer's kernels are cached

# the settings that decide the kernels' argument types (the rest only changes sizes and values)
_TYPE_KEYS = ("batch", "unique", "remove_accidental_hits", "reduction", "bias_init", "lowercase")


def cached() -> bool:
    """Whether Numba's cache (w2v.kernel_cache's directory) already holds the training loop: then
    a child would only load the kernels, so none is started. A kernel cached for other argument
    types is still compiled by the run itself, as it would be without this module."""
    cache = os.environ.get("NUMBA_CACHE_DIR")
    return bool(cache) and any(Path(cache).rglob("*train_span*.nbi"))


def start(cfg) -> subprocess.Popen | None:
    """Launch the compiling child for ``cfg`` (a Config) unless the kernels are cached; None if
    none is started."""
    if cached():
        return None
    settings = {k: v for k, v in asdict(cfg).items() if k in _TYPE_KEYS}
    settings["corpus_cache"] = bool(cfg.cache_dir)
    try:
        # the child's temporary files in a directory of ours, removed when it ends: killed
        # (``stop``), it cannot remove them itself
        tmp = tempfile.mkdtemp(prefix="w2v-compile-")
    except OSError:
        return None
    try:
        proc = subprocess.Popen([sys.executable, "-m", "w2v.compile_ahead", json.dumps(settings)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "TMPDIR": tmp})
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return None
    proc.w2v_tmp = tmp
    return proc


def tokenizer_ready(proc: subprocess.Popen | None, timeout: float = 120.0) -> bool:
    """Wait until the child has cached the tokenizer's kernels (True), or has ended or failed, or
    ``timeout`` seconds passed (False: the parent then compiles what it needs itself)."""
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


def stop(proc: subprocess.Popen | None) -> None:
    """End the child early (the run failed before training): no process outlives the run."""
    if proc is not None:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        _remove_tmp(proc)


def _remove_tmp(proc: subprocess.Popen) -> None:
    if getattr(proc, "w2v_tmp", None):
        shutil.rmtree(proc.w2v_tmp, ignore_errors=True)


def wait(proc: subprocess.Popen | None, log=lambda msg: None, timeout: float = 600.0) -> bool:
    """Join the child; True if it filled the cache. On failure the parent simply compiles itself."""
    if proc is None:
        return False
    t = time.perf_counter()
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        return False
    _remove_tmp(proc)
    if proc.returncode != 0:
        log(f"compiling the kernels ahead failed (the run compiles them itself): {err.decode(errors='replace')[-300:]}")
        return False
    log(f"kernels compiled ahead (waited {time.perf_counter() - t:.1f}s for them)")
    return True


def _tiny_corpus(path: Path) -> None:
    words = [f"w{i}" for i in range(40)]
    lines = [" ".join(words[(7 * n + 3 * k) % len(words)] for k in range(12)) for n in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> None:
    """``SETTINGS``: the tokenizer's kernels, the line to the parent, then this process replaced by
    ``SETTINGS training`` (exec: LLVM's memory from the first part is not carried into the second,
    so the child's peak is the larger part's, not their sum). ``SETTINGS training``: the rest."""
    from .config import Config
    from .dataset import prepare

    settings = json.loads(argv[0])
    corpus_cache = settings.pop("corpus_cache")
    if argv[1:] != ["training"]:
        with tempfile.TemporaryDirectory(prefix="w2v-compile-") as tmp:
            corpus = Path(tmp) / "corpus.txt"
            _tiny_corpus(corpus)
            # two threads: two shares, so their merge is compiled too
            prepare([corpus], Config(**settings, min_count=1, workers=2, cache_dir=""))
        os.write(sys.stdout.fileno(), _TOKENIZER_READY)  # unbuffered: the parent waits for it
        os.execv(sys.executable, [sys.executable, "-m", "w2v.compile_ahead", argv[0], "training"])
    from .io import write_word2vec_text
    from .train import fit

    with tempfile.TemporaryDirectory(prefix="w2v-compile-") as tmp:
        corpus = Path(tmp) / "corpus.txt"
        _tiny_corpus(corpus)
        # two workers: the multi-worker path (hot-row buffers, their flush) is compiled too; the
        # kernels' types do not depend on the number of workers
        for workers in (1, 2):
            # a corpus cache of its own for each: the encoded corpus then comes memory-mapped
            # read-only, as the parent's does (another type for the kernels)
            cfg = Config(**settings, dim=8, window=2, min_count=1, epochs=1, num_sampled=2, sample=0.0,
                         workers=workers, cache_dir=str(Path(tmp) / f"cache{workers}") if corpus_cache else "")
            model = fit(prepare([corpus], cfg), cfg, show_progress=False)
        write_word2vec_text(Path(tmp) / "vectors.txt", model.words, model.emb_in)  # its number kernel


if __name__ == "__main__":
    main(sys.argv[1:])
