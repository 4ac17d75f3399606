"""Count and encode the corpus in a child process, so the training process never holds what that takes.

Counting holds the word table (at 10x text8's size, hundreds of MiB), loads the tokenizer's kernels
and leaves malloc's arenas grown behind it: done in the training process, all of that stays in its
resident memory through training. ``prepare`` runs ``python -m w2v.prepare_child`` to fill the corpus
cache entry (with ``--no-cache``, an entry in a temporary directory of this run's, removed once it is
mapped) and then loads that entry as every later run does: a first run trains in the same memory as
a warm one. The child's log lines reach ``log``; a user's error (a missing file, invalid input, a
full disk) is raised here as the same exception with the same message. If the child cannot be
started or fails for another reason, the corpus is prepared in this process as before.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import replace

from .config import Config, ConfigError
from .corpus import CorpusError, corpus_files
from .dataset import Dataset, cached_entry
from .dataset import prepare as prepare_here
from .errors import ResourceError
from .io import OutputError
from .kernel_cache import child_command

# the errors a user must fix, carried from the child by name
_ERRORS = {cls.__name__: cls for cls in (CorpusError, ConfigError, ResourceError, OutputError)}
SEPARATE = True  # False: everything in this process (tests that patch this process's preparation)
_CHILD_EXIT_S = 10.0  # how long an interrupted child may take to remove its temporary files


def prepare(paths, cfg: Config, log=lambda msg: None, before_counting=lambda: None) -> Dataset:
    """``dataset.prepare`` with the counting and encoding done in a child process (see above);
    ``before_counting()`` is called first when the corpus is not cached (w2v.compile_ahead's wait
    for the tokenizer's kernels: the child loads them instead of compiling them too)."""
    files = corpus_files(paths)  # a missing file: the error at once, from here
    if not SEPARATE or cached_entry(files, cfg) is not None:
        return prepare_here(files, cfg, log)
    before_counting()
    temp = None
    child_cfg = cfg
    if not cfg.cache_dir:
        try:
            temp = tempfile.mkdtemp(prefix="w2v-corpus-")
        except OSError:
            return prepare_here(files, cfg, log)  # it says why, and encodes in memory
        child_cfg = replace(cfg, cache_dir=temp)
    try:
        why = _run_child([str(f) for f in files], child_cfg, log)
        if why is not None:
            log(f"warning: preparing the corpus in a child process failed ({why}); preparing it here")
            return prepare_here(files, cfg, log)
        dataset = prepare_here(files, child_cfg, log)
        if temp is not None:
            dataset.cache_path = None  # a temporary entry, not the cache's: removed below, mapped still
        return dataset
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def _run_child(files: list[str], cfg: Config, log) -> str | None:
    """Run the child to fill ``cfg``'s cache entry: None when it did, else why not. A user's
    error in the child is raised here."""
    request = json.dumps({"files": files, "config": cfg.to_dict(), "parent": os.getpid()})
    try:
        with tempfile.TemporaryFile() as err:  # a file, not a pipe: a chatty stderr cannot block the child
            proc = subprocess.Popen(child_command("w2v.prepare_child"), stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err)
            result = _follow(proc, request, log)
            err.seek(0)
            err_text = err.read().decode(errors="replace")
    except OSError as e:
        return f"cannot start it: {e.strerror or e}"
    if isinstance(result, dict) and "error" in result:
        raise _ERRORS[result["error"]](result["message"])
    if proc.returncode == 0 and result == {"filled": True}:
        return None
    if result == {"filled": False}:
        return "it could not write the encoded corpus"
    tail = err_text.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return tail[0][-300:]


def _follow(proc: subprocess.Popen, request: str, log):
    """Send the request, pass the child's log lines on until it ends: its last message."""
    result = None
    try:
        proc.stdin.write(request.encode())
        proc.stdin.close()
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and "log" in message:
                log(message["log"])
            else:
                result = message
        proc.wait()
    except BaseException:
        _stop(proc)  # interrupted: the child removes its temporary files before this returns
        raise
    finally:
        proc.stdout.close()
    return result


def _stop(proc: subprocess.Popen) -> None:
    """End the child as a Ctrl-C would (it cleans up), then for good."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(_CHILD_EXIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _end_with_parent(parent: int) -> None:
    """A SIGINT when the parent dies (killed outright), so this process cleans up and ends too."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the child then finishes its entry alone
    if os.getppid() != parent:  # the parent died before the line above
        raise KeyboardInterrupt


def _interrupted(signum, frame):
    # one is enough: a second Ctrl-C (the terminal's, then the parent's) must not cut the cleanup short
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    signal.signal(signal.SIGINT, _interrupted)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # nothing else may write to the parent's channel, not even C code
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        out.write(json.dumps(message) + "\n")

    try:
        _end_with_parent(request["parent"])
        cfg = Config(**request["config"])
        dataset = prepare_here(request["files"], cfg, lambda msg: send({"log": msg}))
        send({"filled": dataset.cache_path is not None})
    except tuple(_ERRORS.values()) as e:
        send({"error": next(n for n, c in _ERRORS.items() if isinstance(e, c)), "message": str(e)})
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
