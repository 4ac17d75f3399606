"""w2v phrases: the kernels against their references, the whole pass against plain Python and
gensim's Phrases, word2phrase's rules (left to right, lines as boundaries), bad input."""

import gzip

import numpy as np
import pytest
from click.testing import CliRunner

import w2v.phrases as ph
from w2v.cli import main
from w2v.config import ConfigError
from w2v.corpus import CorpusError
from w2v.io import OutputError


def generated_lines(seed: int, n_lines: int = 1500) -> list[list[str]]:
    """Zipf-distributed words with planted pairs and triples of varied strength, some empty lines."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(300)]
    p = 1 / np.arange(1, len(vocab) + 1)
    planted = [["new", "york"], ["united", "states"], ["new", "york", "times"], ["los", "angeles"],
               ["w1", "w2"], ["w3", "w40", "w41"], ["san", "w0"], ["a", "b", "c", "d"]]
    lines = []
    for _ in range(n_lines):
        line = list(rng.choice(vocab, size=rng.integers(0, 14), p=p / p.sum()))
        for _ in range(rng.integers(0, 3)):
            pos = int(rng.integers(0, len(line) + 1))
            line[pos:pos] = planted[rng.integers(len(planted))]
        lines.append(line)
    return lines


def write_lines(path, lines):
    path.write_text("".join(" ".join(line) + "\n" for line in lines), encoding="utf-8")
    return path


def read_lines(path):
    return [line.split() for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def encode(lines):
    """Ids by first appearance and _LINE_END after each line, as detect encodes them."""
    index, ids = {}, []
    for line in lines:
        ids += [index.setdefault(w, len(index)) for w in line] + [-1]
    return np.array(ids, dtype=np.int32), list(index)


# --- kernels against their references ----------------------------------------------------------

def count_with_table(ids, max_pairs, block):
    table = ph.PairTable(max_pairs)
    prev = -1
    for lo in range(0, len(ids), block):
        prev = table.add(ids[lo:lo + block], prev)
    keys, counts = table.items()
    return table, {(int(k >> 32), int(k & 0xFFFFFFFF)): int(c) for k, c in zip(keys, counts, strict=True)}


@pytest.mark.parametrize("block", [5, 997, 1 << 20])
def test_pair_counts_equal_the_reference_across_blocks_and_growth(block):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 3000, size=150_000).astype(np.int32)
    ids[rng.random(len(ids)) < 0.05] = -1  # line ends
    table, counted = count_with_table(ids, 10**6, block)
    assert len(table.keys) > 65536  # it grew from its first size
    assert counted == ph.count_pairs_reference(ids)
    assert table.size == len(counted) and table.pruned_below == 0


def test_pruning_equals_reduce_vocab_and_bounds_the_table():
    rng = np.random.default_rng(2)
    ids = np.minimum(rng.zipf(1.3, size=40_000), 60).astype(np.int32) - 1
    ids[::17] = -1
    table, counted = count_with_table(ids, 300, 1000)
    reference = ph.count_pairs_reference(ids, max_pairs=300)
    assert counted == reference
    assert table.size <= 300 and table.pruned_below >= 2
    full = ph.count_pairs_reference(ids)
    assert len(full) > 300 and all(c <= full[p] for p, c in counted.items())


@pytest.mark.parametrize("seed", range(20))
def test_pruning_in_place_keeps_every_other_key_reachable(seed):
    # a 64-slot table 70% full has long clusters, many wrapping past the end
    rng = np.random.default_rng(seed)
    pairs = rng.choice(10**6, size=44, replace=False).astype(np.int64)
    counts = rng.integers(1, 5, size=44).astype(np.uint32)
    keys, table_counts = np.full(64, -1, dtype=np.int64), np.zeros(64, dtype=np.uint32)
    ph._insert_all(pairs, counts, keys, table_counts)
    removed = ph._prune_table(keys, table_counts, 2)
    kept = {int(k): int(c) for k, c in zip(pairs, counts, strict=True) if c > 2}
    assert removed == 44 - len(kept)
    assert {int(k): int(c) for k, c in zip(keys, table_counts, strict=True) if k >= 0} == kept
    shift = ph._shift(64)
    assert all(keys[ph._find(keys, k, shift, 63)] == k for k in kept)


def test_memory_bound_is_the_largest_table_and_its_predecessor():
    cap = ph.table_capacity(10_000_000)
    assert cap == 1 << 24 and int(ph.MAX_LOAD * cap) >= 10_000_000 > int(ph.MAX_LOAD * cap / 2)
    assert ph.memory_bound(10_000_000) == 288 * 2**20
    table = ph.PairTable(1000)
    assert table.keys.nbytes + table.counts.nbytes == ph.table_capacity(1000) * ph._SLOT_BYTES


# --- the whole pass -------------------------------------------------------------------------------

@pytest.mark.parametrize("seed, min_count, threshold, passes", [
    (0, 5, 20.0, 1), (1, 3, 5.0, 2), (2, 1, 0.0, 3), (3, 10, 50.0, 2),
])
@pytest.mark.parametrize("small_blocks", [False, True])
def test_detect_equals_the_plain_python_reference(tmp_path, monkeypatch, seed, min_count, threshold, passes,
                                                  small_blocks):
    if small_blocks:  # every carry across blocks and every full output buffer is exercised
        monkeypatch.setattr(ph, "_BLOCK", 7)
        monkeypatch.setattr(ph, "_TEXT_BUFFER", 8)
    lines = generated_lines(seed)
    corpus = write_lines(tmp_path / "c.txt", lines)
    stats = ph.detect([corpus], tmp_path / "out.txt", min_count, threshold, passes=passes,
                      chunk_bytes=64 if small_blocks else 1 << 20)
    out = read_lines(tmp_path / "out.txt")
    assert out == ph.phrases_reference(lines, min_count, threshold, "_", passes)
    assert len(stats) == passes and stats[0].joined > 0
    assert stats[0].tokens == sum(map(len, lines))
    assert sum(map(len, out)) == sum(map(len, lines)) - sum(s.joined for s in stats)


def word2phrase_score(worda_count, wordb_count, bigram_count, len_vocab, min_count, corpus_word_count):
    """The issue's formula, written out for gensim (its default multiplies by len_vocab instead)."""
    if worda_count < min_count or wordb_count < min_count or bigram_count < min_count:
        return 0.0
    return (bigram_count - min_count) / worda_count / wordb_count * corpus_word_count


