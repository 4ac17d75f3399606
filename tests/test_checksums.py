"""Every byte of a checkpoint is covered: any single flipped byte, wherever it lands (zip local
headers, .npy headers, data, the zip's directory, its end record, the checksum itself), is refused
as damaged (the zip's CRC alone left bytes such as a member's date unchecked). Run on layouts
whose stored paths differ in length, so the positions move as they do between machines (a test
that flipped one fixed offset passed on one machine and failed on another)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from w2v.checkpoint import load_checkpoint, write_arrays
from w2v.cli import main
from w2v.config import Config
from w2v.dataset import DamagedCache, _load_cached, prepare
from w2v.io import DamagedFileError
from w2v.run import train


def _small_run(root, name):
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(30)]
    corpus = root / name / "corpus.txt"
    corpus.parent.mkdir(parents=True)
    corpus.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(200)) + "\n")
    out = root / name / "run"
    cfg = Config(dim=8, window=2, min_count=1, epochs=1, workers=1, cache_dir="", num_sampled=3, seed=2)
    train([corpus], cfg, out, show_progress=False)
    return corpus, out / "checkpoint.npz"


@pytest.mark.parametrize("name", ["a", "a-much-longer-directory-name-so-the-stored-paths-move-" + "x" * 40])
def test_every_flipped_byte_of_a_checkpoint_is_refused(tmp_path, name):
    _, ck = _small_run(tmp_path, name)
    raw = ck.read_bytes()
    saved = load_checkpoint(ck)
    with zipfile.ZipFile(ck) as zf:  # the positions of every structure, to say where a miss fell
        headers = [(i.header_offset, i.filename) for i in zf.infolist()]
    accepted, other = [], []
    for pos in range(len(raw)):
        damaged = bytearray(raw)
        damaged[pos] ^= 0xFF
        ck.write_bytes(bytes(damaged))
        try:
            data = load_checkpoint(ck)
        except DamagedFileError:
            continue
        accepted.append(pos)
        if data.keys() != saved.keys() or not all(np.array_equal(data[k], saved[k]) for k in saved):
            other.append(pos)
    ck.write_bytes(raw)
    # the reader without the checksum already refused or loaded the same arrays (the zip CRC covers
    # the data); the checksum makes every flip a refusal, wherever it falls
    assert not other, f"{len(other)} flipped bytes loaded other arrays, first at {other[:5]} (members at {headers})"
    assert not accepted, f"{len(accepted)} flipped bytes were accepted, first at {accepted[:5]} (members at {headers})"
    assert len(raw) > 5000  # the sweep covered a real checkpoint


def test_a_flipped_byte_is_one_line_naming_the_file(tmp_path):
    corpus, ck = _small_run(tmp_path, "r")
    raw = bytearray(ck.read_bytes())
    raw[len(raw) // 3] ^= 1
    ck.write_bytes(bytes(raw))
    result = CliRunner().invoke(main, ["train", "--resume", str(ck.parent), "--epochs", "2"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("w2v: error:"), result.output
    assert "checkpoint.npz" in lines[0] and "checksum does not match" in lines[0]


def test_the_checks_behind_the_checksum_still_run(tmp_path):
    """A checkpoint rewritten with a valid checksum but inconsistent arrays is still refused by
    the array checks (the checksum guards against damage, not against a wrong writer)."""
    _, ck = _small_run(tmp_path, "r")
    with np.load(ck) as z:
        data = {k: z[k] for k in z.files}
    data["bias"] = np.zeros(3, np.float32)
    write_arrays(ck, data)
    with pytest.raises(DamagedFileError, match="does not fit the other arrays"):
        load_checkpoint(ck)


def test_a_format_3_checkpoint_without_its_checksum_is_refused(tmp_path):
    _, ck = _small_run(tmp_path, "r")
    with np.load(ck) as z:
        data = {k: z[k] for k in z.files}
    np.savez(ck, **data)  # the same arrays, no checksum comment
    with pytest.raises(DamagedFileError, match="checksum is missing"):
        load_checkpoint(ck)


def test_an_older_checkpoint_without_checksum_is_still_read(tmp_path):
    _, ck = _small_run(tmp_path, "r")
    with np.load(ck) as z:
        data = {k: z[k] for k in z.files}
    data["version"] = np.int64(2)
    np.savez(ck, **data)
    loaded = load_checkpoint(ck)
    assert int(loaded["version"]) == 2 and np.array_equal(loaded["emb_in"], data["emb_in"])


# ---------------------------------------------------------------- the corpus cache

@pytest.mark.parametrize("name", ["a", "a-much-longer-directory-name-so-the-stored-paths-move-" + "x" * 40])
def test_every_flipped_byte_of_a_cache_entry_is_refused_or_changes_nothing(tmp_path, name):
    corpus, _ = _small_run(tmp_path, name)
    cfg = Config(min_count=2, cache_dir=str(tmp_path / name / "cache"), workers=2, chunk_bytes=512)
    built = prepare([corpus], cfg)
    entry = built.cache_path
    want = _loaded(_load_cached(entry))
    assert want == _loaded(built)
    refused = 0
    for f in ("ids.int32", "vocab.txt", "meta.json"):
        path = entry / f
        raw = path.read_bytes()
        for at in range(len(raw)):
            for bit in (0x01, 0x80):
                path.write_bytes(raw[:at] + bytes([raw[at] ^ bit]) + raw[at + 1:])
                try:
                    got = _loaded(_load_cached(entry))
                except DamagedCache:
                    refused += 1
                    continue
                assert got == want, f"{f}: byte {at} ^ {bit:#x} loaded other data"
        path.write_bytes(raw)
    assert refused > 0.99 * 2 * sum((entry / f).stat().st_size for f in ("ids.int32", "vocab.txt", "meta.json"))
    # and through prepare: one warning, rebuilt to the same data
    (entry / "meta.json").write_bytes((entry / "meta.json").read_bytes().replace(b'"lines": ', b'"lines": 9'))
    said = []
    assert _loaded(prepare([corpus], cfg, said.append)) == want
    assert [s for s in said if "damaged" in s] == [
        f"warning: the corpus cache {entry} is damaged (meta.json does not match its checksum); rebuilding it"]


def _loaded(ds):
    return ds.vocab.words, ds.vocab.counts.tolist(), np.asarray(ds.ids).tolist(), ds.n_words, ds.stats
