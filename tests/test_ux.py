"""What a newcomer trips on (issue 21, items 2-6): options with no effect, one error line, queries,
resume and continue, and the small things (quiet Ctrl-C, too many workers, number formats)."""

import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from w2v.checkpoint import write_arrays
from w2v.cli import main
from w2v.config import FIELDS, Config, ConfigError, load_config
from w2v.continued import continued_config, continued_dataset, continued_model
from w2v.io import read_word2vec_text, write_word2vec_binary, write_word2vec_text
from w2v.pairs import worker_spans
from w2v.run import Run, load_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(result, code, *messages):
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert lines and lines[-1].startswith("w2v: error: "), result.output
    assert not any(ln.startswith(("Usage:", "Try ", "Error:")) for ln in lines), result.output
    assert "Traceback" not in result.output
    for m in messages:
        assert m in lines[-1], result.output


def small_cfg(**kw):
    base = dict(dim=16, window=3, min_count=1, epochs=2, workers=1, cache_dir="", num_sampled=4, sample=0.0, seed=5)
    base.update(kw)
    return Config(**base)


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(2)
    words = [f"w{int(z)}" for z in rng.zipf(1.3, size=8000) if z < 400]
    p = tmp_path / "c.txt"
    p.write_text("\n".join(" ".join(words[i:i + 12]) for i in range(0, len(words), 12)) + "\n")
    return p


# ------------------------------------------------------------------ item 2: options with no effect

def test_batch_size_with_window_batches_is_an_error_naming_why(corpus, tmp_path):
    result = invoke("train", corpus, "--batch-size", "64", "--output", tmp_path / "o", "--cache-dir", "")
    one_error_line(result, 1, "batch_size 64 has no effect with batch 'window'", "--batch pairs")
    assert not (tmp_path / "o" / "config.yaml").exists()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 16\n")
    one_error_line(invoke("sample-pairs", corpus, "--config", cfg), 1, "no effect with batch 'window'")
    assert load_config(None, {"batch": "pairs", "batch_size": 64}).batch_size == 64
    assert load_config(None, {"batch_size": 1}).batch == "window"  # the default, as configs/default.yaml sets it


def test_ray_only_options_are_an_error_on_the_local_backend():
    with pytest.raises(ConfigError, match="sync_rows is an option of the Ray backend"):
        load_config(None, {"sync_rows": 64})
    assert load_config(None, {"sync_rows": 64, "backend": "ray"}).sync_rows == 64


def test_every_sample_pairs_help_example_on_the_demo_runs():
    text = invoke("sample-pairs", "--help").output
    examples = [ln.split()[2:] for ln in text.splitlines() if ln.strip().startswith("w2v sample-pairs data/demo.txt")]
    assert len(examples) >= 3 and any("--batch-size" in ex for ex in examples)
    for ex in examples:
        args = ex[1:] + (["--num", "3"] if "--stats" not in ex else ["--max-tokens", "2000"])
        result = CliRunner().invoke(main, ["sample-pairs", str(ROOT / ex[0]), *args, "--cache-dir", ""])
        assert result.exit_code == 0, (ex, result.output)


def test_docs_config_has_a_row_for_every_key():
    doc = (ROOT / "docs" / "config.md").read_text()
    rows = {m.group(1) for m in re.finditer(r"^\| `(\w+)` \|", doc, re.M)}
    assert set(FIELDS) <= rows, set(FIELDS) - rows
    assert re.search(r"^\| `batch` \| window \|", doc, re.M)


# ------------------------------------------------------------------ item 3: one error line

@pytest.mark.parametrize("args, message", [
    (["train", "c.txt", "--epoch", "3"], "Did you mean '--epochs'?"),
    (["trian", "c.txt"], "Did you mean 'train'?"),
    (["similar"], "Missing argument 'VECTORS'"),
    (["train", "c.txt", "--dim", "abc"], "'abc' is not a valid integer"),
    (["train", "c.txt", "--batch", "both"], "'both' is not one of 'window', 'pairs'"),
    (["eval", "v.txt", "--method", "3cosdiv"], "'3cosdiv' is not one of"),
])
def test_usage_errors_are_one_line_with_exit_2(args, message):
    result = invoke(*args)
    one_error_line(result, 2, message, "--help')")