@pytest.mark.parametrize("seed, min_count, threshold", [(0, 5, 10.0), (4, 3, 40.0), (5, 1, 1.0)])
def test_joined_pairs_equal_gensim_phrases_with_the_word2phrase_score(tmp_path, seed, min_count, threshold):
    from gensim.models.phrases import Phrases

    lines = generated_lines(seed, 3000)
    model = Phrases(lines, min_count=min_count, threshold=threshold, delimiter="_",
                    scoring=word2phrase_score, connector_words=frozenset())
    expected = [model[line] for line in lines]
    ph.detect([write_lines(tmp_path / "c.txt", lines)], tmp_path / "out.txt", min_count, threshold)
    out = read_lines(tmp_path / "out.txt")
    assert out == expected
    joined = {t for line in out for t in line if "_" in t}
    kept = {(a, b) for line in out for a, b in zip(line, line[1:], strict=False) if "_" not in a + b}
    assert len(joined) >= 5 and kept  # some pairs joined, others not


def test_left_to_right_a_joined_word_does_not_join_its_right_neighbour(tmp_path):
    # count(a) = count(b) = count(c) = count(a b) = count(b c) = 10, 130 tokens, min_count 1:
    # both pairs score 9 / 10 / 10 * 130 = 11.7; a_b is taken first, so b c is not joined.
    fillers = [[f"u{i}" for i in range(j, j + 10)] for j in range(0, 100, 10)]
    lines = [["a", "b", "c"]] * 10 + fillers
    corpus = write_lines(tmp_path / "c.txt", lines)
    ph.detect([corpus], tmp_path / "out.txt", min_count=1, threshold=5)
    assert read_lines(tmp_path / "out.txt") == [["a_b", "c"]] * 10 + fillers
    # a second pass over "a_b c": 120 tokens, 9 / 10 / 10 * 120 = 10.8 > 5
    ph.detect([corpus], tmp_path / "out2.txt", min_count=1, threshold=5, passes=2)
    assert read_lines(tmp_path / "out2.txt") == [["a_b_c"]] * 10 + fillers
    ph.detect([corpus], tmp_path / "out3.txt", min_count=1, threshold=11.7)
    assert read_lines(tmp_path / "out3.txt") == lines  # the threshold must be exceeded


