import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from w2v.cli import main
from w2v.config import Config
from w2v.corpus import iter_segments
from w2v.dataset import prepare
from w2v.train import fit

PAIR_KEYS = {"center", "context", "center_id", "context_id"}
OPTS = ["--cache-dir", "", "--min-count", "2", "--window", "3", "--num-sampled", "4",
        "--seed", "9"]


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(3)
    words = [f"w{int(z)}" for z in rng.zipf(1.4, size=20000) if z < 300]
    p = tmp_path / "c.txt"
    p.write_text("\n".join(" ".join(words[i:i + 30]) for i in range(0, len(words), 30)) + "\n")
    return p


def run(*args):
    result = CliRunner().invoke(main, ["sample-pairs", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_jsonl_pairs_are_what_training_consumes(corpus):
    lines = [json.loads(ln) for ln in run(corpus, *OPTS, "--num", 300, "--format", "jsonl", "--negatives")]
    pairs = [r for r in lines if "kind" not in r]
    negs = [r for r in lines if "kind" in r]
    assert len(pairs) == 300 and all(set(r) == PAIR_KEYS for r in pairs)
    assert negs and all(r["kind"] == "negatives" and not PAIR_KEYS & set(r) for r in negs)
    assert all(len(r["sampled"]) == 4 and r["num_tries"] >= 4 for r in negs)
    cfg = Config(min_count=2, window=3, num_sampled=4, seed=9, cache_dir="", workers=1, epochs=1)
    ds = prepare([corpus], cfg)
    trace = np.zeros((300, 2), np.int32)
    fit(ds, cfg, show_progress=False, trace=trace)
    assert [(r["center_id"], r["context_id"]) for r in pairs] == [tuple(t) for t in trace.tolist()]
    assert all(ds.vocab.words[r["center_id"]] == r["center"] for r in pairs)
    # window batches (the default): each negatives record follows its window's pairs, whose centre
    # is the batch's one label and whose contexts are the inputs
    for r in negs:
        window = [p for p in lines[:lines.index(r)] if "kind" not in p][r["first_pair"]:r["first_pair"] + r["pairs"]]
        assert r["inputs"] == "context" and {p["center"] for p in window} == {r["label"]}
        assert len(r["true_expected_count"]) == r["pairs"] >= len(window)  # the last window may be cut by --num
        assert len(window) == r["pairs"] or r is negs[-1]


def test_skip_tsv_and_table_formats(corpus):
    tsv = run(corpus, *OPTS, "--num", 20, "--format", "tsv")
    assert tsv[0] == "center\tcontext\tcenter_id\tcontext_id" and len(tsv) == 21
    rows = [ln.split("\t") for ln in tsv[1:]]
    assert all(len(r) == 4 and r[2].isdigit() and r[3].isdigit() for r in rows)
    skipped = run(corpus, *OPTS, "--num", 5, "--skip", 7, "--format", "tsv")[1:]
    assert skipped == tsv[8:13]
    table = run(corpus, *OPTS, "--num", 4, "--ids")
    assert all(re.fullmatch(r"\s*\d+ w\d+ -> \d+ w\d+", ln) for ln in table)
    assert run(corpus, *OPTS, "--num", 4) == [f"{r[0]} -> {r[1]}" for r in rows[:4]]


def test_stats_table_and_jsonl(corpus):
    st = json.loads(run(corpus, *OPTS, "--stats", "--format", "jsonl", "--sample", "1e-2")[0])
    assert st["kind"] == "stats" and not PAIR_KEYS & set(st)
    assert st["tokens_kept"] < st["in_vocabulary_tokens"] and st["pairs"] > st["tokens_kept"]
    assert 1.0 < st["mean_effective_window"] <= 2.0  # (1+2+3)/3 less the sentence edges
    for w in st["frequent_words"]:
        sd = np.sqrt(w["formula_keep"] * (1 - w["formula_keep"]) / w["read"])
        assert abs(w["observed_keep"] - w["formula_keep"]) < 5 * sd + 1e-9
    assert st["sampler"]["max_abs_error"] < 0.01
    few = json.loads(run(corpus, *OPTS, "--stats", "--format", "jsonl", "--max-tokens", 1000)[0])
    assert few["in_vocabulary_tokens"] == 1000
    table = "\n".join(run(corpus, *OPTS, "--stats"))
    assert "pairs generated" in table and "max abs error" in table


def test_negatives_table_shows_expected_counts_and_hits(corpus):
    out = "\n".join(run(corpus, *OPTS, "--num", 40, "--negatives"))
    assert "sampled in" in out and "labels' Q:" in out and "accidental hits:" in out


@pytest.mark.parametrize("args, message", [
    (["--format", "tsv", "--stats"], "tsv holds pairs only"),
    (["--bogus"], "No such option"),
])
def test_clear_errors(corpus, args, message):
    result = CliRunner().invoke(main, ["sample-pairs", str(corpus), *args])
    assert result.exit_code != 0 and message in result.output


def test_empty_corpus(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text("")
    result = CliRunner().invoke(main, ["sample-pairs", str(p), "--cache-dir", ""])
    assert result.exit_code == 1 and "the corpus is empty" in result.output


def test_one_line_corpus_is_read_in_bounded_segments(tmp_path):
    p = tmp_path / "oneline.txt"
    p.write_text(" ".join(f"w{i % 500}" for i in range(300_000)))  # ~1.7 MB, no newline
    longest = max(len(seg) for seg, _ in iter_segments([p], chunk_bytes=1 << 14))
    assert longest <= (1 << 14) // 2


@pytest.mark.slow
def test_100mb_one_line_file_in_bounded_memory(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "big_oneline.txt"
    words = " ".join(f"word{i % 60000}" for i in range(1_000_000)) + " "
    with open(p, "w") as fh:
        while fh.tell() < 100_000_000:
            fh.write(words)
    code = ("import resource, sys; from w2v.cli import main\ntry: main(sys.argv[1:])\nexcept SystemExit: pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    out = subprocess.run([sys.executable, "-c", code, "sample-pairs", str(p), "--num", "3", "--cache-dir",
                          str(tmp_path / "cache")], capture_output=True, text=True, check=True).stdout.split()
    print("peak RSS MiB", out[-1])
    assert out[:3] == ["word0", "->", "word1"] and int(out[-1]) < 400, out  # MiB: the line is never held whole


def test_the_first_n_tokens_end_where_a_cumulative_count_says_without_one():
    from w2v.inspect import end_of_first_tokens, end_of_first_tokens_reference

    rng = np.random.default_rng(4)
    for length in (0, 1, 5, 300):
        ids = rng.integers(-2, 6, size=length).astype(np.int32)  # -1 sentence ends, -2 out of the vocabulary
        for n in range(1, length + 3):
            assert end_of_first_tokens(ids, n) == end_of_first_tokens_reference(ids, n), (length, n)
