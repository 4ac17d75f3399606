"""Where Numba keeps w2v's compiled kernels: a directory keyed by w2v's version and sources.

Numba's cache checks only the timestamp of a kernel's own file, not of the kernels it calls, and
an upgrade can leave older files with newer timestamps: with Numba's default locations (the
package's ``__pycache__`` or a user-wide directory) a changed package could run a stale kernel.
So, unless NUMBA_CACHE_DIR is set (the user's choice wins; the Makefile and the tests key theirs by
the sources too), importing w2v points Numba's cache at
``$XDG_CACHE_HOME/w2v/numba/<version>-<hash of w2v/*.py>`` (``~/.cache`` without XDG_CACHE_HOME),
or a directory under the system's temporary directory when that is not writable. The environment
variable is set too, so child processes (the compile-ahead process, Ray workers on this machine)
share it. No Numba import here: importing w2v stays cheap.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def source_key() -> str:
    """12 hex digits of a hash over the package's Python sources (names and contents)."""
    h = hashlib.sha1()
    for path in sorted(_PACKAGE.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def default_cache_dir(version: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "w2v" / "numba" / f"{version}-{source_key()}"


def configure(version: str) -> str | None:
    """Set Numba's cache directory (see the module's docstring); returns it, or None if no
    candidate is writable (Numba then falls back to its own locations)."""
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if not chosen:
        preferred = default_cache_dir(version)
        uid = os.getuid() if hasattr(os, "getuid") else 0
        for candidate in (preferred, Path(tempfile.gettempdir()) / f"w2v-numba-{uid}" / preferred.name):
            try:
                candidate.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(candidate, os.W_OK):
                chosen = str(candidate)
                break
        else:
            return None
        os.environ["NUMBA_CACHE_DIR"] = chosen
    numba = sys.modules.get("numba")
    if numba is not None:  # imported before w2v: Numba read its environment already
        numba.config.CACHE_DIR = chosen
    return chosen