def test_lines_are_boundaries_for_counting_and_joining(tmp_path):
    # "x" ends every other line and "y" starts the next: word2phrase counts that pair (it never
    # joins it); here it is not even counted, so even threshold 0 leaves it.
    split = [["x"], ["y"]] * 20
    stats = ph.detect([write_lines(tmp_path / "split.txt", split)], tmp_path / "o1.txt", min_count=1, threshold=0)
    assert read_lines(tmp_path / "o1.txt") == split and stats[0].pairs == 0
    one_line = [["x", "y"] * 20]
    stats = ph.detect([write_lines(tmp_path / "one.txt", one_line)], tmp_path / "o2.txt", min_count=1, threshold=0)
    assert read_lines(tmp_path / "o2.txt") == [["x_y"] * 20] and stats[0].pairs == 2


def test_files_are_boundaries_even_without_a_final_newline(tmp_path):
    first, second = tmp_path / "1.txt", tmp_path / "2.txt"
    first.write_text("b c\n" * 5 + "a b ")  # the last line ends in a space, no newline
    with gzip.open(tmp_path / "3.txt.gz", "wt") as fh:
        fh.write("c a\n" * 5)
    second.write_text("")
    lines = [["b", "c"]] * 5 + [["a", "b"]] + [["c", "a"]] * 5
    ph.detect([tmp_path], tmp_path / "out.txt", min_count=1, threshold=0)
    assert read_lines(tmp_path / "out.txt") == ph.phrases_reference(lines, 1, 0.0)
    assert read_lines(tmp_path / "out.txt")[5] == ["a", "b"]


def test_long_line_read_in_chunks_and_unicode_delimiter(tmp_path):
    words = ["naïve", "café", "über", "straße", "x"]
    rng = np.random.default_rng(3)
    line = [words[i] for i in rng.integers(0, len(words), size=3000)]
    corpus = tmp_path / "c.txt"
    corpus.write_text(" ".join(line), encoding="utf-8")  # one line, no newline, many 64-byte chunks
    ph.detect([corpus], tmp_path / "out.txt", min_count=1, threshold=1.0, delimiter="·", chunk_bytes=64)
    assert read_lines(tmp_path / "out.txt") == ph.phrases_reference([line], 1, 1.0, "·")
    assert "·" in (tmp_path / "out.txt").read_text(encoding="utf-8")


def test_lowercase_and_words_already_holding_the_delimiter(tmp_path):
    lines = [["New", "York", "is", "big"], ["new", "york", "city"], ["new_york"]] * 10
    corpus = write_lines(tmp_path / "c.txt", lines)
    stats = ph.detect([corpus], tmp_path / "out.txt", min_count=1, threshold=0.5, lowercase=True, passes=2)
    lower = [[w.lower() for w in line] for line in lines]
    assert read_lines(tmp_path / "out.txt") == ph.phrases_reference(lower, 1, 0.5, "_", 2)
    first = ph.phrases_reference(lower, 1, 0.5, "_", 1)
    assert ["new_york"] in first and ["new_york", "city"] in first
    # the second pass counts "new_york" joined and "new_york" read as one word
    assert stats[1].words == len({w for line in first for w in line})


def test_pruned_run_equals_the_reference_of_its_pruned_counts(tmp_path):
    lines = generated_lines(6)
    log = []
    stats = ph.detect([write_lines(tmp_path / "c.txt", lines)], tmp_path / "out.txt", 3, 5.0, max_pairs=400,
                      log=log.append)
    ids, words = encode(lines)
    counts = ph.count_pairs_reference(ids, max_pairs=400)
    word_counts = {w: sum(line.count(w) for line in lines) for w in words}
    total = sum(map(len, lines))
    joinable = {(words[a], words[b]) for (a, b), c in counts.items()
                if ph.score_reference(c, word_counts[words[a]], word_counts[words[b]], total, 3) > 5.0}
    assert read_lines(tmp_path / "out.txt") == ph.join_reference(lines, joinable)
    assert stats[0].pruned_below > 1 and stats[0].pairs <= 400
    assert "288 MiB" not in log[0] and "MiB" in log[0] and any("pair table full" in m for m in log)


