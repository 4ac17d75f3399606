"""The page of ``w2v report``: one self-contained HTML file to explore vectors in a browser.

Everything is inline (the data as JSON, w2v/report_assets' script and styles): it opens from
``file://`` with no server and fetches nothing. The page's words' vectors travel as unit vectors
rounded to float16 (2 bytes a number, base64: 10,000 words of dim 100 are 2.7 MB of text); the
page computes neighbours and 3CosAdd analogies from them as ``w2v.evaluate.Vectors`` does from
the float32 file, so scores differ from ``w2v similar``'s by about 1e-4 (docs/report.md).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
from pathlib import Path

import numpy as np

from .io import OutputError, atomic_write_text

ASSETS = Path(__file__).resolve().parent / "report_assets"
METHODS = ("tsne", "umap", "pca")
TSNE_ITER = 300


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros(vectors.shape, np.float64), where=norms > 0)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """The two directions of largest variance (SVD of the centred vectors) and their share of it."""
    x = np.asarray(vectors, np.float64)
    x = x - x.mean(axis=0)
    _, sv, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    return xy, float((sv[:2] ** 2).sum() / max((sv ** 2).sum(), 1e-12))


def layout(vectors: np.ndarray, method: str | None, log=lambda msg: None) -> tuple[np.ndarray, str, str]:
    """2-D positions of the rows of ``vectors`` by ``method`` (None: tsne when openTSNE is
    installed, else pca), with the method used and a sentence for the page."""
    n = len(vectors)
    if method not in (None, *METHODS):
        raise OutputError(f"unknown map {method!r} (tsne, umap or pca)")
    if method is None:
        try:
            import openTSNE  # noqa: F401

            method = "tsne"
        except ImportError:
            xy, share = pca_2d(vectors)
            return xy, "pca", (f"PCA of the vectors ({share:.0%} of the variance): install the report extra "
                               "(pip install 'w2v[report]') for a t-SNE map, which shows clusters far better")
    if method != "pca" and n < 10:
        xy, share = pca_2d(vectors)
        return xy, "pca", f"PCA of the vectors ({share:.0%} of the variance): too few words for {method}"
    x = _unit(vectors).astype(np.float32)
    if method == "tsne":
        try:
            from openTSNE import TSNE
        except ImportError:
            raise OutputError("--map tsne needs openTSNE: pip install 'w2v[report]'") from None
        perplexity = float(min(30.0, (n - 1) / 3.0))
        log(f"t-SNE map of {n:,} words (openTSNE, perplexity {perplexity:g})")
        # Barnes-Hut up to 5,000 words, FFT above (measured on big.txt's vectors: BH was the faster
        # at 5,000, FFT at 10,000), and 300 iterations after the 250 of early exaggeration instead
        # of 500: at 5,000 words the KL divergence is within 2% of 500's and the 10-NN recall the
        # same (docs/report.md), and the late iterations are the slowest ones
        grad = "bh" if n <= 5000 else "fft"
        xy = np.asarray(TSNE(perplexity=perplexity, metric="cosine", n_jobs=os.cpu_count() or 1, n_iter=TSNE_ITER,
                             negative_gradient_method=grad, random_state=1, verbose=False).fit(x))
        return xy, "tsne", f"t-SNE (openTSNE, cosine, perplexity {perplexity:g}) of the unit vectors"
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise OutputError("--map umap needs umap-learn: pip install umap-learn") from None
        neighbours = int(min(15, n - 1))
        log(f"UMAP map of {n:,} words (umap-learn, {neighbours} neighbours)")
        xy = umap.UMAP(n_neighbors=neighbours, metric="cosine", random_state=1).fit_transform(x)
        return np.asarray(xy, np.float64), "umap", f"UMAP (umap-learn, cosine, {neighbours} neighbours)"
    xy, share = pca_2d(vectors)
    return xy, "pca", f"PCA of the vectors ({share:.0%} of the variance)"


EXACT_K = 10  # neighbours the page holds exactly where its float16 vectors would order them otherwise


def _float16_units(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The page's vectors (unit rows rounded to float16) and, as its script computes with them,
    renormalised in float64."""
    f16 = _unit(vectors).astype("<f2")
    units = f16.astype(np.float64)
    norms = np.linalg.norm(units, axis=1, keepdims=True)
    return f16, np.divide(units, norms, out=np.zeros_like(units), where=norms > 0)


