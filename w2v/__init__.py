"""w2v: skip-gram word2vec with TensorFlow-exact NCE loss, trained by a Numba SGD loop.

Importing the package is cheap (no Numba): the CLI's ``--help`` must not wait for a compiler.
The pipeline, one module per stage: corpus -> vocab -> pairs + sampler -> nce/train -> io.
"""

__version__ = "0.1.0"

from .kernel_cache import configure as _configure_kernel_cache  # noqa: E402

# Numba's cache keyed by this version and these sources, before any kernel is defined
_configure_kernel_cache(__version__)
