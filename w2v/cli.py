"""Command line: a thin click layer over the Python API (w2v.train.train and friends).

Heavy modules (numpy, numba) are imported inside the commands, so ``w2v --help`` is instant.
"""

from __future__ import annotations

import sys

import click

from . import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int = 1):
    click.echo(f"w2v: error: {message}", err=True)
    sys.exit(code)


def _user_errors():
    """The exception types that mean 'the user must fix something': one line, no traceback."""
    from .config import ConfigError
    from .corpus import CorpusError
    from .io import OutputError

    return (ConfigError, CorpusError, OutputError)


# Options shared by every command that builds the training pipeline: (flag, config key, type, help)
_OVERRIDES = [
    ("--dim", "dim", int, "embedding dimension"),
    ("--window", "window", int, "max context distance"),
    ("--num-sampled", "num_sampled", int, "negatives per batch"),
    ("--batch-size", "batch_size", int, "pairs per SGD step (sharing one sampled set)"),
    ("--epochs", "epochs", int, "passes over the corpus"),
    ("--alpha", "alpha", float, "initial learning rate"),
    ("--min-alpha", "min_alpha", float, "final learning rate"),
    ("--min-count", "min_count", int, "drop rarer words"),
    ("--max-vocab-size", "max_vocab_size", int, "vocabulary cap (0 = none)"),
    ("--sample", "sample", float, "subsampling threshold (0 = off)"),
    ("--seed", "seed", int, "random seed"),
    ("--workers", "workers", int, "training threads (0 = all cores)"),
    ("--cache-dir", "cache_dir", str, "encoded-corpus cache ('' = off)"),
]


def pipeline_options(fn):
    for flag, key, typ, help_text in reversed(_OVERRIDES):
        fn = click.option(flag, key, type=typ, default=None, help=f"{help_text} [config: {key}]")(fn)
    fn = click.option("--lowercase/--no-lowercase", "lowercase", default=None,
                      help="lowercase the text [config: lowercase]")(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                      help="YAML file of options (keys as in configs/default.yaml)")(fn)
    return fn


def _load_config(config_path, overrides):
    from .config import load_config

    return load_config(config_path, overrides)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="w2v")
def main():
    """w2v: skip-gram word2vec with TensorFlow-exact NCE, trained by a Numba SGD loop.

    \b
    Example:
      w2v train data/demo.txt --output run --epochs 5
    """


@main.command(context_settings=CONTEXT)
@click.argument("corpus", nargs=-1, required=True)
@click.option("-o", "--output", default="w2v-run", show_default=True, type=click.Path(file_okay=False),
              help="run directory: vectors.txt and config.yaml are written there")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar or log lines")
@pipeline_options
def train(corpus, output, quiet, config_path, **overrides):
    """Train word vectors on CORPUS (files, .gz files or directories of them).

    Options come from the defaults, then --config, then the flags here. Writes OUTPUT/vectors.txt
    (word2vec text format) and OUTPUT/config.yaml (the resolved config).

    \b
    Examples:
      w2v train text8 --output run
      w2v train corpus/ --config configs/tf_word2vec_basic.yaml --epochs 1
      w2v train a.txt b.txt.gz --dim 200 --workers 1 --seed 7
    """
    try:
        cfg = _load_config(config_path, overrides)
        from .train import TrainingError
        from .train import train as train_model

        log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
        train_model(list(corpus), cfg, output, show_progress=None if not quiet else False, log=log)
    except _user_errors() as e:
        _fail(str(e))
    except TrainingError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)


@main.command(context_settings=CONTEXT)
@click.argument("vectors", type=click.Path(dir_okay=False))
@click.argument("words", nargs=-1, required=True)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="neighbours per word")
def similar(vectors, words, k):
    """Nearest neighbours of each WORD by cosine similarity in VECTORS (word2vec text format).

    \b
    Example:
      w2v similar w2v-run/vectors.txt whale ship -k 5
    """
    from .evaluate import UnknownWord, Vectors

    try:
        vecs = Vectors.load(vectors)
    except (OSError, ValueError) as e:
        _fail(f"cannot read vectors {vectors}: {getattr(e, 'strerror', None) or e}")
    status = 0
    for word in words:
        try:
            neighbours = vecs.most_similar(word, k)
        except UnknownWord as e:
            click.echo(f"w2v: {e}", err=True)
            status = 1
            continue
        click.echo(f"{word}: " + ", ".join(f"{w} {s:.3f}" for w, s in neighbours))
    sys.exit(status)


if __name__ == "__main__":
    main()