def test_exit_statuses_are_in_the_help():
    text = invoke("--help").output
    for status in ("0", "1", "2", "130"):
        assert re.search(rf"^ +{status} +\w", text, re.M), text
    assert "w2v: error:" in text


@pytest.fixture
def cased_vectors(tmp_path):
    rng = np.random.default_rng(0)
    words = ["darcy", "elizabeth", "Darcy2", "bingley", "jane", "DARCY3"]
    path = tmp_path / "v.txt"
    write_word2vec_text(path, words, rng.normal(size=(len(words), 8)).astype(np.float32))
    return path


def test_unknown_word_is_an_error_line_and_names_its_other_case(cased_vectors):
    result = invoke("similar", cased_vectors, "Darcy", "jane")
    assert result.exit_code == 1
    assert "w2v: error: 'Darcy' is not in the vocabulary; 'darcy' is" in result.output
    assert "jane: " in result.output  # the other words are still answered
    one_error_line(invoke("analogy", cased_vectors, "Elizabeth", "darcy", "jane"), 1,
                   "'Elizabeth' is not in the vocabulary; 'elizabeth' is")
    one_error_line(invoke("similar", cased_vectors, "xyzzy"), 1, "'xyzzy' is not in the vocabulary")
    assert "; " not in invoke("similar", cased_vectors, "xyzzy").output


def test_bad_yaml_names_the_line(tmp_path, corpus):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("dim: 16\nwindow: 3\n  epochs: 2\n")
    one_error_line(invoke("train", corpus, "--config", cfg), 1, "not valid YAML: line 3", "epochs: 2")


# ------------------------------------------------------------------ item 4: queries

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    rng = np.random.default_rng(0)
    groups = [[f"g{g}w{i}" for i in range(6)] for g in range(5)]
    lines = [" ".join(rng.choice(groups[rng.integers(5)], size=12)) for _ in range(1500)]
    path = tmp / "planted.txt"
    path.write_text("\n".join(lines) + "\n")
    out = tmp / "run"
    train([path], small_cfg(epochs=3), out, show_progress=False)
    return out


@pytest.mark.parametrize("command", [["similar", "g0w0", "g1w1"], ["analogy", "g0w0", "g0w1", "g1w0"], ["eval"]])
def test_queries_take_a_run_directory(finished, command):
    extra = ["--similarity", ROOT / "data" / "wordsim353.tsv"] if command == ["eval"] else []
    by_file = invoke(command[0], finished / "vectors.txt", *command[1:], *extra)
    by_dir = invoke(command[0], finished, *command[1:], *extra)
    assert by_file.exit_code == 0 and by_dir.exit_code == 0, by_dir.output
    assert by_dir.output == by_file.output


def test_queries_read_binary_and_say_so(finished, tmp_path):
    words, vectors = read_word2vec_text(finished / "vectors.txt")
    write_word2vec_binary(tmp_path / "v.bin", words, vectors)
    assert invoke("similar", tmp_path / "v.bin", "g0w0").output == invoke("similar", finished, "g0w0").output
    for command in ("similar", "analogy", "eval"):
        assert "binary" in " ".join(invoke(command, "--help").output.split())


@pytest.fixture
def structured_vectors(tmp_path):
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(300)]
    centres = rng.normal(size=(10, 24))
    vectors = (centres[np.arange(300) % 10] + 0.7 * rng.normal(size=(300, 24))).astype(np.float32)
    path = tmp_path / "v.txt"
    write_word2vec_text(path, words, vectors)
    return path