def _top_rows(sims: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def exact_neighbours(words: list[str], vectors: np.ndarray, units: np.ndarray, k: int = EXACT_K,
                     block: int = 1024) -> dict[int, list]:
    """Where the page's float16 vectors would list a word's k nearest words otherwise than
    ``w2v.evaluate.Vectors.most_similar`` among the page's words (two scores within the rounding,
    about 1e-4, swapped; 2% of words on big.txt's vectors): {id: [[neighbour id, score], ...]}
    from the float32 vectors, which the page shows instead."""
    from .evaluate import Vectors

    n = len(words)
    k = min(k, n - 1)
    if k < 1:
        return {}
    vecs = Vectors(words, vectors)
    exact_units = (vecs.vectors / np.where(vecs.norms > 0, vecs.norms, 1)[:, None]).astype(np.float32)
    fixes = {}
    for lo in range(0, n, block):
        rows = np.arange(lo, min(lo + block, n))
        approx = units[rows] @ units.T
        approx[np.arange(len(rows)), rows] = -np.inf
        exact = exact_units[rows] @ exact_units.T
        exact[np.arange(len(rows)), rows] = -np.inf
        a_top = _top_rows(approx, k)
        e_top = _top_rows(exact, min(k + 1, n - 1))
        e_scores = np.take_along_axis(exact, e_top, axis=1)
        # unsure: an order differs, or two of the k+1 best are closer than float32 rounding can tell
        close = (np.diff(-e_scores, axis=1) < 1e-5).any(axis=1)
        for r in np.flatnonzero((a_top != e_top[:, :k]).any(axis=1) | close):
            i = int(rows[r])
            best = vecs.most_similar(words[i], k)
            ids = [vecs.index[w] for w, _ in best]
            if ids != a_top[r].tolist():
                fixes[i] = [[j, round(score, 7)] for j, (_, score) in zip(ids, best, strict=True)]
    return fixes


def _figures(src) -> list[list[str]]:
    rows = [["vocabulary", f"{len(src.words):,} words"], ["dimension", str(src.vectors.shape[1])],
            ["vectors from", src.vectors_from], ["state", src.state]]
    if src.records:
        last = src.records[-1]
        losses = [r["loss"] for r in src.records if r["loss"] is not None]
        rows[:0] = [["words trained", f"{last['words']:,}"],
                    ["time", f"{last['seconds']:,.1f} s"],
                    ["words/s", f"{last['words'] / max(last['seconds'], 1e-9):,.0f}"],
                    ["final loss", f"{losses[-1]:.4f}" if losses else "-"]]
        if isinstance(last.get("epoch"), (int, float)):
            rows.insert(2, ["epoch", f"{last['epoch']:g}"])
    return rows


def _evaluate(src, log) -> dict | None:
    from .evaluate import Vectors, default_eval_files, evaluate_analogies, evaluate_similarity

    analogies, similarity = default_eval_files()
    if not analogies and not similarity:
        log("--eval: no evaluation files in data/ (a source checkout has them); the page has no eval results")
        return None
    vecs = Vectors(src.words, src.vectors)
    return {"analogies": [evaluate_analogies(vecs, p) for p in analogies],
            "similarity": [evaluate_similarity(vecs, p) for p in similarity]}


def _finite(obj):
    """NaN and infinities (a correlation of too few pairs) as null: JSON has no NaN."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _script_json(obj) -> str:
    """JSON safe inside <script>: no '</' can close the element."""
    return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def page_data(src, n_words: int, method: str | None, run_eval: bool = False, log=lambda msg: None) -> dict:
    top = min(n_words, len(src.words))
    vectors = np.asarray(src.vectors[:top], np.float32)
    xy, used, note = layout(vectors, method, log)
    f16, units = _float16_units(vectors)
    xy = np.asarray(xy, np.float64)
    xy -= (xy.max(axis=0) + xy.min(axis=0)) / 2
    xy /= max(float(np.abs(xy).max()), 1e-12)  # into [-1, 1]
    evaluation = _evaluate(src, log) if run_eval else src.eval
    records = [{k: r.get(k) for k in ("words", "seconds", "epoch", "learning_rate", "loss")} for r in src.records]
    return {
        "name": src.name, "state": src.state, "vectors_from": src.vectors_from,
        "vocab_size": len(src.words), "n": top, "dim": int(vectors.shape[1]),
        "words": src.words[:top], "counts": src.counts[:top] if src.counts is not None else None,
        "vectors_f16": _b64(f16, "<f2"), "xy_u16": _b64(np.rint((xy + 1) * 32767.5), "<u2"),
        "exact_k": EXACT_K, "exact": exact_neighbours(src.words[:top], vectors, units),
        "map_method": used, "map_note": note,
        "records": records, "config": src.config, "figures": _figures(src), "eval": evaluation,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def render(data: dict) -> str:
    import html
    import re

    from . import __version__

    template = (ASSETS / "report.html").read_text(encoding="utf-8")
    fill = {"TITLE": html.escape(f"w2v report: {data['name']}"), "VERSION": __version__,
            "SCRIPT": (ASSETS / "report.js").read_text(encoding="utf-8"), "DATA": _script_json(data)}
    return re.sub(r"__W2V_(TITLE|VERSION|SCRIPT|DATA)__", lambda m: fill[m.group(1)], template)


def write_page(src, out, n_words: int = 5000, method: str | None = None, run_eval: bool = False,
               log=lambda msg: None) -> Path:
    """Write the page of ``src`` (a ``w2v.report.Source``) to ``out``, atomically."""
    if n_words < 2:
        raise OutputError("--words must be at least 2")
    html = render(page_data(src, n_words, method, run_eval, log))
    out = Path(out)
    atomic_write_text(out, html)
    return out
