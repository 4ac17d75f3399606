"""The text writer's number kernel gives exactly Python's '%.9g' (its reference), row for row."""

import numpy as np
import pytest

from w2v.io import read_word2vec_text, write_word2vec_text
from w2v.textfloat import format_rows, max_row_bytes, row_text
from w2v.words import Words


def _kernel_text(words, rows):
    """The kernel's bytes, a row it stops at written by the reference (as write_word2vec_text does)."""
    packed = Words.pack(words)
    out = np.empty(sum(max_row_bytes(len(w.encode()), rows.shape[1]) for w in words), np.uint8)
    text, done, fallback = bytearray(), 0, 0
    while done < len(rows):
        nbytes, n = format_rows(rows[done:].view(np.uint32), packed.utf8, packed.offsets, done, out)
        text += out[:nbytes].tobytes()
        done += n
        if done < len(rows):
            text += row_text(words[done], rows[done]).encode()
            done, fallback = done + 1, fallback + 1
    return bytes(text), fallback


def _values(rng, n):
    tens = np.float32(10.0) ** rng.integers(-9, 10, n).astype(np.float32)
    sign = rng.choice(np.array([1, -1], np.float32), n)
    return {
        "any bits": rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32),
        "vector-like": (rng.standard_normal(n) * 0.3).astype(np.float32),
        "powers of ten": tens * sign,  # where log10 is one off and rounding reaches 10^9
        "next to them": np.nextafter(tens, np.float32(np.inf) * sign),
        "short binary fractions": (rng.integers(1, 2**24, n) * 2.0 ** rng.integers(-40, 8, n)).astype(np.float32),
        "ties at nine digits": (rng.integers(1, 2**20, n) * 2.0 ** rng.integers(-4, 6, n) + 0.5).astype(np.float32),
        "edges": np.array([0.0, -0.0, 1e-8, -1e-8, 9.99999994e-09, 1e9, 999999936.0, 1e-4, 9.99999975e-05, 0.1, 0.5,
                           123456789.0, 99999999.5, 3.4028235e38, 1.4e-45, 1.17549435e-38, np.inf, -np.inf, np.nan,
                           16777216.0, 1e-5, 1.5e-5], np.float32),
    }


@pytest.mark.parametrize("seed", [0, 1])
def test_numbers_are_what_percent_9g_writes(seed):
    rng = np.random.default_rng(seed)
    for name, values in _values(rng, 40_000).items():
        rows = values[: len(values) // 4 * 4].reshape(-1, 4)
        words = [f"w{i}é" for i in range(len(rows))]
        got, _ = _kernel_text(words, rows)
        expected = "".join(row_text(w, r) for w, r in zip(words, rows, strict=True)).encode()
        assert got == expected, name


def test_vector_rows_need_no_python():
    rows = (np.random.default_rng(2).standard_normal((500, 100)) * 0.3).astype(np.float32)
    assert _kernel_text([f"w{i}" for i in range(500)], rows)[1] == 0


def test_text_file_round_trips_every_float32(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.integers(0, 2**32, (3000, 7), dtype=np.uint64).astype(np.uint32).view(np.float32)
    vectors[~np.isfinite(vectors)] = 1.5
    vectors[::3] = (rng.standard_normal((1000, 7)) * 0.3).astype(np.float32)
    words = [f"w{i}" for i in range(3000)]
    write_word2vec_text(tmp_path / "v.txt", words, vectors)
    got_words, got = read_word2vec_text(tmp_path / "v.txt")
    assert list(got_words) == words and np.array_equal(got.view(np.uint32), vectors.view(np.uint32))


@pytest.mark.parametrize("threads", [2, 3])
def test_text_written_by_several_threads_is_the_one_threads_bytes(tmp_path, threads):
    """Blocks formatted at once and written in order: the same bytes as one thread writes, with rows
    Python formats (NaN, infinity, a magnitude under 1e-8) in the first, a middle and the last block,
    and more blocks than the threads may hold waiting."""
    rng = np.random.default_rng(4)
    n = 9 * 1024 + 17
    vectors = (rng.standard_normal((n, 11)) * 0.3).astype(np.float32)
    vectors[3, 2], vectors[4100, 0], vectors[n - 1, 10] = np.nan, 3e-12, -np.inf
    words = [f"w{i}é" for i in range(n)]
    write_word2vec_text(tmp_path / "one.txt", words, vectors)
    write_word2vec_text(tmp_path / "many.txt", words, vectors, threads)
    one = (tmp_path / "one.txt").read_bytes()
    assert (tmp_path / "many.txt").read_bytes() == one
    lines = one.decode().splitlines()
    assert len(lines) == n + 1 and lines[3 + 1].split()[2 + 1] == "nan" and lines[-1].split()[-1] == "-inf"