# --- command line ---------------------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, message):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()  # progress lines may come first
    assert [ln for ln in lines if ln.startswith("w2v: error: ")] == lines[-1:], result.output
    assert message in lines[-1] and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--min-count", "0"], "min_count must be an integer >= 1"),
    (["--threshold", "-1"], "threshold must be a number >= 0"),
    (["--threshold", "nan"], "threshold must be a number >= 0"),
    (["--delimiter", ""], "delimiter must be a non-empty string without whitespace"),
    (["--delimiter", "a b"], "delimiter must be a non-empty string without whitespace"),
    (["--passes", "0"], "passes must be an integer >= 1"),
    (["--max-pairs", "0"], "max_pairs must be an integer >= 1"),
    (["--max-pairs", str(10**12)], "lower max_pairs"),
])
def test_bad_options_are_one_line_and_leave_the_output_alone(tmp_path, args, message):
    corpus = write_lines(tmp_path / "c.txt", generated_lines(0, 50))
    out = tmp_path / "out.txt"
    out.write_text("previous\n")
    assert_one_line_error(invoke("phrases", corpus, "--output", out, *args), message)
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "out.txt"]  # no temporary left


def test_bad_corpus_and_output_are_one_line(tmp_path):
    out = tmp_path / "out.txt"
    assert_one_line_error(invoke("phrases", tmp_path / "nope.txt", "--output", out), "does not exist")
    (tmp_path / "d").mkdir()
    assert_one_line_error(invoke("phrases", tmp_path / "d", "--output", out), "holds no files")
    (tmp_path / "blank.txt").write_text(" \n\t\n")
    assert_one_line_error(invoke("phrases", tmp_path / "blank.txt", "--output", out), "the corpus is empty")
    (tmp_path / "bin.dat").write_bytes(b"\0\1\2" * 100)
    assert_one_line_error(invoke("phrases", tmp_path / "bin.dat", "--output", out), "looks like a binary file")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries
    corpus = write_lines(tmp_path / "c.txt", [["a", "b"]])
    assert_one_line_error(invoke("phrases", corpus, "--output", tmp_path / "d"), "is a directory")
    assert_one_line_error(invoke("phrases", corpus, "--output", tmp_path / "no" / "o.txt"), "cannot write")
    assert_one_line_error(invoke("phrases", corpus), "give --output FILE")
    assert_one_line_error(invoke("phrases", "--output", out), "give a CORPUS")
    with pytest.raises(ConfigError):
        ph.detect([corpus], out, min_count=2.5)
    with pytest.raises(CorpusError):
        ph.detect([tmp_path / "blank.txt"], out)
    with pytest.raises(OutputError):
        ph.detect([corpus], tmp_path / "d")


def test_cli_help_defaults_match_the_api():
    result = invoke("phrases", "--help")
    assert result.exit_code == 0 and "Example" in result.output
    assert f"default: {ph.DEFAULT_MAX_PAIRS}]" in result.output.replace("\n", " ").replace("  ", " ")
    assert f"{ph.memory_bound(ph.DEFAULT_MAX_PAIRS) // 2**20} MiB" in result.output


def test_train_and_sample_pairs_read_the_phrase_corpus(tmp_path):
    corpus = write_lines(tmp_path / "c.txt", generated_lines(7, 800))
    out = tmp_path / "phrased.txt"
    result = invoke("phrases", corpus, "--output", out, "--min-count", "3", "--threshold", "20")
    assert result.exit_code == 0, result.output
    assert "joined most often: " in result.output and "united_states" in out.read_text()
    result = invoke("sample-pairs", out, "--num", "3", "--min-count", "1", "--cache-dir", "")
    assert result.exit_code == 0 and len(result.output.splitlines()) == 3, result.output
    result = invoke("train", out, "--output", tmp_path / "run", "--epochs", "1", "--dim", "8", "--min-count", "3",
                    "--workers", "1", "--cache-dir", "", "--quiet")
    assert result.exit_code == 0, result.output
    assert "united_states" in {ln.split()[0] for ln in (tmp_path / "run" / "vocab.txt").read_text().splitlines()}
