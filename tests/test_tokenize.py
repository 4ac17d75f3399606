"""The Numba tokenizer (w2v.tokenize, its kernels in w2v.scan) against the Python path
(corpus.iter_segments), and ``--tokenize words`` as documented (docs/tokenize.md)."""

import gzip
import os
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2v.cli import main
from w2v.config import Config
from w2v.corpus import CorpusError, ReadStats, iter_range_segments, iter_segments, split_line, split_ranges
from w2v.dataset import _encode, _encode_segments, prepare, shard_dataset
from w2v.scan import _prune, prune_reference, remap, remap_reference, word_class_table
from w2v.tokenize import count_pruned, encode_counted, tokenize
from w2v.vocab import build_vocab, count_ranges, count_words, count_words_reference


def reference(paths=None, lowercase=False, mode="whitespace", chunk_bytes=1 << 20, ranges=None):
    """Words in order of first appearance, their counts, the id stream and the ReadStats of the
    Python path."""
    stats, index, stream = ReadStats(), {}, []
    segments = (iter_range_segments(ranges, lowercase, chunk_bytes, stats, mode) if ranges is not None
                else iter_segments(paths, lowercase, chunk_bytes, stats, mode))
    counts = Counter()
    for tokens, ends in segments:
        stream.extend(index.setdefault(t, len(index)) for t in tokens)
        counts.update(tokens)
        if ends:
            stream.append(-1)
    words = list(index)
    return words, [counts[w] for w in words], stream, stats


def assert_same(paths, threads=1, **kw):
    try:
        words, counts, stream, stats = reference(paths, **kw)
    except CorpusError as e:  # refused (a binary file): refused alike
        with pytest.raises(CorpusError) as refused:
            tokenize(paths, threads=threads, **kw)
        assert str(refused.value) == str(e)
        return
    tok = tokenize(paths, threads=threads, **kw)
    assert tok.words() == words
    assert tok.counts.tolist() == counts
    assert tok.stream().tolist() == stream
    assert tok.stats == stats
    with tempfile.TemporaryDirectory() as spill:  # the shares' ids through files: the same stream
        tok = tokenize(paths, threads=threads, spill_dir=Path(spill), **kw)
        assert tok.n_ids() == len(stream)
        assert (tok.words(), tok.stream().tolist(), tok.stats) == (words, stream, stats)
        assert not os.listdir(spill)  # each share's file removed once read back


AWKWARD = {
    "crlf.txt": b"one two\r\nthree\r\n\r\nfour  \r\n",
    "tabs.txt": "a\tb\x0bc\x0cd\x1ce\x1df\x1eg\x1fh\x85i\u00a0j\u2003k\u3000l\u2028m\u2029n\u202fo\u1680p\n".encode(),
    "invalid.txt": b"plain text " * 20 + b"caf\xc3\xa9 bad\xff\xfe seq\xe2\x80 x \xf0\x9f\x98\x80 emoji "
                   b"\xed\xa0\x80sur \xc0\xaf over\n"
                   b"\xe0\x80\x80 \xf4\x90\x80\x80 \xf8 \xef\xbf\xbd real\xc3",
    "empty.txt": b"",
    "blank.txt": b"\n\n  \n",
    "cased.txt": "The Whale, the WHALE. \"Whale!\" ÉCOLE école Straße ΣΑΣ ΟΔΟΣ İstanbul \u212a k\n"
                 "Don't 'quoted' well-known -- rock'n'roll dogs' a-'b x--y café\u0301 Москва 東京 x_y\n"
                 "ends in a space without newline ".encode(),
}


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    d = tmp_path_factory.mktemp("awkward")
    for name, data in AWKWARD.items():
        (d / name).write_bytes(data)
    with gzip.open(d / "zipped.txt.gz", "wb") as fh:
        fh.write(b"gz first line\nThe whale, a \xff whale\nno newline")
    long_line = " ".join(f"w{random.Random(1).randrange(1000)}{i % 97}" for i in range(60_000)).encode()
    (d / "long.txt").write_bytes(long_line)  # one 500 kB line
    return d


@pytest.mark.parametrize("mode", ["whitespace", "words"])
@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("chunk_bytes", [64, 1000, 1 << 20])
def test_directory_of_awkward_files_as_the_python_path(awkward, mode, lowercase, chunk_bytes):
    assert_same([awkward], lowercase=lowercase, mode=mode, chunk_bytes=chunk_bytes)


