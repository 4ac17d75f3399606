import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v.config import Config
from w2v.corpus import CorpusError, ReadStats, iter_segments
from w2v.dataset import SENTENCE_END, prepare
from w2v.vocab import Vocab, build_vocab, count_words


def tokens_of(path, chunk, **kw):
    return [t for seg, _ in iter_segments([path], chunk_bytes=chunk, **kw) for t in seg]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_chunked_tokens_equal_split(tmp_path, chunk):
    text = "the  quick\tbrown fox\n\njumps over\r\nthe lazy dog \u00e9t\u00e9 \u2028 caf\u00e9\nend"
    p = tmp_path / "c.txt"
    p.write_text(text, encoding="utf-8")
    assert tokens_of(p, chunk) == text.split()


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab \n\t\u00e9\u3000\u2029z")), max_size=200),
       chunk=st.integers(min_value=1, max_value=50))
def test_property_tokenizer_equals_split(tmp_path_factory, text, chunk):
    p = tmp_path_factory.mktemp("h") / "t.txt"
    p.write_bytes(text.encode("utf-8"))
    assert tokens_of(p, chunk) == text.split()


def test_lines_are_sentences_and_long_lines_are_segments(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a b c d e f g h\ni j\n")
    segs = list(iter_segments([p], chunk_bytes=4))
    assert [t for s, _ in segs for t in s] == list("abcdefghij")
    ends = [i for s, e in segs if e for i in s[-1:]]
    assert ends == ["h", "j"]


def test_gz_directory_lowercase_and_invalid_utf8(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    with gzip.open(d / "a.txt.gz", "wt") as fh:
        fh.write("Hello World\n")
    (d / "b.txt").write_bytes(b"caf\xff bad \xfe\xfeend\n")
    (d / ".hidden").write_text("ignored\n")
    stats = ReadStats()
    toks = [t for s, _ in iter_segments([d], lowercase=True, chunk_bytes=3, stats=stats) for t in s]
    assert toks == ["hello", "world", "caf\ufffd", "bad", "\ufffd\ufffdend"]
    assert stats.invalid_utf8 == 3 and stats.files == 2


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        list(iter_segments([tmp_path / "nope.txt"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no files"):
        list(iter_segments([tmp_path / "empty"]))


def test_vocab_sorted_by_count_ties_by_first_appearance(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("b a c a d b e a x x x x\n")
    counts, _ = count_words([p])
    vocab = build_vocab(counts, min_count=2)
    assert vocab.words == ["x", "a", "b"]
    assert vocab.counts.tolist() == [4, 3, 2]
    assert build_vocab(counts, 1, max_vocab_size=4).words == ["x", "a", "b", "c"]
    vocab.save(tmp_path / "vocab.txt")
    assert (tmp_path / "vocab.txt").read_text() == "x 4\na 3\nb 2\n"
    back = Vocab.load(tmp_path / "vocab.txt")
    assert back.words == vocab.words and back.counts.tolist() == vocab.counts.tolist()


def test_pruning_while_counting_bounds_memory(tmp_path):
    rng = np.random.default_rng(0)
    common = [f"w{i}" for i in range(20)]
    words = []
    for i in range(20000):
        words.append(common[i % 20])
        words.append(f"rare{i}")  # 20000 distinct singletons
    p = tmp_path / "c.txt"
    p.write_text(" ".join(words))
    counts, stats = count_words([p], chunk_bytes=4096, max_vocab_size=50)
    assert len(counts) <= 2 * 50 + 4096  # pruned as it went, never all 20000 rare words
    assert stats.pruned_below >= 2
    vocab = build_vocab(counts, min_count=5, max_vocab_size=50)
    assert set(vocab.words) == set(common)
    del rng


def test_encoded_stream_and_cache(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("a b zz a\n\nb a\n")
    cfg = Config(min_count=2, cache_dir=str(tmp_path / "cache"))
    ds = prepare([p], cfg)
    a, b = ds.vocab.index["a"], ds.vocab.index["b"]
    assert ds.ids.tolist() == [a, b, a, SENTENCE_END, SENTENCE_END, b, a, SENTENCE_END]
    assert ds.n_words == 5 and ds.stats["tokens"] == 6 and ds.stats["dropped_words"] == 1
    again = prepare([p], cfg)
    assert again.cache_path == ds.cache_path and np.array_equal(again.ids, ds.ids)
    p.write_text("a b a b\n")  # changed file: new key, recounted
    assert prepare([p], cfg).n_words == 4
    nocache = prepare([p], Config(min_count=2, cache_dir=""))
    assert nocache.cache_path is None and nocache.n_words == 4


def test_a_file_ending_in_a_space_without_newline_ends_its_sentence(tmp_path):
    # the last line's tokens go out before the file ends (the chunk's tail ends in a space): the
    # sentence must still end there, or the window would run into the next file
    from w2v.corpus import iter_segments

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("one two\nthree four ")
    b.write_text("five six\n")
    segments = list(iter_segments([a, b], chunk_bytes=64))
    assert segments == [(["one", "two"], True), (["three", "four"], False), ([], True), (["five", "six"], True)]
    joined, line = [], []
    for tokens, ends in segments:
        line += tokens
        if ends:
            joined.append(line)
            line = []
    assert joined == [["one", "two"], ["three", "four"], ["five", "six"]]