def _words_of(answers: str) -> list[str]:
    """The words of 'w1 0.912, w2 0.871, ...'."""
    return [item.split()[0] for item in answers.split(", ")]


@pytest.mark.parametrize("positive, negative", [(["w1", "w12"], ["w3"]), (["w5"], ["w7", "w8"]),
                                                (["w0", "w10", "w20"], ["w30"])])
def test_similar_negative_is_gensims_most_similar(structured_vectors, positive, negative):
    gensim = pytest.importorskip("gensim")
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(structured_vectors))
    want = kv.most_similar(positive=positive, negative=negative, topn=8)
    result = invoke("similar", structured_vectors, *positive, *sum((["--negative", w] for w in negative), []),
                    "-k", "8")
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith(" + ".join(positive) + "".join(f" - {w}" for w in negative) + ": ")
    assert _words_of(line.split(": ", 1)[1]) == [w for w, _ in want]
    scores = [float(x.split()[1]) for x in line.split(": ", 1)[1].split(", ")]
    assert np.allclose(scores, [s for _, s in want], atol=1e-3)


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_methods_are_gensims(structured_vectors, method):
    gensim = pytest.importorskip("gensim")
    kv = gensim.models.KeyedVectors.load_word2vec_format(str(structured_vectors))
    for a, b, c in [("w1", "w2", "w11"), ("w40", "w3", "w5"), ("w9", "w19", "w8")]:
        fn = kv.most_similar if method == "3cosadd" else kv.most_similar_cosmul
        want = fn(positive=[b, c], negative=[a], topn=6)
        result = invoke("analogy", structured_vectors, a, b, c, "--method", method, "-k", "6")
        assert result.exit_code == 0, result.output
        answers = result.output.strip().split(" :: ")[1].split(" : ", 1)[1]
        assert _words_of(answers) == [w for w, _ in want]


# ------------------------------------------------------------------ item 5: resume and continue

def _tree(directory):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in Path(directory).iterdir()}


def test_resuming_a_finished_run_says_so_and_changes_nothing(finished):
    before = _tree(finished)
    result = invoke("train", "--resume", finished)
    assert result.exit_code == 0, result.output
    assert f"{finished} is finished (3 epochs" in result.output and "wrote" not in result.output
    assert _tree(finished) == before


def _interrupted(corpus, cfg, out, monkeypatch):
    original = Run.log_line

    def interrupt_once(self, record):  # SIGINT from the first log line on: the run stops and saves
        original(self, record)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Run, "log_line", interrupt_once)
    from w2v.train import Interrupted

    with pytest.raises(Interrupted):
        train([corpus], cfg, out, show_progress=False)
    monkeypatch.setattr(Run, "log_line", original)
    return load_checkpoint(out / "checkpoint.npz")


@pytest.mark.parametrize("before, after", [(2, 1), (1, 3)])
def test_resume_with_another_worker_count_finishes_the_run(planted_corpus, tmp_path, monkeypatch, before, after):
    path, groups = planted_corpus
    cfg = small_cfg(workers=before, epochs=4, log_interval=1e9)
    part = tmp_path / "part"
    ck = _interrupted(path, cfg, part, monkeypatch)
    n_words = int(ck["n_words"])
    assert 0 < int(ck["words_done"]) < 4 * n_words and len(ck["cursors"]) == before
    result = invoke("train", "--resume", part, "--workers", after)
    assert result.exit_code == 0, result.output
    assert f"re-splitting the rest of the run from {before} worker(s) to {after}" in result.output
    done = load_checkpoint(part / "checkpoint.npz")
    assert len(done["cursors"]) == after and (done["epochs"] == 4).all()
    # the words still to read were re-split, not repeated or dropped (up to a piece per worker)
    assert abs(int(done["words_done"]) - 4 * n_words) <= (before + after) * 12
    assert yaml.safe_load((part / "config.yaml").read_text())["workers"] == after
    words, vectors = read_word2vec_text(part / "vectors.txt")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(words)}
    for g in groups:  # still trained: each word's nearest neighbour is in its group
        for w in g[:2]:
            sims = unit @ unit[index[w]]
            sims[index[w]] = -2
            assert words[int(np.argmax(sims))] in g


