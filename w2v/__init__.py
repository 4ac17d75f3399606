"""w2v: skip-gram word2vec with TensorFlow-exact NCE loss, trained by a Numba SGD loop.

Importing the package is cheap (no Numba): the CLI's ``--help`` must not wait for a compiler.
The pipeline, one module per stage: corpus -> vocab -> pairs + sampler -> nce/train -> io.
"""

__version__ = "0.1.0"

import os as _os  # noqa: E402
import signal as _signal  # noqa: E402
import sys as _sys  # noqa: E402

from .kernel_cache import configure as _configure_kernel_cache  # noqa: E402


def _interrupted_while_starting(signum, frame):
    # the `w2v` command only, from its first instruction until the CLI takes over: one line, 130
    _os.write(2, b"w2v: error: interrupted: nothing was written\n")
    _os._exit(130)


def _is_the_command() -> bool:
    """This process is starting the `w2v` command (its console script, or python -m w2v.cli)."""
    orig = getattr(_sys, "orig_argv", [])
    if "-m" in orig and orig[orig.index("-m") + 1:orig.index("-m") + 2] == ["w2v.cli"]:
        return True
    return bool(_sys.argv) and _os.path.basename(_sys.argv[0]) == "w2v"


if _is_the_command() and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)  # a library import leaves signals alone

# Numba's cache keyed by this version and these sources, before any kernel is defined
_configure_kernel_cache(__version__)
