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
        xy = np.asarray(TSNE(perplexity=perplexity, metric="cosine", n_jobs=os.cpu_count() or 1,
                             random_state=1, verbose=False).fit(x))
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
    xy = np.asarray(xy, np.float64)
    xy -= (xy.max(axis=0) + xy.min(axis=0)) / 2
    xy /= max(float(np.abs(xy).max()), 1e-12)  # into [-1, 1]
    evaluation = _evaluate(src, log) if run_eval else src.eval
    records = [{k: r.get(k) for k in ("words", "seconds", "epoch", "learning_rate", "loss")} for r in src.records]
    return {
        "name": src.name, "state": src.state, "vectors_from": src.vectors_from,
        "vocab_size": len(src.words), "n": top, "dim": int(vectors.shape[1]),
        "words": src.words[:top], "counts": src.counts[:top] if src.counts is not None else None,
        "vectors_f16": _b64(_unit(vectors), "<f2"), "xy_f32": _b64(xy, "<f4"),
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
