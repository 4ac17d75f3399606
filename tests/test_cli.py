import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from w2v import __version__
from w2v.cli import main
from w2v.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_help_does_not_import_numba():
    code = "import sys; from w2v.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\n" \
           "assert 'numba' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)


@pytest.mark.parametrize("command", [[], ["train"], ["sample-pairs"], ["export"], ["report"], ["eval"], ["similar"],
                                     ["analogy"]])
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(main, command + ["--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_version():
    assert __version__ in CliRunner().invoke(main, ["--version"]).output


def test_train_writes_vectors_and_resolved_config(planted_corpus, tmp_path):
    path, _ = planted_corpus
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dim: 16\nepochs: 3\nmin_count: 1\nwindow: 2\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", str(path), "--config", str(cfg), "--epochs", "2", "--output",
                                       str(out), "--workers", "1", "--cache-dir", "", "--num-sampled", "4"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["dim"] == 16 and saved["epochs"] == 2 and saved["window"] == 2 and saved["num_sampled"] == 4
    assert saved["workers"] == 1
    assert (out / "vectors.txt").read_text().splitlines()[0] == "30 16"
    result = CliRunner().invoke(main, ["similar", str(out / "vectors.txt"), "g0w0", "-k", "3"])
    assert result.exit_code == 0 and result.output.startswith("g0w0: ")


def test_default_yaml_lists_every_option_with_its_default():
    path = ROOT / "configs" / "default.yaml"
    assert load_config(path) == Config()
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == len(Config().to_dict()) and all("  # " in ln for ln in lines)
    load_config(ROOT / "configs" / "tf_word2vec_basic.yaml")


@pytest.mark.parametrize("text, message", [
    ("windw: 3\n", "unknown config key 'windw' in .* \\(did you mean 'window'\\?\\)"),
    ("dim: many\n", "'dim' must be int"),
    ("dim: 0\n", "dim must be >= 1"),
    ("alpha: -1\n", "alpha must be > 0"),
    ("[1, 2]\n", "must be a mapping"),
])
def test_bad_config_is_one_clear_line(tmp_path, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)
    corpus = tmp_path / "x.txt"
    corpus.write_text("a b\n")
    result = CliRunner().invoke(main, ["train", str(corpus), "--config", str(cfg), "--output", str(tmp_path / "o")])
    assert result.exit_code != 0 and result.output.count("\n") == 1 and "error" in result.output
    assert not (tmp_path / "o" / "vectors.txt").exists()


@pytest.mark.parametrize("content, message", [(None, "does not exist"), ("", "empty"), ("  \n\t\n", "empty"),
                                               ("a b c\n", "no word reaches min_count=5")])
def test_bad_corpus_is_one_clear_line(tmp_path, content, message):
    corpus = tmp_path / "x.txt"
    if content is not None:
        corpus.write_text(content)
    result = CliRunner().invoke(main, ["train", str(corpus), "--output", str(tmp_path / "o"), "--cache-dir", ""])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o" / "vectors.txt").exists()


def test_num_sampled_must_be_below_vocabulary_with_unique_sampling(tmp_path):
    corpus = tmp_path / "x.txt"
    corpus.write_text("a b c d\n" * 10)
    result = CliRunner().invoke(main, ["train", str(corpus), "--output", str(tmp_path / "o"), "--cache-dir", "",
                                       "--num-sampled", "4"])
    assert result.exit_code == 1 and "num_sampled (4) must be below the vocabulary size (4)" in result.output


# The `w2v train` process loads its modules and kernels with Python's cyclic collector off, and
# turns it on (what exists then frozen out of its walks) when training starts (cli.train,
# loop.collect_from_training); at the exit it freezes everything again (cli._Group.main); a program
# calling the CLI in-process keeps its collector as it was.
_GC_PROBE = """
import atexit, gc, sys
sys.argv = ["w2v", *sys.argv[1:]]   # the console script's name: this process is the command
# registered before the CLI's own exit handler, so it runs after it
atexit.register(lambda: print("at the exit", gc.get_freeze_count(), file=sys.stderr))
import w2v.loop, w2v.run
seen = {}
prepare = w2v.run.prepare
def probe_prepare(*a, **k):
    seen["loading"] = gc.isenabled()
    return prepare(*a, **k)
w2v.run.prepare = probe_prepare
runners = w2v.loop.TrainingLoop.run
def probe_run(self, *a, **k):
    try:
        return runners(self, *a, **k)
    finally:
        seen["training"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
        print(seen, file=sys.stderr)
w2v.loop.TrainingLoop.run = probe_run
from w2v.cli import main
main()
"""


_TINY_RUN = ["--epochs", "1", "--dim", "8", "--min-count", "1", "--workers", "1", "--cache-dir", "",
             "--num-sampled", "4"]


def test_the_w2v_process_loads_without_the_collector_and_trains_with_it(planted_corpus, tmp_path):
    path, _ = planted_corpus
    args = ["train", str(path), "--output", str(tmp_path / "run"), *_TINY_RUN]
    done = subprocess.run([sys.executable, "-c", _GC_PROBE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    seen = ast.literal_eval(next(line for line in done.stderr.splitlines() if line.startswith("{")))
    assert seen["loading"] is False and seen["training"] is True and seen["frozen"] > 10_000, seen
    # what training and the results made is frozen too before the interpreter's last collections
    at_exit = int(next(line for line in done.stderr.splitlines() if line.startswith("at the exit")).split()[-1])
    assert at_exit > seen["frozen"], (at_exit, seen)


def test_the_cli_in_process_leaves_the_callers_collector_alone(planted_corpus, tmp_path):
    import gc

    path, _ = planted_corpus
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["train", str(path), "--output", str(tmp_path / "run"), *_TINY_RUN])
    assert result.exit_code == 0, result.output
    assert gc.isenabled() and gc.get_freeze_count() == frozen