@pytest.mark.parametrize("threads", [2, 3, 5])
@pytest.mark.parametrize("mode", ["whitespace", "words"])
def test_threads_give_the_ids_of_one_pass(awkward, threads, mode):
    """Shares cut inside the long line and between files: the same ids, counts and sentence ends."""
    assert_same([awkward], threads=threads, lowercase=True, mode=mode, chunk_bytes=256)
    assert_same([awkward / "long.txt", awkward / "crlf.txt"], threads=threads, mode=mode, chunk_bytes=4096)


def test_each_file_alone(awkward):
    for f in sorted(awkward.iterdir()):
        for mode in ("whitespace", "words"):
            assert_same([f], mode=mode, chunk_bytes=64, lowercase=True)


def test_several_files_given_twice_and_gz(awkward):
    files = [awkward / "zipped.txt.gz", awkward / "cased.txt", awkward / "zipped.txt.gz"]
    assert_same(files, threads=2, chunk_bytes=64)


def test_stream_layout(tmp_path):
    f = tmp_path / "c.txt"
    f.write_bytes(b"a b\n\nb c \r\nc")
    tok = tokenize([f])
    assert tok.words() == ["a", "b", "c"]
    assert tok.stream().tolist() == [0, 1, -1, -1, 1, 2, -1, 2, -1]
    assert tok.stats.lines == 4 and tok.stats.tokens == 5


def test_binary_files_refused_as_today(tmp_path):
    f = tmp_path / "bin.dat"
    f.write_bytes(b"abc\0def" * 10)
    with pytest.raises(CorpusError) as python:
        list(iter_segments([f]))
    with pytest.raises(CorpusError) as numba:
        tokenize([f], threads=2)
    assert str(numba.value) == str(python.value)
    g = tmp_path / "junk.dat"
    g.write_bytes(bytes(range(128, 256)) * 8)
    with pytest.raises(CorpusError, match="invalid UTF-8"):
        tokenize([g])


def test_binary_check_sees_the_whole_first_read_with_threads(tmp_path):
    """A NUL past the first share's end but within the first read of the file: refused as today."""
    f = tmp_path / "late-nul.txt"
    f.write_bytes(b"word\n" * 100 + b"\0" + b"more\n" * 100)
    with pytest.raises(CorpusError, match="NUL"):
        list(iter_segments([f], chunk_bytes=4096))
    with pytest.raises(CorpusError, match="NUL"):
        tokenize([f], threads=4, chunk_bytes=4096)


@pytest.mark.parametrize("mode", ["whitespace", "words"])
def test_ray_ranges_as_iter_range_segments(awkward, mode):
    files = [awkward / "long.txt", awkward / "cased.txt", awkward / "zipped.txt.gz", awkward / "invalid.txt"]
    for share in split_ranges(files, 4, chunk_bytes=1000):
        words, counts, stream, stats = reference(ranges=share, mode=mode, chunk_bytes=1000, lowercase=True)
        tok = tokenize(None, True, mode, 1000, ranges=share)
        assert (tok.words(), tok.counts.tolist(), tok.stream().tolist(), tok.stats) == (words, counts, stream, stats)
        counter, cstats = count_ranges(share, True, 1000, 0, mode)
        assert list(counter.items()) == list(zip(words, counts, strict=True))


FRAGMENTS = ["a", "B", "word", "Éé", "ß", "Σ", "İ", "\u212a", "東", "7", "_", " ", "  ", "\t", "\n", "\r\n", "\u00a0",
             "\u3000", "\x85", "\x1c", "'", "\u2019", "-", "--", ",", ".", '"', "!", "\u0301", "\U0001f600"]
RAW = [b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xf0\x9f", b"\xc0\xaf", b"\xef\xbf\xbd"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.one_of(st.sampled_from(FRAGMENTS).map(str.encode), st.sampled_from(RAW)), max_size=80),
       chunk=st.integers(64, 200), threads=st.integers(1, 3), lowercase=st.booleans(),
       mode=st.sampled_from(["whitespace", "words"]))
