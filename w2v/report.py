"""``w2v report``: one PNG with the loss and learning-rate curves and a PCA map of frequent words."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io import OutputError

_LOG_KEYS = ("words", "learning_rate", "seconds")


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


def make_report(run_dir, output=None, n_words: int = 100) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .export import load_source

    run_dir = Path(run_dir)
    log_path = run_dir / "log.jsonl"
    if not log_path.exists():
        raise OutputError(f"{run_dir} is not a run directory (no log.jsonl)")
    records = _log_records(log_path)
    words, _, vectors = load_source(run_dir, "input")
    top = min(n_words, len(words))
    x = vectors[:top] - vectors[:top].mean(axis=0)
    # PCA by SVD of the centred vectors: the two directions of largest variance
    _, sv, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    explained = (sv[:2] ** 2).sum() / max((sv ** 2).sum(), 1e-12)

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
        fig.suptitle(f"w2v run {run_dir.resolve().name}: {last['words']:,} words in {last['seconds']:.1f} s "
                     f"({last['words'] / max(last['seconds'], 1e-9):,.0f} words/s)")
    fig.tight_layout()
    out = Path(output) if output else run_dir / "report.png"
    from .io import atomic_open

    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return out
