"""The kernel cache's directory: nothing created by --help or --version; other source versions'
directories pruned when kernels load, never one a running process holds, never the user's own."""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from w2v import __version__
from w2v.kernel_cache import source_key


def _env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), TMPDIR=str(home / "tmp"), **extra)
    (home / "tmp").mkdir(exist_ok=True)
    return env


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["train", "--help"]])
def test_help_and_version_create_nothing(tmp_path, args):
    env = _env(tmp_path)
    result = subprocess.run([sys.executable, "-m", "w2v.cli", *args], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path) == ["tmp"]


def test_loading_kernels_prunes_other_versions_but_not_one_in_use(tmp_path):
    numba_dir = tmp_path / "cache" / "w2v" / "numba"
    stale, held = numba_dir / "0.0.9-0123456789ab", numba_dir / "0.0.8-ba9876543210"
    other = numba_dir / "notes"  # not named like a version's directory: not ours to remove
    for d in (stale, held, other):
        d.mkdir(parents=True)
        (d / "kernel.nbi").write_bytes(b"x")
    fd = os.open(held / ".in-use", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # as a running w2v of that version holds its directory
        code = "import w2v.rng, os; print(os.environ['NUMBA_CACHE_DIR'])"
        result = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True,
                                timeout=120)
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    current = numba_dir / f"{__version__}-{source_key()}"
    assert result.stdout.strip() == str(current)
    assert not stale.exists()
    assert (held / "kernel.nbi").exists() and (other / "kernel.nbi").exists()
    assert (current / ".in-use").exists()


def test_a_directory_the_user_chose_is_not_pruned(tmp_path):
    chosen = tmp_path / "mine" / f"{__version__}-{source_key()}"
    beside = tmp_path / "mine" / "0.0.9-0123456789ab"
    beside.mkdir(parents=True)
    result = subprocess.run([sys.executable, "-c", "import w2v.rng"], env=_env(tmp_path, NUMBA_CACHE_DIR=str(chosen)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert beside.exists() and chosen.exists()


def test_children_import_the_parents_w2v_not_the_one_in_the_working_directory(tmp_path):
    """Numba keys a cached kernel by its source file's path: a child that imported w2v from
    elsewhere (``python -m`` puts the working directory first; there a checkout, or this one
    through a symlink) would compile kernels the parent never finds, or run other code."""
    import w2v
    from w2v.kernel_cache import child_command

    (tmp_path / "w2v").mkdir()
    (tmp_path / "w2v" / "__init__.py").write_text("raise SystemExit('the w2v in the working directory')\n")
    (tmp_path / "probe.py").write_text("import sys\nimport w2v\nprint(w2v.__file__, sys.argv[1:])\n")
    plain = subprocess.run([sys.executable, "-m", "probe"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "the w2v in the working directory" in plain.stderr  # what the child must not do
    child = subprocess.run(child_command("probe", "a b", "--x"), cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == f"{w2v.__file__} ['a b', '--x']"
