"""w2v eval against gensim's evaluate_word_analogies / evaluate_word_pairs on the same vectors."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from w2v.cli import main
from w2v.config import Config
from w2v.evaluate import Vectors, _rank, evaluate_analogies, evaluate_similarity
from w2v.run import train

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def demo_vectors(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    cfg = Config(epochs=2, workers=1, cache_dir="", min_count=3, seed=2)
    train([DATA / "demo.txt"], cfg, out, show_progress=False)
    return out / "vectors.txt"


@pytest.fixture(scope="module")
def small_eval_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    lines = (DATA / "questions-words.txt").read_text().splitlines()
    # every section, a slice of each, plus a malformed line
    keep, section_lines = [], 0
    for line in lines:
        if line.startswith(":"):
            keep.append(line)
            section_lines = 0
        elif section_lines < 150:
            keep.append(line)
            section_lines += 1
    keep.insert(3, "only three words")
    (d / "q.txt").write_text("\n".join(keep) + "\n")
    sim = (DATA / "wordsim353.tsv").read_text() + "broken line without score\nfoo\tbar\tnot-a-number\n"
    (d / "sim.tsv").write_text(sim)
    return d / "q.txt", d / "sim.tsv"


@pytest.fixture(scope="module")
def planted_analogies(tmp_path_factory):
    """Vectors where y_i = x_i + offset + noise, and questions x_i : y_i :: x_j : y_j."""
    d = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(5)
    n, dim = 80, 24
    base = rng.normal(size=(n, dim))
    offset = rng.normal(size=dim) * 1.5
    words = [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(n)] + [f"z{i}" for i in range(200)] + ["X3"]
    vecs = np.concatenate([base, base + offset + rng.normal(scale=0.9, size=(n, dim)),
                           rng.normal(size=(200, dim)), rng.normal(size=(1, dim))]).astype(np.float32)
    path = d / "v.txt"
    from w2v.io import write_word2vec_text

    write_word2vec_text(path, words, vecs)
    lines = [": first-half"] + [f"x{i} y{i} x{i + 1} y{i + 1}" for i in range(0, 40)]
    lines += ["only three words", ": second-half"] + [f"X{i} Y{i} x{j} y{j}" for i in range(40, 79) for j in (i + 1,)]
    lines += ["x1 y1 unknownword y2"]
    (d / "q.txt").write_text("\n".join(lines) + "\n")
    return path, d / "q.txt"


@pytest.mark.parametrize("restrict", [30000, 150])
def test_analogy_counts_equal_gensims(planted_analogies, restrict):
    gensim = pytest.importorskip("gensim")
    vectors, q = planted_analogies
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(vectors))
    score, sections = kv.evaluate_word_analogies(str(q), restrict_vocab=restrict)
    ours = evaluate_analogies(Vectors.load(vectors), q, restrict)
    g = [(s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections[:-1]]
    assert [(s["section"], s["correct"], s["total"]) for s in ours["sections"]] == g
    assert ours["correct"] == len(sections[-1]["correct"]) and ours["accuracy"] == pytest.approx(score)
    assert ours["malformed"] == 1
    if restrict == 30000:
        assert 0 < ours["correct"] < ours["total"] and ours["skipped"] == 1
    else:  # y75.. are outside the 150 most frequent: skipped in both
        assert ours["skipped"] > 1


def test_cosmul_scores_planted_analogies(planted_analogies):
    vectors, q = planted_analogies
    add = evaluate_analogies(Vectors.load(vectors), q, 30000, "3cosadd")
    mul = evaluate_analogies(Vectors.load(vectors), q, 30000, "3cosmul")
    # planted offsets are found by both (chance would be ~1 in 360 candidates)
    assert mul["total"] == add["total"] and mul["correct"] > 10 and add["correct"] > 10


def test_similarity_equals_gensims(demo_vectors, small_eval_files):
    gensim = pytest.importorskip("gensim")
    _, sim = small_eval_files
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(demo_vectors))
    pearson, spearman, oov_ratio = kv.evaluate_word_pairs(str(sim))
    ours = evaluate_similarity(Vectors.load(demo_vectors), sim)
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
    assert ours["skipped"] == 2 and ours["oov"] > 0
    assert oov_ratio == pytest.approx(100 * ours["oov"] / (ours["oov"] + ours["pairs"]))


def test_rank_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    x = np.array([3.0, 1.0, 2.0, 2.0, 5.0, 1.0, 2.0])
    assert np.array_equal(_rank(x), stats.rankdata(x))


def test_eval_json_and_table(demo_vectors, small_eval_files):
    q, sim = small_eval_files
    result = CliRunner().invoke(main, ["eval", str(demo_vectors), "--analogies", str(q), "--similarity", str(sim),
                                       "--json", "--method", "both"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [a["method"] for a in out["analogies"]] == ["3cosadd", "3cosmul"]
    for a in out["analogies"]:
        assert set(a) == {"file", "method", "correct", "total", "accuracy", "skipped", "sections"}
        assert all(set(s) == {"section", "correct", "total"} for s in a["sections"])
    assert set(out["similarity"][0]) == {"file", "spearman", "pearson", "pairs", "oov", "skipped"}
    assert "skipped 1 malformed" in result.stderr
    table = CliRunner().invoke(main, ["eval", str(demo_vectors)])
    assert table.exit_code == 0 and "Spearman" in table.output and "capital-common-countries" in table.output


def test_similar_and_analogy_commands(demo_vectors):
    runner = CliRunner()
    out = runner.invoke(main, ["analogy", str(demo_vectors), "man", "king", "woman", "-k", "3"])
    assert out.exit_code == 0 and out.output.startswith("man : king :: woman : ")
    bad = runner.invoke(main, ["analogy", str(demo_vectors), "man", "king", "qwertyuiop"])
    assert bad.exit_code == 1 and "'qwertyuiop' is not in the vocabulary" in bad.output
    missing = runner.invoke(main, ["eval", str(demo_vectors), "--analogies", "nope.txt"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_binary_vectors_are_read_too(demo_vectors, tmp_path):
    CliRunner().invoke(main, ["export", str(demo_vectors), "--to", "binary", str(tmp_path / "v.bin")])
    a, b = Vectors.load(demo_vectors), Vectors.load(tmp_path / "v.bin")
    assert a.words == b.words and np.array_equal(a.vectors, b.vectors)
