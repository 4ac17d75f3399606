"""Command line: a thin click layer over the Python API (w2v.run.train, w2v.export.export, ...).

Heavy modules (numpy, numba) are imported inside the commands, so ``w2v --help`` is instant.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys

import click

from . import __version__, _interrupted_while_starting, _is_the_command

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# Exit statuses (documented in the group's --help and docs/cli.md)
EXIT_USER, EXIT_USAGE = 1, 2


def _fail(message: str, code: int = EXIT_USER):
    click.echo(f"w2v: error: {message}", err=True)
    sys.exit(code)


def _warn(message: str):
    click.echo(f"w2v: warning: {message}", err=True)


class _Group(click.Group):
    """click's group with every error as one ``w2v: error: ...`` line: click's usage errors
    (unknown option or command, with its "Did you mean" hint; a missing argument; a value of the
    wrong type) exit 2, everything else a user must fix exits 1."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        the_process = _is_the_process()
        if the_process:
            # at the exit every object dies with the process: frozen (registered first, so it runs
            # after every other exit handler), the interpreter's last collections do not walk them
            # (they took 0.16-0.27 s after a big.txt run, for the Numba modules and kernels)
            atexit.register(gc.freeze)
        try:
            if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
                signal.signal(signal.SIGINT, signal.default_int_handler)  # commands handle their own from here
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # plain `w2v`: the help, as click prints it
            click.echo(e.format_message())
            sys.exit(EXIT_USAGE)
        except click.UsageError as e:
            message = " ".join(e.format_message().split()).rstrip(".")
            where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            _fail(message + where, EXIT_USAGE)
        except click.ClickException as e:
            _fail(" ".join(e.format_message().split()), EXIT_USER)
        except (click.Abort, KeyboardInterrupt):  # Ctrl-C or end of input outside training (which handles its own)
            ignored = not the_process  # the command's process: no Ctrl-C may end its exit by SIGINT
            while not ignored:  # (as in `train`: signal.signal() may raise one already pending)
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    ignored = True
                except KeyboardInterrupt:
                    pass
            _fail("interrupted", 130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _is_the_process() -> bool:
    """This process is the `w2v` command (its console script, or python -m w2v.cli), which exits
    when the command ends, rather than a program calling the CLI in-process (click's CliRunner):
    only then may a command leave signals ignored until the exit."""
    return _is_the_command()


def _user_errors():
    """The exception types that mean 'the user must fix something': one line, no traceback."""
    from .config import ConfigError
    from .corpus import CorpusError
    from .errors import ResourceError, TrainingError
    from .io import OutputError

    return (ConfigError, CorpusError, OutputError, ResourceError, TrainingError)


# Options shared by every command that builds the training pipeline: (flag, config key, type, help)
_OVERRIDES = [
    ("--dim", "dim", int, "embedding dimension"),
    ("--window", "window", int, "max context distance"),
    ("--num-sampled", "num_sampled", int, "negatives per batch"),
    ("--batch", "batch", click.Choice(["window", "pairs"]), "one SGD step: a centre's window, or batch_size pairs"),
    ("--batch-size", "batch_size", int,
     "with --batch pairs: pairs per SGD step (sharing one sampled set); an error with --batch window"),
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
    from .config import Config  # stdlib only: --help stays instant

    defaults = Config()
    for flag, key, typ, help_text in reversed(_OVERRIDES):
        fn = click.option(flag, key, type=typ, default=None,
                          help=f"{help_text} [config: {key}; default {getattr(defaults, key)!r}]")(fn)
    fn = click.option("--lowercase/--no-lowercase", "lowercase", default=None,
                      help="lowercase the text [config: lowercase; default False]")(fn)
    fn = click.option("--tokenize", "tokenize", type=click.Choice(["whitespace", "words"]), default=None,
                      help="whitespace: tokens are what spaces separate (pre-tokenized text such as text8); "
                           "words: letters, digits and in-word ' and -, punctuation split off (raw text) "
                           "[config: tokenize; default 'whitespace']")(fn)
    fn = click.option("--no-cache", "no_cache", is_flag=True,
                      help="do not cache the encoded corpus (same as --cache-dir '')")(fn)
    fn = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                      help="YAML file of options (keys as in configs/default.yaml)")(fn)
    return fn


def _load_config(config_path, overrides):
    from .config import load_config

    if overrides.pop("no_cache", False):
        overrides["cache_dir"] = ""
    return load_config(config_path, overrides)


_EPILOG = """\b
Errors are one line on stderr, "w2v: error: ...", and the exit status says which kind:
  0    done (plain `w2v` prints this help and exits 2)
  1    a mistake w2v found: an option out of range, a file missing or unreadable, a word not in
       the vocabulary, a run directory in use, training that cannot go on (a NaN loss)
  2    the command line could not be parsed: an unknown command or option, a missing argument,
       a value of the wrong type or not among the choices
  130  stopped by Ctrl-C (143: by SIGTERM; 128 + the signal), after saving what can be resumed
Warnings ("w2v: warning: ...") do not change the status."""


@click.group("w2v", cls=_Group, context_settings=CONTEXT, epilog=_EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="w2v")
def main():
    """w2v: skip-gram word2vec with TensorFlow-exact NCE, trained by a Numba SGD loop.

    \b
    Example:
      w2v train data/demo.txt --output run --epochs 5
    """


@main.command(context_settings=CONTEXT)
@click.argument("corpus", nargs=-1)
@click.option("-o", "--output", default="w2v-run", show_default=True, type=click.Path(file_okay=False),
              help="run directory: vectors, vocab.txt, config.yaml, log.jsonl, checkpoint.npz")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="continue the run in this directory from its checkpoint (with --epochs: to that many epochs; "
                   "with --workers: another number of threads, the rest of the work re-split)")