def test_resplit_puts_each_new_worker_the_same_fraction_into_its_span():
    from w2v.checkpoint import resplit_workers

    cfg = Config(epochs=3, seed=2)
    old = {"words_done": np.int64(1500), "rng_pairs": np.array([1, 2], np.uint64),
           "rng_neg": np.array([3, 4], np.uint64), "totals": np.ones((2, 4))}
    spans = worker_spans(10_000, 4)
    st = resplit_workers(old, spans, 1000, cfg)  # 1.5 epochs of 1000 words done
    assert (st["epochs"] == 1).all() and st["cursors"][:, 0].tolist() == [s + 1250 for s, _ in spans]
    assert st["totals"].sum() == 8 and (st["marks"] == 0).all()
    assert len(set(st["rng_pairs"].tolist() + st["rng_neg"].tolist())) == 8
    again = resplit_workers(old, spans, 1000, cfg)
    assert all((again[k] == st[k]).all() for k in st)  # deterministic


def test_resume_workers_is_refused_only_when_invalid(finished):
    one_error_line(invoke("train", "--resume", finished, "--epochs", "4", "--workers", "-1"), 1, "workers must be >= 0")
    one_error_line(invoke("train", "--resume", finished, "--dim", "8"), 1, "only --epochs, --workers")


def test_a_ray_run_resumes_with_its_own_worker_count(planted_corpus, tmp_path, monkeypatch):
    path, _ = planted_corpus
    part = tmp_path / "part"
    _interrupted(path, small_cfg(workers=1, epochs=4, log_interval=1e9), part, monkeypatch)
    with np.load(part / "checkpoint.npz") as z:  # as if the Ray backend had written it
        data = {k: z[k] for k in z.files}
    data["config"] = np.array(str(data["config"]).replace("backend: local", "backend: ray"))
    write_arrays(part / "checkpoint.npz", data)
    one_error_line(invoke("train", "--resume", part, "--workers", "2"), 1,
                   "is a run of the Ray backend: it resumes with its own --workers (1)")


@pytest.fixture
def pretrained(tmp_path):
    """Vectors for half the planted words and some words the corpus does not have, dim 12."""
    rng = np.random.default_rng(9)
    words = [f"g{g}w{i}" for g in range(5) for i in range(0, 6, 2)] + ["absent1", "absent2"]
    vectors = rng.normal(size=(len(words), 12)).astype(np.float32)
    return words, vectors


@pytest.mark.parametrize("fmt", ["text", "binary"])
def test_init_from_a_vectors_file_starts_known_words_from_it(planted_corpus, pretrained, tmp_path, fmt):
    path, _ = planted_corpus
    words, vectors = pretrained
    vec_path = tmp_path / f"pre.{fmt}"
    (write_word2vec_text if fmt == "text" else write_word2vec_binary)(vec_path, words, vectors)
    cfg = continued_config(vec_path, overrides={"workers": 1, "cache_dir": "", "min_count": 1, "epochs": 1})
    assert cfg.dim == 12 and cfg.alpha == Config().alpha and cfg.init_from == str(vec_path)
    dataset, base, cfg = continued_dataset([str(path)], cfg, tmp_path / "out")
    assert len(dataset.vocab) == 30 and "absent1" not in dataset.vocab.words  # the corpus's own vocabulary
    model = continued_model(dataset, cfg, base)
    row = {w: i for i, w in enumerate(words)}
    for i, w in enumerate(dataset.vocab.words):
        if w in row:
            assert np.array_equal(model.emb_in[i], vectors[row[w]])
        else:
            assert np.abs(model.emb_in[i]).max() <= 0.5 / 12  # fresh, as init_model
    assert not model.emb_out.any()
    counts = dataset.vocab.counts
    assert np.allclose(model.bias, np.log(counts / counts.sum()))


