"""w2v: skip-gram word2vec with TensorFlow-exact NCE loss, trained by a Numba SGD loop.

Importing the package is cheap (no Numba): the CLI's ``--help`` must not wait for a compiler.
The pipeline, one module per stage: corpus -> vocab -> pairs + sampler -> nce/train -> io.
"""

__version__ = "0.1.0"
