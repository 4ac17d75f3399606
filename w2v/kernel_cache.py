"""Where Numba keeps w2v's compiled kernels: a directory keyed by w2v's version and sources.

Numba's cache checks only the timestamp of a kernel's own file, not of the kernels it calls, and
an upgrade can leave older files with newer timestamps: with Numba's default locations (the
package's ``__pycache__`` or a user-wide directory) a changed package could run a stale kernel.
So, unless NUMBA_CACHE_DIR is set (the user's choice wins; the Makefile and the tests key theirs by
the sources too), importing w2v points Numba's cache at
``$XDG_CACHE_HOME/w2v/numba/<version>-<hash of w2v/*.py>`` (``~/.cache`` without XDG_CACHE_HOME),
or a directory under the system's temporary directory when that is not writable. The environment
variable is set too, so child processes (the compile-ahead process, Ray workers on this machine)
share it. Within it Numba keys each kernel by its source file's path, so w2v's own children start
through ``child_command``: they import w2v from the path this process did. No Numba import here:
importing w2v stays cheap.

Nothing is created on import (``w2v --help`` and ``--version`` leave no trace): each module that
defines kernels calls ``claim()`` when it is imported, which creates the directory, holds a shared
lock on its ``.in-use`` file for the life of the process and removes the directories of other
source versions beside it (each under an exclusive lock taken without waiting: one in use by a
running process is left alone). A directory the user chose (NUMBA_CACHE_DIR) is never pruned.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_IN_USE = ".in-use"
_KEYED = re.compile(r".+-[0-9a-f]{12}")  # default_cache_dir's names
_state: dict = {"dir": None, "managed": False, "lock": None}


def source_key() -> str:
    """12 hex digits of a hash over the package's Python sources (names and contents)."""
    h = hashlib.sha1()
    for path in sorted(_PACKAGE.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def child_command(module: str, *args: str) -> list[str]:
    """The command line of a child process that runs w2v's ``module`` as ``python -m`` would, with
    ``args``, importing w2v from where this process did. ``python -m`` puts the working directory
    first on the child's path: a checkout there (beside an installed w2v), or a path reached
    through a symlink (``getcwd`` resolves it), would give the child other source paths: kernels
    it compiles that the parent never finds in the cache (measured: a first run compiled its
    training kernels itself), or other code altogether."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # not resolved: as imported
    run = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); module = sys.argv[2]; del sys.argv[1:3]; "
           "runpy.run_module(module, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", run, root, module, *args]


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
            if _creatable(candidate):
                chosen = str(candidate)
                break
        else:
            return None
        os.environ["NUMBA_CACHE_DIR"] = chosen
        _state["managed"] = True
    _state["dir"] = chosen
    numba = sys.modules.get("numba")
    if numba is not None:  # imported before w2v: Numba read its environment already
        numba.config.CACHE_DIR = chosen
    return chosen


def _creatable(path: Path) -> bool:
    """Whether ``path`` is a writable directory or could be made one (its nearest existing
    ancestor is a writable directory), without creating anything."""
    for p in (path, *path.parents):
        if p.exists():
            return p.is_dir() and os.access(p, os.W_OK | os.X_OK)
    return False


def claim() -> None:
    """Create the kernel directory, hold it in use (a shared lock while this process lives) and
    prune the other source versions' directories beside it. Once a process; never raises: where
    the directory cannot be made, Numba falls back to its own locations."""
    if _state["lock"] is not None or not _state["dir"]:
        return
    path = Path(_state["dir"])
    try:
        import fcntl
    except ImportError:  # not POSIX: no locks, so no pruning either
        return
    for _ in range(2):  # a pruner of another version may remove it between mkdir and open
        try:
            path.mkdir(parents=True, exist_ok=True)
            fd = os.open(path / _IN_USE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)
            return
        _state["lock"] = fd
        break
    else:
        return
    if _state["managed"]:
        prune(path)


def prune(keep: Path) -> list[Path]:
    """Remove the directories beside ``keep`` named like default_cache_dir's that no process
    holds in use; returns those removed."""
    import fcntl

    removed = []
    try:
        siblings = [p for p in keep.parent.iterdir() if p != keep and p.is_dir() and _KEYED.fullmatch(p.name)]
    except OSError:
        return removed
    for old in siblings:
        try:
            fd = os.open(old / _IN_USE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # in use by a running w2v (or a pruner beside us)
            os.close(fd)
            continue
        try:
            shutil.rmtree(old, ignore_errors=True)
            removed.append(old)
        finally:
            os.close(fd)
    return removed