def test_init_from_a_vectors_file_on_the_command_line(planted_corpus, pretrained, tmp_path):
    path, _ = planted_corpus
    words, vectors = pretrained
    write_word2vec_binary(tmp_path / "pre.bin", words, vectors)
    out = tmp_path / "run"
    common = ["--output", out, "--workers", "1", "--epochs", "1", "--cache-dir", "", "--min-count", "1"]
    result = invoke("train", path, "--init-from", tmp_path / "pre.bin", *common)
    assert result.exit_code == 0, result.output
    assert "15 of them start from the vectors in" in result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["init_from"] == str((tmp_path / "pre.bin").resolve()) and saved["dim"] == 12
    assert read_word2vec_text(out / "vectors.txt")[1].shape == (30, 12)
    one_error_line(invoke("train", path, "--init-from", tmp_path / "pre.bin", *common, "--dim", "8", "--overwrite"),
                   1, "holds vectors of dim 12, this run asks for dim 8")
    (tmp_path / "junk.txt").write_text("not a header\n")
    one_error_line(invoke("train", path, "--init-from", tmp_path / "junk.txt", *common, "--overwrite"), 1,
                   "neither a run directory nor a word2vec vectors file")


# ------------------------------------------------------------------ item 6: small things

def test_quiet_ctrl_c_still_prints_the_resume_hint(planted_corpus, tmp_path, monkeypatch):
    path, _ = planted_corpus
    original = Run.log_line

    def interrupt(self, record):
        original(self, record)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Run, "log_line", interrupt)
    out = tmp_path / "run"
    result = invoke("train", path, "--output", out, "--quiet", "--workers", "1", "--cache-dir", "", "--dim", "8")
    assert result.exit_code == 130
    assert result.output.strip().splitlines() == [
        f"w2v: stopped; checkpoint saved; continue with: w2v train --resume {out}"]


def test_more_workers_than_cores_warns(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr("w2v.cli._cpu_cores", lambda: 2)
    common = ["--epochs", "1", "--dim", "8", "--cache-dir", "", "--quiet"]
    result = invoke("train", corpus, "--workers", "64", "--output", tmp_path / "a", *common)
    assert result.exit_code == 0, result.output
    assert "w2v: warning: --workers 64 is more than the 2 CPU core(s)" in result.output
    assert "warning" not in invoke("train", corpus, "--workers", "2", "--output", tmp_path / "b", *common).output


def test_numbers_in_train_output_have_thousands_separators(tmp_path):
    corpus = tmp_path / "wide.txt"
    rng = np.random.default_rng(4)
    corpus.write_text("\n".join(" ".join(f"u{i}" for i in rng.integers(0, 1500, 15)) for _ in range(800)) + "\n")
    result = invoke("train", corpus, "--output", tmp_path / "run", "--epochs", "1", "--dim", "8", "--cache-dir", "",
                    "--min-count", "1", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert re.search(r"vocabulary: \d,\d{3} words", result.output)  # over 1,000 words
    text = " ".join(t for t in result.output.split() if "/" not in t)  # paths hold digits
    assert not re.findall(r"(?<![\d.,e-])\d{4,}(?![\d.])", text), result.output


def test_ctrl_c_statement_agrees_between_help_and_docs():
    help_text = " ".join(invoke("train", "--help").output.split())
    docs = " ".join((ROOT / "docs" / "cli.md").read_text().split())
    statement = "stops within a second"
    assert statement in help_text and statement in docs


def test_demo_size_in_data_readme_is_the_real_one():
    size = os.path.getsize(ROOT / "data" / "demo.txt")
    stated = re.search(r"`demo.txt` \|[^|]*?([\d,]+) bytes", (ROOT / "data" / "README.md").read_text())
    assert stated and int(stated.group(1).replace(",", "")) == size