def test_property_random_bytes(tmp_path_factory, parts, chunk, threads, lowercase, mode):
    d = tmp_path_factory.mktemp("prop")
    data = b"".join(parts) * 3
    (d / "a.txt").write_bytes(data)
    (d / "b.txt").write_bytes(data[: len(data) // 2])
    assert_same([d], threads=threads, lowercase=lowercase, mode=mode, chunk_bytes=chunk)


def test_words_mode_as_documented():
    text = "The whale, the Whale. \"Whale!\" Don't 'quoted' well-known -- dogs' x--y Café Straße Москва 東京 3.14 $5"
    expected = ["the", "whale", "the", "whale", "whale", "don't", "quoted", "well-known", "dogs", "x", "y", "café",
                "straße", "москва", "東京", "3", "14", "5"]
    assert split_line(text, "words", lowercase=True) == expected


def test_words_mode_kernel_on_the_documented_sample(tmp_path):
    f = tmp_path / "raw.txt"
    f.write_text("The whale, the Whale. \"Whale!\"\nDon't 'quoted' well-known -- Café\n", encoding="utf-8")
    tok = tokenize([f], lowercase=True, mode="words")
    assert tok.words() == ["the", "whale", "don't", "quoted", "well-known", "café"]
    assert tok.counts.tolist() == [2, 3, 1, 1, 1, 1]


def test_code_point_classes_as_python():
    table = word_class_table()
    space = np.array([chr(c).isspace() for c in range(0x110000)])
    assert np.array_equal((table & 1).astype(bool), space)
    word = np.flatnonzero(table & 2)
    assert chr(word[0]) == "0" and "_" in map(chr, word[:100])
    assert all(chr(c).isalnum() or chr(c) == "_" or __import__("unicodedata").category(chr(c))[0] == "M"
               for c in word.tolist()[::97])


def test_remap_equals_reference():
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, 50, size=1000).astype(np.int32)
    mapping = rng.integers(-2, 30, size=50).astype(np.int32)
    want = remap_reference(ids, mapping)
    got = ids.copy()
    assert got[:remap(got, mapping)].tolist() == want.tolist()


@pytest.mark.parametrize("mode", ["whitespace", "words"])
def test_prepare_equals_the_python_path(awkward, tmp_path, mode):
    cfg = Config(min_count=2, lowercase=True, tokenize=mode, cache_dir=str(tmp_path / "cache"), chunk_bytes=128,
                 workers=2)
    counts, _ = _python_counts([awkward], cfg)
    vocab = build_vocab(counts, cfg.min_count)
    ids = np.concatenate(list(_encode([awkward], vocab, cfg)))
    for _ in range(2):  # built, then loaded from the cache
        ds = prepare([awkward], cfg)
        assert ds.vocab.words == vocab.words and ds.vocab.counts.tolist() == vocab.counts.tolist()
        assert np.asarray(ds.ids).tolist() == ids.tolist()
    ds = prepare([awkward], Config(**{**cfg.to_dict(), "cache_dir": ""}))
    assert np.asarray(ds.ids).tolist() == ids.tolist()


def _python_counts(paths, cfg):
    stats = ReadStats()
    counts = Counter()
    for tokens, _ in iter_segments(paths, cfg.lowercase, cfg.chunk_bytes, stats, cfg.tokenize):
        counts.update(tokens)
    return counts, stats


@pytest.mark.parametrize("cached", [False, True])
def test_shard_encoding_equals_the_python_path(awkward, tmp_path, cached):
    cfg = Config(min_count=1, tokenize="words", chunk_bytes=1000, cache_dir=str(tmp_path / "cache") if cached else "")
    files = sorted(awkward.iterdir())
    counts, _ = _python_counts(files, cfg)
    vocab = build_vocab(counts, 1)
    for share in split_ranges(files, 3, 1000):
        want = list(_encode_segments(iter_range_segments(share, False, 1000, ReadStats(), "words"), vocab))
        want = np.concatenate(want).tolist() if want else []
        for _ in range(1 + cached):  # encoded, then loaded from the cache
            got = shard_dataset(share, vocab, cfg)
            assert np.asarray(got.ids).tolist() == want and got.stats["n_ids"] == len(want)


def _zipf_corpus(path, n_tokens=30_000, n_words=3_000, seed=0, line=12):
    """Zipfian text over ``n_words`` words in lines of ``line`` tokens; some capitalised, some non-ASCII."""
    rng = np.random.default_rng(seed)
    p = 1 / np.arange(1, n_words + 1)
    words = np.array([("Ä" if i % 97 == 5 else "") + (f"W{i}" if i % 13 == 0 else f"w{i}") for i in range(n_words)])
    ids = rng.choice(n_words, size=n_tokens, p=p / p.sum())
    path.write_text("\n".join(" ".join(words[ids[i:i + line]]) for i in range(0, n_tokens, line)) + "\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("chunk_bytes", [64, 4096, 1 << 20])
@pytest.mark.parametrize("mode,lowercase", [("whitespace", False), ("words", True)])
def test_max_vocab_size_prunes_in_the_numba_counter_as_the_reference_does(tmp_path, chunk_bytes, mode, lowercase):
    f = _zipf_corpus(tmp_path / "c.txt")
    for cap in (2, 50, 400):
        counts, stats = count_words([f], lowercase, chunk_bytes, cap, mode)
        want, want_stats = count_words_reference([f], lowercase, chunk_bytes, cap, mode)
        assert list(counts.items()) == list(want.items())  # the counts and the order of first appearance
        assert stats.pruned_below == want_stats.pruned_below > 2 and stats.read == want_stats.read
        assert len(counts) <= 2 * cap
        ranges = split_ranges([f], 3, chunk_bytes)[1]
        got, got_stats = count_ranges(ranges, lowercase, chunk_bytes, cap, mode)
        want, want_stats = count_words_reference(None, lowercase, chunk_bytes, cap, mode, ranges=ranges)
        assert list(got.items()) == list(want.items()) and got_stats.pruned_below == want_stats.pruned_below


def test_prune_kernel_matches_its_reference():
    rng = np.random.default_rng(3)
    words = [f"w{i}" + "x" * int(rng.integers(0, 12)) for i in range(500)]  # short and long (pooled) tokens
    f = Path(tempfile.mkdtemp()) / "c.txt"
    f.write_text(" ".join(rng.choice(words, size=5000)))
    tokens = tokenize([f])
    before = dict(zip(tokens.words(), tokens.counts.tolist(), strict=True))
    for min_reduce in (1, 5, 9, 100):
        counted = count_pruned([f], cap=10**9)  # a table that never prunes, kept for encoding
        t = counted._counted
        k = _prune(t.table.slots, t.table.hashes, t.table.offsets, t.table.counts, t.table.pool, t.n_ent, min_reduce)
        t.n_ent = k
        want = prune_reference(before, min_reduce)
        pool, offsets = t.table.pool.tobytes(), t.table.offsets
        got = {pool[offsets[e]:offsets[e + 1]].decode(): int(t.table.counts[e]) for e in range(k)}
        assert list(got.items()) == list(want.items())
        # the rebuilt slots find every kept word, and only those: encoding through the table
        counted.counts, counted._pool, counted._offsets = t.table.counts[:k].copy(), t.table.pool, offsets[:k + 1]
        ids = encode_counted(counted, [f]).stream()
        kept = [w for w in f.read_text().split() if w in want]
        assert [list(want)[i] for i in ids[ids >= 0]] == kept
    shutil.rmtree(f.parent)


def word2vec_c_vocab(path, table_cap: int, min_count: int) -> dict:
    """word2vec.c's LearnVocabFromTrainFile, ReduceVocab and SortVocab, line for line, with
    ``vocab_size > vocab_hash_size * 0.7`` read as ``vocab_size > table_cap + 1`` (word2vec.c's
    table holds "</s>" besides the words, at index 0; it is dropped here). ReadWord: words end at
    ' ', '\\t' and '\\n'; a '\\n' is the word "</s>"; '\\r' is skipped."""
    vocab = [["</s>", 0]]  # AddWordToVocab("</s>"): count 0
    index = {"</s>": 0}
    min_reduce = 1
    data = path.read_bytes()
    word, words = b"", []
    for b in data:  # ReadWord
        ch = bytes([b])
        if ch == b"\r":
            continue
        if ch in b" \t\n":
            if word:
                words.append(word)
                word = b""
            if ch == b"\n":
                words.append(b"</s>")
            continue
        word += ch
    if word:
        words.append(word)
    for w in words:
        w = w.decode()
        i = index.get(w, -1)
        if i == -1:
            index[w] = len(vocab)
            vocab.append([w, 1])
        else:
            vocab[i][1] += 1
        if len(vocab) > table_cap + 1:  # ReduceVocab
            vocab = [v for v in vocab if v[1] > min_reduce]
            index = {v[0]: j for j, v in enumerate(vocab)}
            min_reduce += 1
    head, rest = vocab[0], sorted(vocab[1:], key=lambda v: -v[1])  # SortVocab: qsort(&vocab[1], ...)
    kept = [head] + [v for v in rest if v[1] >= min_count]
    assert kept[0][0] == "</s>", "the test corpus must keep </s> (many lines) for the comparison to hold"
    return dict(kept[1:])


@pytest.mark.parametrize("workers", [1, 2])
def test_max_vocab_size_gives_word2vec_c_vocabulary_and_encodes_the_corpus_with_it(tmp_path, workers):
    f = _zipf_corpus(tmp_path / "c.txt", n_tokens=60_000, n_words=5_000, seed=1, line=6)
    max_vocab_size = 150
    want = word2vec_c_vocab(f, 2 * max_vocab_size, min_count=1)
    min_count = 2  # past the last prune the table fills with words seen once: left out by min_count
    want = {w: c for w, c in want.items() if c >= min_count}
    assert 30 < len(want) < max_vocab_size  # so the cut at max_vocab_size (not word2vec.c's) plays no part
    cfg = Config(min_count=min_count, max_vocab_size=max_vocab_size, workers=workers, chunk_bytes=4096,
                 cache_dir=str(tmp_path / "cache"))
    for _ in range(2):  # built, then loaded from the cache
        ds = prepare([f], cfg)
        assert dict(zip(ds.vocab.words, ds.vocab.counts.tolist(), strict=True)) == want
        assert ds.stats["pruned_below"] > 2
        assert np.asarray(ds.ids).tolist() == np.concatenate(list(_encode([f], ds.vocab, cfg))).tolist()
    ds = prepare([f], Config(**{**cfg.to_dict(), "cache_dir": ""}))
    assert np.asarray(ds.ids).tolist() == np.concatenate(list(_encode([f], ds.vocab, cfg))).tolist()


def test_cli_sample_pairs_tokenize_words(tmp_path):
    f = tmp_path / "raw.txt"
    f.write_text('The whale, the Whale. "Whale!"\n' * 3, encoding="utf-8")
    args = ["sample-pairs", str(f), "--lowercase", "--min-count", "1", "--sample", "0", "--no-cache", "--num", "30",
            "--num-sampled", "1"]
    words = CliRunner().invoke(main, [*args, "--tokenize", "words"])
    assert words.exit_code == 0, words.output
    assert "the -> whale\n" in words.output and "," not in words.output and "." not in words.output
    plain = CliRunner().invoke(main, args)
    assert "whale," in plain.output
    bad = CliRunner().invoke(main, [*args, "--tokenize", "letters"])
    assert bad.exit_code != 0


def test_config_key_tokenize_validated():
    from w2v.config import ConfigError, parse_config, validate

    assert validate(parse_config("tokenize: words\n", "x.yaml")).tokenize == "words"
    with pytest.raises(ConfigError, match="tokenize must be one of whitespace, words"):
        validate(parse_config("tokenize: letters\n", "x.yaml"))


def test_cache_key_holds_tokenize(tmp_path):
    from w2v.dataset import cache_key

    f = tmp_path / "c.txt"
    f.write_text("a b\n")
    assert cache_key(Config(tokenize="words"), [f]) != cache_key(Config(), [f])


@pytest.mark.slow
def test_100_mb_single_line(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)] + ["The", "whale,", "Don't", "café"]
    f = tmp_path / "one-line.txt"
    with open(f, "w", encoding="utf-8") as fh:
        while fh.tell() < 100 * 2**20:
            fh.write(" ".join(rng.choice(words, 100_000).tolist()) + " ")
    for mode, threads in (("whitespace", 2), ("words", 1)):
        assert_same([f], threads=threads, mode=mode, lowercase=True)


def test_damaged_gz_is_one_error_line(tmp_path):
    data = gzip.compress(b"some words here\n" * 5000)
    f = tmp_path / "cut.txt.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match="cannot read"):
        list(iter_segments([f]))
    with pytest.raises(CorpusError, match="cannot read"):
        tokenize([f], threads=2)


def test_phrases_honour_tokenize_words(tmp_path):
    from w2v.phrases import detect

    f = tmp_path / "raw.txt"
    f.write_text("I love New York. New York, they say!\n" * 20 + "a new day in york\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    detect([f], out, min_count=1, threshold=1, lowercase=True, tokenize="words")
    first = out.read_text(encoding="utf-8").splitlines()[0].split()
    assert first.count("new_york") == 2 and not any(c in " ".join(first) for c in ".,!")
    detect([f], out, min_count=1, threshold=1, lowercase=True)
    assert "york." in out.read_text(encoding="utf-8").splitlines()[0]


def test_train_records_tokenize(tmp_path):
    f = tmp_path / "raw.txt"
    f.write_text('The whale, the Whale. "Whale!" A ship; the sea.\n' * 50, encoding="utf-8")
    result = CliRunner().invoke(main, ["train", str(f), "--output", str(tmp_path / "run"), "--tokenize", "words",
                                       "--min-count", "1", "--epochs", "1", "--workers", "1", "--no-cache", "-q",
                                       "--num-sampled", "2", "--dim", "8"])
    assert result.exit_code == 0, result.output
    assert "tokenize: words" in (tmp_path / "run" / "config.yaml").read_text()
    words = [line.split()[0] for line in (tmp_path / "run" / "vocab.txt").read_text().splitlines()]
    assert sorted(words) == ["A", "The", "Whale", "sea", "ship", "the", "whale"]
