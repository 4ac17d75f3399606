"""``w2v report``: what a run (or a vectors file) holds, as a PNG and as one self-contained page.

This module reads the source (``load_source``: the newest vectors of a run directory, even of a run
still training, with its log, config and eval results; or a vectors file alone), draws the PNG
(loss, learning rate, a PCA map of frequent words) and calls ``w2v.report_html`` for the page.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .io import OutputError

_LOG_KEYS = ("words", "learning_rate", "seconds")

# the files a run directory's vectors can come from (the newest one wins)
_CHECKPOINT = "checkpoint.npz"
_PARTIAL = "vectors.partial.txt"
_FINAL = ("vectors.txt", "vectors.bin", "vectors.npy")


def _log_records(path: Path) -> list[dict]:
    """log.jsonl's records; a line that is not one (the half line of a run killed while appending
    it) is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and all(isinstance(record.get(k), (int, float)) for k in _LOG_KEYS):
            record["loss"] = record["loss"] if isinstance(record.get("loss"), (int, float)) else None
            records.append(record)
    return records


@dataclass
class Source:
    """What a report shows: the vectors (most frequent first) and, for a run directory, the rest."""

    name: str  # the run directory's or the vectors file's name
    words: list[str]
    counts: list[int] | None
    vectors: np.ndarray  # float32 [V, D]
    vectors_from: str  # the file the vectors were read from
    state: str  # one line: finished, training, stopped, a vectors file
    run_dir: Path | None = None
    records: list[dict] = field(default_factory=list)
    config: dict | None = None
    eval: dict | None = None


def _training_now(run_dir: Path) -> bool:
    """Whether a w2v train holds the directory's lock (it takes an exclusive flock on it)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _counts_beside(run_dir: Path, words: list[str]) -> list[int] | None:
    from .vocab import Vocab

    try:
        vocab = Vocab.load(run_dir / "vocab.txt")
    except (OSError, ValueError):
        return None
    return vocab.counts.tolist() if vocab.words == words else None


def _read_vectors_file(path: Path) -> tuple[list[str], np.ndarray]:
    from .io import read_vectors

    try:
        if path.suffix == ".npy":
            from .vocab import Vocab

            vectors = np.load(path, allow_pickle=False)
            words = Vocab.load(path.parent / "vocab.txt").words
            if vectors.ndim != 2 or len(words) != len(vectors) or not np.isfinite(vectors).all():
                raise ValueError(f"its {vectors.shape} array does not match vocab.txt's {len(words)} words")
            return words, vectors.astype(np.float32)
        return read_vectors(path)
    except OutputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise OutputError(f"cannot read vectors {path}: {getattr(e, 'strerror', None) or e}") from None


def _run_vectors(run_dir: Path) -> tuple[Path, list[str], list[int] | None, np.ndarray]:
    """The newest vectors in a run directory: the final file, the last checkpoint of a run still
    training, or vectors.partial.txt of a stopped one."""
    present = [run_dir / n for n in (*_FINAL, _CHECKPOINT, _PARTIAL) if (run_dir / n).is_file()]
    if not present:
        raise OutputError(f"{run_dir} holds no vectors yet (no vectors file, {_CHECKPOINT} or {_PARTIAL}); "
                          "a run still training writes its first checkpoint after checkpoint_interval seconds")
    newest = max(present, key=lambda p: p.stat().st_mtime_ns)
    if newest.name == _CHECKPOINT:
        from .export import load_source as load_run_source

        words, counts, vectors = load_run_source(run_dir, "input")
        return newest, words, counts, vectors
    words, vectors = _read_vectors_file(newest)
    return newest, words, _counts_beside(run_dir, words), vectors


def _read_config(path: Path) -> dict | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _read_eval(path: Path) -> dict | None:
    """``w2v eval --json``'s object saved in the run directory (``w2v eval ... --json > DIR/eval.json``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("analogies"), list) and isinstance(data.get("similarity"), list):
        return data
    return None