@click.option("--init-from", "init_from", type=click.Path(), default=None,
              help="a new run on CORPUS starting from a run directory's vectors and vocabulary (its words + "
                   "CORPUS's new ones reaching min-count; its settings are the defaults, alpha half of its own), "
                   "or from a word2vec text/binary vectors file (CORPUS's vocabulary; its words found in the "
                   "file start from those vectors, dim from the file)")
@click.option("--prune", is_flag=True,
              help="with --init-from: also drop its words below min-count / past max-vocab-size in the merged counts")
@click.option("--format", "fmt", type=click.Choice(["text", "binary", "npy", "projector"]), default=None,
              help="vectors format [config: format, default text]")
@click.option("--overwrite", is_flag=True,
              help="replace the run already in OUTPUT (finished, or unfinished: its checkpoint is lost)")
@click.option("-q", "--quiet", is_flag=True,
              help="no progress bar or log lines (no bar anyway when stderr is not a terminal)")
@click.option("--backend", type=click.Choice(["local", "ray"]), default=None,
              help="local: threads in this process; ray: one Ray actor per node, --workers threads each "
                   "[config: backend; default 'local']")
@click.option("--address", default=None,
              help="Ray cluster to join, host:port (with --resume too); without it a local Ray instance "
                   "runs for the run [config: address]")
@click.option("--nodes", type=int, default=None,
              help="Ray actors, one per node, each on its own share of the corpus (0 = every node) "
                   "[config: nodes; default 0]")
