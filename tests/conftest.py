import hashlib
import os
from pathlib import Path

# Numba's cache checks only the timestamp of a kernel's own file, not of the kernels it calls, so
# after an edit elsewhere a cached kernel can be stale. Key the cache by the package's sources.
_SOURCES = sorted((Path(__file__).resolve().parents[1] / "w2v").glob("*.py"))
os.environ.setdefault("NUMBA_CACHE_DIR", str(
    Path(__file__).resolve().parents[1] / ".cache" / "numba"
    / hashlib.sha1(b"".join(p.read_bytes() for p in _SOURCES)).hexdigest()[:12]))

import signal  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# A run leaves SIGINT ignored when whoever started it made it so (nohup, `cmd &` in a script);
# tests that interrupt runs in this process want it as from a terminal, however pytest was started.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FIXTURES = Path(__file__).parent / "fixtures"
TF_NCE = FIXTURES / "tf_nce"


def load_npz(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def short_temp_root() -> str:
    """Where a test puts what holds a Unix socket (Ray's session directory, Chromium's profile):
    the sockets' paths must stay under AF_UNIX's 107 bytes, which a long TMPDIR (or pytest's
    tmp_path below it) would pass; /tmp when it is writable."""
    return "/tmp" if os.access("/tmp", os.W_OK) else tempfile.gettempdir()


@pytest.fixture
def planted_corpus(tmp_path):
    """Groups of words that co-occur only within their group, one sentence a line."""
    rng = np.random.default_rng(0)
    groups = [[f"g{g}w{i}" for i in range(6)] for g in range(5)]
    lines = []
    for _ in range(3000):
        g = groups[rng.integers(len(groups))]
        lines.append(" ".join(rng.choice(g, size=12)))
    path = tmp_path / "planted.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, groups