def load_source(source) -> Source:
    """A run directory (vectors, log.jsonl, config.yaml, eval.json: whatever is there yet) or a
    word2vec text/binary vectors file alone."""
    source = Path(source)
    if source.is_dir():
        if not any((source / n).exists() for n in ("log.jsonl", "config.yaml", _CHECKPOINT, _PARTIAL, *_FINAL)):
            raise OutputError(f"{source} is not a run directory (no log.jsonl, config.yaml or vectors)")
        path, words, counts, vectors = _run_vectors(source)
        training = _training_now(source)
        if training:
            state = f"training now: the vectors of {path.name}"
        elif path.name == _PARTIAL:
            state = "stopped before the end: the vectors so far (vectors.partial.txt)"
        elif path.name == _CHECKPOINT and not (source / "vectors.tsv").is_file():  # (projector format: finished)
            state = "unfinished: vectors of the last checkpoint"
        else:
            state = "finished"
        log_path = source / "log.jsonl"
        records = _log_records(log_path) if log_path.is_file() else []
        return Source(name=source.resolve().name, words=words, counts=counts, vectors=vectors,
                      vectors_from=path.name, state=state, run_dir=source, records=records,
                      config=_read_config(source / "config.yaml"), eval=_read_eval(source / "eval.json"))
    if not source.exists():
        raise OutputError(f"{source} does not exist (give a run directory or a vectors file)")
    words, vectors = _read_vectors_file(source)
    return Source(name=source.name, words=words, counts=_counts_beside(source.parent, words), vectors=vectors,
                  vectors_from=source.name, state="a vectors file (no run: map and search only)")


def make_png(src: Source, out: Path, n_words: int = 100) -> Path:
    """The PNG: loss and learning-rate curves from log.jsonl, and a PCA map of the frequent words."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import atomic_open
    from .report_html import pca_2d

    records, words = src.records, src.words
    top = min(n_words, len(words))
    xy, explained = pca_2d(src.vectors[:top])

    fig = plt.figure(figsize=(14, 10), dpi=110)
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 2.2])
    ax_loss, ax_lr, ax_map = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])
    done = [r["words"] / 1e6 for r in records]
    ax_loss.plot(done, [r["loss"] if r["loss"] is not None else np.nan for r in records], color="tab:blue")
    ax_loss.set(title="mean NCE loss per pair (recent batches)", xlabel="million words trained", ylabel="loss")
    ax_lr.plot(done, [r["learning_rate"] for r in records], color="tab:orange")
    ax_lr.set(title="learning rate", xlabel="million words trained", ylabel="alpha")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
    ax_map.scatter(xy[:, 0], xy[:, 1], s=6, color="tab:gray")
    for (px, py), w in zip(xy, words[:top], strict=True):
        ax_map.annotate(w, (px, py), fontsize=8, alpha=0.85, xytext=(2, 2), textcoords="offset points")
    ax_map.set(title=f"the {top} most frequent words, PCA of their vectors ({explained:.0%} of the variance)",
               xticks=[], yticks=[])
    if records:
        last = records[-1]
        fig.suptitle(f"w2v run {src.name}: {last['words']:,} words in {last['seconds']:.1f} s "
                     f"({last['words'] / max(last['seconds'], 1e-9):,.0f} words/s)")
    fig.tight_layout()
    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return out


def make_report(source, output=None, n_words: int | None = None, method: str | None = None, html: bool = True,
                run_eval: bool = False, log=lambda msg: None) -> list[Path]:
    """``w2v report``: for a run directory, SOURCE/report.png and (unless ``html`` is False)
    SOURCE/report.html; for a vectors file, the page at ``output``. Returns the files written.

    ``output``: the page's path, or with ``html`` False the PNG's. ``n_words``: words on the page
    (default 5,000); the PNG labels the 100 most frequent (``n_words`` of them with ``html`` False).
    ``method``: the page's map, tsne, umap or pca (default: tsne when openTSNE is installed).
    ``run_eval``: evaluate the vectors with the shipped analogy and similarity sets for the page.
    """
    if not html and output is not None and Path(output).suffix.lower() in (".html", ".htm"):
        raise OutputError(f"--no-html writes only the PNG: give --output a .png name, not {output}")
    if not Path(source).is_dir() and Path(source).exists() and (not html or output is None):
        raise OutputError("a vectors file alone gives a page only: give --output PAGE.html (and no --no-html)")
    src = load_source(source)
    written = []
    if src.run_dir is not None:
        png = Path(output) if (output and not html) else src.run_dir / "report.png"
        png_words = (n_words or 100) if not html else min(n_words or 100, 100)
        try:
            written.append(make_png(src, png, png_words))
        except ImportError:
            if not html:
                raise
            log("no report.png: matplotlib is missing (pip install 'w2v[report]')")
    if html:
        from .report_html import write_page

        page = Path(output) if output else src.run_dir / "report.html"
        written.append(write_page(src, page, n_words or 5000, method, run_eval, log))
    return written