@pipeline_options
def train(corpus, output, resume_dir, init_from, prune, fmt, overwrite, quiet, backend, address, nodes, config_path,
          **overrides):
    """Train word vectors on CORPUS (files, .gz files or directories of them).

    Options come from the defaults, then --config, then the flags here. Writes into OUTPUT the
    vectors (vectors.txt, word2vec text format, unless --format), vocab.txt, config.yaml (the
    resolved config), log.jsonl and checkpoint.npz. Ctrl-C or SIGTERM stops within a second and
    saves the checkpoint, then vectors.partial.txt (seconds more for a large vocabulary), and prints
    the command that continues (with --quiet too).
    An OUTPUT holding a run is refused unless --overwrite, as is one another w2v train is writing.

    \b
    Examples:
      w2v train text8 --output run
      w2v train corpus/ --config configs/tf_word2vec_basic.yaml --epochs 1
      w2v train a.txt b.txt.gz --dim 200 --workers 1 --seed 7
      w2v train --resume run                # the rest of an interrupted run
      w2v train --resume run --epochs 10    # or more epochs
      w2v train --resume run --workers 4    # on another number of threads (not bit-identical then)
      w2v train news.txt --init-from run --output run2   # run's vectors, trained further on news.txt
      w2v train news.txt --init-from GoogleNews.bin --output run3   # starting from pretrained vectors
      w2v train text8 --backend ray --nodes 2 --workers 1           # Ray actors on this machine
      w2v train corpus/ --backend ray --address 10.0.0.1:6379 --nodes 8   # a cluster (ray start --head)
    """
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    show = False if quiet else None
    the_process = _is_the_process()
    if the_process:
        gc.disable()  # while the modules and kernels load: on again when training starts (loop.collect_from_training)
    try:  # the imports too: a Ctrl-C while numpy and numba load is "interrupted before training started"
        from .loop import Interrupted, collect_from_training, hold_signals_to_exit

        if the_process:  # from the start of training to the exit, a signal cannot cut the files or the exit
            hold_signals_to_exit()
            collect_from_training()
        if resume_dir is not None:
            extra = [k for k, v in overrides.items() if v not in (None, False) and k not in ("epochs", "workers")]
            if init_from is not None:
                _fail("--resume continues a run, --init-from starts a new one from a run: give one of them")
            if corpus or config_path or extra or fmt or prune or overwrite or backend or nodes is not None:
                _fail("--resume takes the run's own corpus and config; only --epochs, --workers (and a Ray run's "
                      "--address) may change")
            if overrides.get("workers") is not None:
                _check_workers(overrides["workers"])
            from .run import resume

            resume(resume_dir, overrides.get("epochs"), show_progress=show, log=log, address=address,
                   workers=overrides.get("workers"))
            return
        if not corpus:
            _fail("give a CORPUS to train on (or --resume DIR)")
        overrides.update(format=fmt, backend=backend, address=address, nodes=nodes)
        overrides["prune"] = prune or None
        if init_from is not None:
            from .run import continued_config

            if overrides.pop("no_cache", False):
                overrides["cache_dir"] = ""
            cfg = continued_config(init_from, config_path, overrides)
        else:
            cfg = _load_config(config_path, overrides)
        if cfg.backend == "local":
            _check_workers(cfg.workers)
        from .run import train as train_run

        train_run(list(corpus), cfg, output, show_progress=show, log=log, overwrite=overwrite)
    except KeyboardInterrupt:  # before training started: the run directory is not made yet
        said = "interrupted before training started: nothing was written"
        if the_process:
            # a second Ctrl-C cannot cut the exit short. Written out here, not in a function (a call
            # runs Python's signal check on entry): signal.signal() first runs the handler of a
            # Ctrl-C already pending, raising it from inside, with the old handler still in place
            ignored = False
            while not ignored:
                try:
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    ignored = True
                except KeyboardInterrupt:
                    pass
            click.echo(f"w2v: error: {said}", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            # not SystemExit: once a KeyboardInterrupt went unhandled inside an import (numpy's,
            # numba's), Python would end the process by SIGINT after this line instead of 130
            os._exit(130)
        _fail(said, 130)
    except _user_errors() as e:
        _fail(str(e))
    except Interrupted as e:
        if quiet:  # --quiet silences progress, not what the user must do next
            if e.finished:
                click.echo(f"w2v: interrupted after the run had finished: its results in {e.run_dir}/ are complete",
                           err=True)
            elif e.run_dir is not None:
                click.echo(f"w2v: stopped; checkpoint saved; continue with: w2v train --resume {e.run_dir}", err=True)
            else:
                click.echo("w2v: interrupted before training started: nothing was written", err=True)
        sys.exit(e.code)


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _check_workers(workers: int) -> None:
    cores = _cpu_cores()
    if workers > cores:
        _warn(f"--workers {workers:,} is more than the {cores:,} CPU core(s) this process may use: the extra "
              "threads take turns on the cores and make training slower, not faster (0 = one per core)")


@main.command("sample-pairs", context_settings=CONTEXT)
@click.argument("corpus", nargs=-1, required=True)
@click.option("-n", "--num", default=20, show_default=True, type=click.IntRange(min=0), help="pairs to show")
@click.option("--skip", default=0, show_default=True, type=click.IntRange(min=0), help="pairs to skip first")
@click.option("--format", "fmt", type=click.Choice(["table", "tsv", "jsonl"]), default="table", show_default=True)
@click.option("--ids", is_flag=True, help="show vocabulary ids beside the words (table format)")
@click.option("--negatives", is_flag=True, help="after each batch: its sampled ids, expected counts, accidental hits")
@click.option("--stats", is_flag=True, help="statistics of the whole stream instead of pairs")
@click.option("--max-tokens", default=0, type=click.IntRange(min=0), help="--stats over the first N tokens only")
@pipeline_options
def sample_pairs(corpus, num, skip, fmt, ids, negatives, stats, max_tokens, config_path, **overrides):
    """Show exactly what training sees: the skip-gram pairs of the first epoch, in order.

    With the same config and seed these are the very pairs, in order, that `w2v train --workers 1`
    consumes in its first epoch (the same code and random streams). Pairs print as
    `centre -> context`, like TensorFlow's tutorial (`3081 originated -> 12 as` with --ids).

    \b
    Examples:
      w2v sample-pairs data/demo.txt --num 10 --ids
      w2v sample-pairs data/demo.txt --num-sampled 5 --negatives --num 8
      w2v sample-pairs data/demo.txt --batch pairs --batch-size 4 --num-sampled 5 --negatives --num 8
      w2v sample-pairs data/demo.txt --stats
      w2v sample-pairs text8 --config my.yaml --format jsonl --num 1000 > pairs.jsonl
    """
    import json

    if fmt == "tsv" and (negatives or stats):
        _fail("--format tsv holds pairs only (fixed columns); use table or jsonl with --negatives/--stats")
    try:
        cfg = _load_config(config_path, overrides)
        from .dataset import prepare
        from .inspect import pair_stats
        from .inspect import sample_pairs as pairs_of

        dataset = prepare(list(corpus), cfg)
        if stats:
            result = pair_stats(dataset, cfg, max_tokens)
            click.echo(json.dumps(result) if fmt == "jsonl" else _stats_table(result))
            return
        if fmt == "tsv":
            click.echo("center\tcontext\tcenter_id\tcontext_id")
        for rec in pairs_of(dataset, cfg, num, skip, negatives):
            if fmt == "jsonl":
                click.echo(json.dumps(rec))
            elif fmt == "tsv":
                click.echo(f"{rec['center']}\t{rec['context']}\t{rec['center_id']}\t{rec['context_id']}")
            elif "kind" in rec:
                click.echo(_negatives_table(rec))
            elif ids:
                click.echo(f"{rec['center_id']:>7} {rec['center']} -> {rec['context_id']} {rec['context']}")
            else:
                click.echo(f"{rec['center']} -> {rec['context']}")
    except _user_errors() as e:
        _fail(str(e))


def _negatives_table(rec) -> str:
    sampled = " ".join(f"{s['word']}:{s['expected_count']:.4g}" for s in rec["sampled"])
    true_q = " ".join(f"{q:.4g}" for q in rec["true_expected_count"])
    if rec["accidental_hits"]:
        where = ", ".join(f"pair {h['pair']} at position {h['position']}" for h in rec["accidental_hits"])
        hits = f"{where} ({'masked' if rec['removed'] else 'left in as negatives: remove_accidental_hits false'})"
    else:
        hits = "none"
    if rec["label"] is not None:
        shape = f"window of {rec['label']}: {rec['pairs']} context(s) as inputs, label {rec['label']}"
    else:
        shape = f"{rec['pairs']} pair(s): centres as inputs, contexts as labels"
    return (f"  batch {rec['batch']} ({shape}): {len(rec['sampled'])} sampled in {rec['num_tries']} tries; "
            f"word:Q (NCE subtracts log Q)\n    {sampled}\n    labels' Q: {true_q}\n    accidental hits: {hits}")


def _stats_table(st) -> str:
    rows = [
        ("tokens read", f"{st['tokens_read']:,}"),
        ("in-vocabulary tokens", f"{st['in_vocabulary_tokens']:,}"),
        ("vocabulary size", f"{st['vocabulary_size']:,} of {st['distinct_words']:,} distinct words"),
        ("dropped by min_count", f"{st['dropped_by_min_count']:,} words, {st['dropped_tokens']:,} tokens"),
        ("pieces (sentences)", f"{st['pieces']:,}"),
        ("kept after subsampling", f"{st['tokens_kept']:,} ({st['kept_fraction']:.1%})"),
        ("pairs generated", f"{st['pairs']:,} ({st['pairs_per_token_read']:.2f} per token read)"),
        ("mean effective window", f"{st['mean_effective_window']:.3f} each side"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines += ["", "subsampling of the most frequent words:",
              f"  {'word':<14}{'read':>12}{'kept':>12}{'observed':>10}{'formula':>10}"]
    for w in st["frequent_words"]:
        obs = f"{w['observed_keep']:.4f}" if w["observed_keep"] is not None else "-"
        lines.append(f"  {w['word'][:13]:<14}{w['read']:>12,}{w['kept']:>12,}{obs:>10}{w['formula_keep']:>10.4f}")
    sp = st["sampler"]
    lines += ["", f"log-uniform sampler, {sp['draws']:,} draws: observed frequency of the top ids against P(k)",
              f"  {'id':>4} {'word':<14}{'observed':>10}{'P(k)':>10}{'unigram':>10}"]
    for t in sp["top"]:
        lines.append(f"  {t['id']:>4} {t['word'][:13]:<14}{t['observed']:>10.5f}{t['p']:>10.5f}{t['unigram']:>10.5f}")
    lines.append(f"  max abs error {sp['max_abs_error']:.2e}, max rel error {sp['max_rel_error']:.2%}")
    return "\n".join(lines)


@main.command(context_settings=CONTEXT)
@click.argument("source", type=click.Path())
@click.option("--to", "to", type=click.Choice(["text", "binary", "npy", "projector"]), required=True,
              help="text/binary: word2vec files; npy: OUT/vectors.npy + OUT/vocab.txt; "
                   "projector: OUT/vectors.tsv + OUT/metadata.tsv for TensorBoard")
@click.argument("out", type=click.Path())
@click.option("--which", type=click.Choice(["input", "output", "both"]), default="input", show_default=True,
              help="input: the word vectors; output: NCE output weights; both: the two side by side [V, 2D]")
@click.option("--limit", default=0, type=click.IntRange(min=0), help="only the N most frequent words (0 = all)")
def export(source, to, out, which, limit):
    """Export SOURCE (a run directory or a word2vec text/binary file) for other tools.

    OUT is a file for text and binary, a directory for npy and projector. Output vectors
    (--which output/both) come from a run directory's checkpoint.

    \b
    Examples:
      w2v export w2v-run --to binary vectors.bin        # gensim: load_word2vec_format(..., binary=True)
      w2v export w2v-run --to projector proj --limit 10000   # projector.tensorflow.org: Load
      w2v export w2v-run/vectors.txt --to npy arrays    # numpy.load('arrays/vectors.npy')
    """
    from .export import export as export_vectors

    try:
        path = export_vectors(source, to, out, which, limit)
    except _user_errors() as e:
        _fail(str(e))
    click.echo(f"wrote {path}", err=True)


@main.command(context_settings=CONTEXT)
@click.argument("source", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="the page to write [default: SOURCE/report.html]; needed for a vectors file; "
                   "with --no-html the PNG [default: SOURCE/report.png]")
@click.option("--words", "n_words", default=None, type=click.IntRange(min=2),
              help="the most frequent words on the page (map, search, analogies) [default: 5000]; "
                   "the PNG labels 100 of them (with --no-html: N, default 100)")
@click.option("--map", "method", type=click.Choice(["tsne", "umap", "pca"]), default=None,
              help="the page's map [default: tsne with the report extra installed, else pca]")
@click.option("--eval", "run_eval", is_flag=True,
              help="evaluate the vectors (data/'s analogy and similarity sets) for the page; without it the "
                   "page shows SOURCE/eval.json when there (w2v eval --json's output)")
@click.option("--no-html", "no_html", is_flag=True, help="only the PNG")
def report(source, output, n_words, method, run_eval, no_html):
    """A page to explore SOURCE (a run directory, even one still training, or a vectors file) and a PNG.

    For a run directory writes SOURCE/report.html, one self-contained page that opens offline (a map
    of the most frequent words to zoom and hover, nearest-word search, analogies, the loss and
    learning-rate curves, the config and figures of the run), and SOURCE/report.png (loss, learning
    rate, a PCA map). For a vectors file alone, the page only: give --output PAGE.html. Needs the
    report extra (pip install 'w2v[report]') for the PNG and the t-SNE map.

    \b
    Examples:
      w2v report w2v-run && xdg-open w2v-run/report.html
      w2v report w2v-run --words 10000 --eval
      w2v report vectors.bin --output vectors.html --map pca
      w2v report w2v-run --no-html --words 300     # report.png only
    """
    from .report import make_report

    log = lambda msg: click.echo(f"w2v report: {msg}", err=True)  # noqa: E731
    try:
        paths = make_report(source, output, n_words, method, html=not no_html, run_eval=run_eval, log=log)
    except ImportError as e:
        _fail(f"w2v report needs the report extra ({e.name or e}): pip install 'w2v[report]'")
    except _user_errors() as e:
        _fail(str(e))
    for path in paths:
        click.echo(f"wrote {path}", err=True)


def _load_vectors(path):
    """A word2vec text/binary file, or a run directory (the word vectors in its checkpoint)."""
    from .evaluate import Vectors

    if os.path.isdir(path):
        from .export import load_source

        try:
            words, _, vectors = load_source(path, "input")
        except _user_errors() as e:
            _fail(str(e))
        return Vectors(words, vectors)
    try:
        return Vectors.load(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        _fail(f"cannot read vectors {path}: {getattr(e, 'strerror', None) or e}")


@main.command("eval", context_settings=CONTEXT)
@click.argument("vectors", type=click.Path())
@click.option("--analogies", multiple=True, type=click.Path(dir_okay=False),
              help="Google-analogy-format file, repeatable [default: data/questions-words.txt]")
@click.option("--similarity", multiple=True, type=click.Path(dir_okay=False),
              help="word-pair similarity file (WordSim-353 style), repeatable [default: data/wordsim353.tsv]")
@click.option("--restrict-vocab", default=30000, show_default=True, type=click.IntRange(min=1),
              help="analogies: only questions within the N most frequent words, answers among them")
@click.option("--method", type=click.Choice(["3cosadd", "3cosmul", "both"]), default="3cosadd", show_default=True,
              help="analogy method: 3CosAdd (gensim's) or Levy & Goldberg's 3CosMul")
@click.option("--json", "as_json", is_flag=True, help="one JSON object instead of tables")
def evaluate(vectors, analogies, similarity, restrict_vocab, method, as_json):
    """Analogy accuracy and word-similarity correlation of VECTORS (a word2vec text/binary file or a
    run directory).

    Analogies are scored as gensim's evaluate_word_analogies (case-insensitive, questions with a
    word outside --restrict-vocab skipped and counted); similarity as evaluate_word_pairs
    (Spearman and Pearson of cosine similarity against the human scores).

    \b
    Examples:
      w2v eval w2v-run
      w2v eval vectors.bin --analogies questions-words.txt --similarity simlex999.txt --json
    """
    import json

    from .evaluate import default_eval_files, evaluate_analogies, evaluate_similarity

    if not analogies and not similarity:
        analogies, similarity = default_eval_files()
        if not analogies and not similarity:
            _fail("no evaluation files: give --analogies FILE and/or --similarity FILE")
    for path in (*analogies, *similarity):
        if not os.path.isfile(path):
            _fail(f"evaluation file {path} does not exist")
    vecs = _load_vectors(vectors)
    methods = ["3cosadd", "3cosmul"] if method == "both" else [method]
    result = {"analogies": [evaluate_analogies(vecs, p, restrict_vocab, m) for p in analogies for m in methods],
              "similarity": [evaluate_similarity(vecs, p) for p in similarity]}
    for r in result["analogies"] + result["similarity"]:
        bad = r.pop("malformed", 0) if "malformed" in r else r["skipped"]
        if bad:
            _warn(f"skipped {bad:,} malformed line(s) in {r['file']}")
    if as_json:
        click.echo(json.dumps(result))
        return
    for r in result["analogies"]:
        click.echo(f"{r['file']} ({r['method']}, {restrict_vocab:,} most frequent words): "
                   f"{r['accuracy']:.2%} ({r['correct']:,}/{r['total']:,}; {r['skipped']:,} skipped for unknown words)")
        for s in r["sections"]:
            acc = f"{s['correct'] / s['total']:.1%}" if s["total"] else "-"
            click.echo(f"  {s['section']:<28}{acc:>7} ({s['correct']:,}/{s['total']:,})")
    for r in result["similarity"]:
        click.echo(f"{r['file']}: Spearman {r['spearman']:.4f}, Pearson {r['pearson']:.4f} "
                   f"({r['pairs']:,} pairs, {r['oov']:,} with unknown words)")


@main.command(context_settings=CONTEXT)
@click.argument("vectors", type=click.Path())
@click.argument("a")
@click.argument("b")
@click.argument("c")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="answers to show")
@click.option("--method", type=click.Choice(["3cosadd", "3cosmul"]), default="3cosadd", show_default=True,
              help="3CosAdd (gensim's most_similar) or Levy & Goldberg's 3CosMul (most_similar_cosmul), as eval")
def analogy(vectors, a, b, c, k, method):
    """A is to B as C is to ?: the words nearest to B - A + C (3CosAdd, unit vectors), or by 3CosMul.

    VECTORS is a word2vec text or binary file (w2v's, gensim's, word2vec.c's) or a run directory.
    The answers leave out A, B and C.

    \b
    Examples:
      w2v analogy w2v-run man king woman
      w2v analogy w2v-run/vectors.bin man king woman --method 3cosmul
    """
    from .evaluate import UnknownWord

    vecs = _load_vectors(vectors)
    try:
        answers = vecs.analogy(a, b, c, k, method)
    except UnknownWord as e:
        _fail(str(e))
    click.echo(f"{a} : {b} :: {c} : " + ", ".join(f"{w} {s:.3f}" for w, s in answers))


@main.command(context_settings=CONTEXT)
@click.argument("vectors", type=click.Path())
@click.argument("words", nargs=-1, required=True)
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="neighbours per word")
@click.option("--negative", "negative", multiple=True, metavar="WORD",
              help="repeatable: one query for all WORDS minus these, as gensim's most_similar(positive=WORDS, "
                   "negative=...)")
def similar(vectors, words, k, negative):
    """Nearest neighbours of each WORD by cosine similarity in VECTORS.

    VECTORS is a word2vec text or binary file (w2v's, gensim's, word2vec.c's) or a run directory.
    With --negative, WORDS and the negative words make one query, as gensim's
    most_similar(positive, negative): the nearest to the mean of the WORDS' unit vectors with the
    negatives' subtracted, the query words left out.

    \b
    Examples:
      w2v similar w2v-run/vectors.txt whale ship -k 5
      w2v similar w2v-run king woman --negative man
    """
    from .evaluate import UnknownWord

    vecs = _load_vectors(vectors)
    if negative:
        try:
            neighbours = vecs.query(list(words), list(negative), k)
        except UnknownWord as e:
            _fail(str(e))
        query = " + ".join(words) + "".join(f" - {w}" for w in negative)
        click.echo(f"{query}: " + ", ".join(f"{w} {s:.3f}" for w, s in neighbours))
        return
    status = 0
    for word in words:
        try:
            neighbours = vecs.most_similar(word, k)
        except UnknownWord as e:
            click.echo(f"w2v: error: {e}", err=True)
            status = EXIT_USER
            continue
        click.echo(f"{word}: " + ", ".join(f"{w} {s:.3f}" for w, s in neighbours))
    sys.exit(status)


@main.command(context_settings=CONTEXT)
@click.argument("corpus", nargs=-1)
@click.option("-o", "--output", type=click.Path(), default=None,
              help="the corpus again, one line per input line, pairs joined  [required]")
@click.option("--min-count", default=5, show_default=True, type=int,
              help="words and pairs seen fewer times are never joined")
@click.option("--threshold", default=100.0, show_default=True, type=float,
              help="join a pair whose score (count(a b) - min_count) / count(a) / count(b) * words exceeds this")
@click.option("--delimiter", default="_", show_default=True, help="put between the words of a joined pair")
@click.option("--passes", default=1, show_default=True, type=int,
              help="run again over the output (trigrams and longer), with the same threshold")
@click.option("--max-pairs", default=10_000_000, show_default=True, type=int,
              help="pairs the counting table holds before it prunes rare ones (10,000,000: at most 288 MiB)")
@click.option("--lowercase/--no-lowercase", default=False, show_default=True, help="lowercase the text")
@click.option("--tokenize", type=click.Choice(["whitespace", "words"]), default="whitespace", show_default=True,
              help="whitespace: tokens are what spaces separate; words: letters, digits and in-word ' and -, "
                   "punctuation split off (as `w2v train --tokenize`)")
@click.option("-q", "--quiet", is_flag=True, help="no progress lines")
def phrases(corpus, output, min_count, threshold, delimiter, passes, max_pairs, lowercase, tokenize, quiet):
    """Join frequent word pairs into one token (new york -> new_york), as word2vec's word2phrase.

    Reads CORPUS like `w2v train` (files, .gz files, directories; a line is a sentence), counts
    words and adjacent pairs within lines, and writes OUTPUT with each pair whose score exceeds
    --threshold joined by --delimiter, left to right (a word joined to its left neighbour does not
    join its right one). Train on OUTPUT as on any corpus.

    \b
    Examples:
      w2v phrases text8 --output text8-phrases
      w2v phrases corpus/ --output phrased.txt --passes 2 --threshold 50
      w2v train phrased.txt --output run && w2v similar run/vectors.txt new_york
    """
    if not corpus:
        _fail("give a CORPUS to find phrases in")
    if output is None:
        _fail("give --output FILE for the corpus with phrases joined")
    log = (lambda msg: None) if quiet else (lambda msg: click.echo(f"w2v phrases: {msg}", err=True))
    try:
        from .phrases import detect

        stats = detect(list(corpus), output, min_count=min_count, threshold=threshold, delimiter=delimiter,
                       passes=passes, lowercase=lowercase, max_pairs=max_pairs, log=log, tokenize=tokenize)
    except _user_errors() as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail(f"interrupted: {output} not written", 130)
    for p, st in enumerate(stats, 1):
        if st.top:
            log(f"pass {p} joined most often: " + ", ".join(f"{w} {c:,}" for w, c in st.top))
    log(f"wrote {output}")


if __name__ == "__main__":
    main()
