"""Packed words (w2v.words.Words) behave as the list of str they replace, and vocab.txt read by
NumPy gives what reading it line by line gives."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from w2v.vocab import Vocab, _parse_plain
from w2v.words import Words, utf8_size

# words as the tokenizer makes them: no white space in the sense of str.split, any other text
word = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda w: w.split() == [w])


@settings(max_examples=200, deadline=None)
@given(st.lists(word, max_size=40))
def test_words_are_the_list_they_were_made_from(words):
    packed = Words.pack(words)
    assert len(packed) == len(words) and list(packed) == words and packed == words and words == packed
    assert packed.utf8.tobytes() == "".join(words).encode("utf-8") and utf8_size(packed) == utf8_size(words)
    for i in range(-len(words), len(words)):
        assert packed[i] == words[i]
    for a, b, s in ((0, None, None), (1, -1, None), (3, 2, None), (None, None, 2), (None, None, -1)):
        assert packed[a:b:s] == words[a:b:s]
    assert pickle.loads(pickle.dumps(packed)) == packed
    if words:
        assert packed != words[:-1] and packed != [*words[:-1], words[-1] + "x"]


def test_words_out_of_range_and_blocks():
    words = [f"w{i}" for i in range(70_000)]  # past one block of 65,536
    packed = Words.pack(words)
    with pytest.raises(IndexError):
        packed[70_000]
    with pytest.raises(IndexError):
        packed[-70_001]
    assert [len(b) for b in packed.blocks()] == [65_536, 4_464] and list(packed) == words
    assert Words.of(packed) is packed and Words.pack(["a\nb", "c"])[0] == "a\nb"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(word, st.integers(1, 10**18 - 1)), max_size=30, unique_by=lambda t: t[0]))
def test_vocab_txt_read_by_numpy_is_read_as_lines_are(tmp_path_factory, entries):
    path = tmp_path_factory.mktemp("v") / "vocab.txt"
    words, counts = [w for w, _ in entries], [c for _, c in entries]
    Vocab(words, np.array(counts, np.int64)).save(path)
    fast, slow = Vocab.load(path), Vocab._load_lines(path)
    assert _parse_plain(path.read_bytes()) is not None  # the file as saved takes the NumPy path
    assert isinstance(fast.words, Words) and fast.words == words == slow.words
    assert fast.counts.tolist() == counts == slow.counts.tolist()


@pytest.mark.parametrize("text", [
    "a 1\nb 2", "a  1\n", " a 1\n", "a 1 \n", "a\t1\n", "a 1\r\n", "a\u00a0b 1\n", "a 1\n\nb 2\n", "a ١٢\n",
    "a 1234567890123456789\n", "a\x1fb 3\n", "a\n", "a x\n", "", "a 0\n", "é 007\n",
])
def test_vocab_txt_off_the_plain_format_reads_as_lines_do(tmp_path, text):
    path = tmp_path / "vocab.txt"
    path.write_bytes(text.encode("utf-8"))
    try:
        expected = Vocab._load_lines(path)
    except Exception as e:  # noqa: BLE001  (whatever reading lines raises, the fast path raises too)
        with pytest.raises(type(e)):
            Vocab.load(path)
        return
    got = Vocab.load(path)
    assert got.words == list(expected.words) and got.counts.tolist() == expected.counts.tolist()


def test_vocab_txt_not_utf8_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"a 1\n\xff 2\n")
    with pytest.raises(UnicodeDecodeError):
        Vocab.load(path)
