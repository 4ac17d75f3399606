"""The one training configuration: defaults < YAML file < command line, validated in one place."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(ValueError):
    """A config problem a user must fix; the CLI prints it as one line."""


def _opt(default, help, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Config:
    # model
    dim: int = _opt(100, "embedding dimension")
    window: int = _opt(5, "max context distance; per centre word b is drawn uniformly from 1..window")
    # vocabulary
    min_count: int = _opt(5, "drop words seen fewer times than this")
    max_vocab_size: int = _opt(0, "keep at most this many words, pruning rare ones while counting (0 = no limit)")
    lowercase: bool = _opt(False, "lowercase the text before splitting it into tokens")
    tokenize: str = _opt("whitespace", "how text splits into tokens: 'whitespace' = runs of non-whitespace "
                         "(pre-tokenized text such as text8); 'words' = letters, digits and in-word ' and - "
                         "(raw text: punctuation and quotes split off)", choices=("whitespace", "words"))
    # pairs
    sample: float = _opt(1e-3, "frequent-word subsampling threshold s (0 = keep every token)")
    max_sentence_length: int = _opt(10000, "longer lines are cut into pieces of this many tokens")
    # NCE and its sampler
    num_sampled: int = _opt(5, "negative ids drawn per batch from the log-uniform sampler")
    batch: str = _opt("window", "what one SGD step is: 'window' = one centre's window (inputs: its contexts, "
                      "label: the centre, negatives shared by the window, as word2vec.c); 'pairs' = "
                      "batch_size (centre -> context) pairs sharing the negatives, as TF's tutorial",
                      choices=("window", "pairs"))
    batch_size: int = _opt(1, "with batch 'pairs': skip-gram pairs per SGD step, sharing one sampled set as in TF "
                           "(with batch 'window' anything but 1 is an error)")
    unique: bool = _opt(True, "sample negatives without repetition (tf.nn.nce_loss default)")
    remove_accidental_hits: bool = _opt(False, "mask sampled ids that equal the true label (TF default False)")
    bias_init: str = _opt("log_unigram", "initial NCE biases: log unigram probability or zero",
                          choices=("log_unigram", "zero"))
    # optimisation
    alpha: float = _opt(0.05, "initial learning rate (plain SGD)")
    min_alpha: float = _opt(0.0001, "learning rate at the end; decays linearly with words processed")
    reduction: str = _opt("sum", "step on the gradient of the batch's sum or mean loss (TF tutorial: mean)",
                          choices=("sum", "mean"))
    epochs: int = _opt(5, "passes over the corpus")
    seed: int = _opt(1, "seed of every random draw; with workers 1 runs repeat bit for bit")
    workers: int = _opt(0, "training threads (0 = one per CPU core)")
    # I/O
    format: str = _opt("text", "vectors file of a run: word2vec text, word2vec binary, npy or projector files",
                       choices=("text", "binary", "npy", "projector"))
    log_interval: float = _opt(30.0, "seconds between log.jsonl lines at most (there is also one every 1%)")
    checkpoint_interval: float = _opt(600.0, "seconds between checkpoints while training (0 = only at the end)")
    cache_dir: str = _opt("~/.cache/w2v", "where the encoded corpus is cached ('' = no cache)")
    chunk_bytes: int = _opt(1 << 20, "bytes read at a time; bounds memory on files with no newline")
    # continued training (w2v train NEW --init-from RUN)
    init_from: str = _opt("", "run directory whose vectors, biases and vocabulary this run starts from, or a "
                          "word2vec vectors file whose vectors its words start from ('' = fresh)")
    prune: bool = _opt(False, "with init_from: also drop its words below min_count / past max_vocab_size")
    init_from_corpus: str = _opt("", "recorded by w2v, not read: the init_from run's corpus files (':' between)")
    continued_on: str = _opt("", "recorded by w2v, not read: this continued run's corpus files (':' between)")
    # where training runs
    backend: str = _opt("local", "local: worker threads in this process; ray: one Ray actor per node, each with "
                        "`workers` threads", choices=("local", "ray"))
    address: str = _opt("", "Ray cluster to join, host:port ('' = start a local Ray instance for the run)")
    nodes: int = _opt(0, "Ray actors, one per node, each training on its own shard (0 = every node of the cluster)")
    sync_interval: float = _opt(0.1, "Ray: seconds between parameter syncs (each adds up the actors' changes)")
    sync_rows: int = _opt(1024, "Ray: rows of the smallest sync; the k-th sync moves the most frequent "
                          "sync_rows * 2^(trailing zero bits of k) rows, so all rows now and then")
    sync_damped_rows: int = _opt(1024, "Ray: the most frequent rows, which move by at most twice the mean change "
                                 "of the actors that moved them; other rows by the sum of the changes")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved_workers(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)


FIELDS = {f.name: f for f in fields(Config)}


def _coerce(name: str, value):
    """Check one value's type against the dataclass field; ints are accepted where floats are."""
    ftype = FIELDS[name].type
    if ftype == "bool":
        if isinstance(value, bool):
            return value
    elif ftype == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            if not -2**63 <= value < 2**63:  # the kernels take int64
                raise ConfigError(f"config key '{name}' is out of range: {value}")
            return value
    elif ftype == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key '{name}' must be a finite number, got {value!r}")
            return float(value)
    elif ftype == "str":
        if isinstance(value, str):
            return value
    raise ConfigError(f"config key '{name}' must be {ftype}, got {type(value).__name__} {value!r}")


def validate(cfg: Config, vocab_size: int | None = None) -> Config:
    """Raise ConfigError for the first out-of-range value; vocab_size enables the sampler check."""
    checks = [
        (cfg.dim >= 1, "dim must be >= 1"),
        (cfg.window >= 1, "window must be >= 1"),
        (cfg.min_count >= 1, "min_count must be >= 1"),
        (cfg.max_vocab_size == 0 or cfg.max_vocab_size >= 2,
         "max_vocab_size must be 0 (no limit) or at least 2: training needs two words"),
        (cfg.sample >= 0, "sample must be >= 0"),
        (cfg.max_sentence_length >= 1, "max_sentence_length must be >= 1"),
        (cfg.num_sampled >= 1, "num_sampled must be >= 1"),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (cfg.alpha > 0, "alpha must be > 0"),
        (0 <= cfg.min_alpha <= cfg.alpha, "min_alpha must be between 0 and alpha"),
        (cfg.epochs >= 1, "epochs must be >= 1"),
        (cfg.workers >= 0, "workers must be >= 0 (0 = one per core)"),
        (64 <= cfg.chunk_bytes <= 1 << 30, "chunk_bytes must be between 64 and 2**30"),
        (cfg.log_interval > 0, "log_interval must be > 0"),
        (cfg.checkpoint_interval >= 0, "checkpoint_interval must be >= 0"),
        (bool(cfg.init_from) or not cfg.prune, "prune applies only to a continued run (init_from, --init-from RUN)"),
        (cfg.nodes >= 0, "nodes must be >= 0 (0 = every node of the cluster)"),
        (cfg.sync_interval > 0, "sync_interval must be > 0"),
        (cfg.sync_rows >= 1, "sync_rows must be >= 1"),
        (cfg.sync_damped_rows >= 0, "sync_damped_rows must be >= 0"),
        (cfg.backend == "ray" or (not cfg.address and cfg.nodes == 0),
         "address and nodes are options of the Ray backend: add --backend ray (config: backend: ray)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    for name, f in FIELDS.items():
        choices = f.metadata["choices"]
        if choices and getattr(cfg, name) not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {getattr(cfg, name)!r}")
    if vocab_size is not None:
        _check_vocab_size(cfg, vocab_size)
    return cfg


# unique sampling may make at most this many draws per sampled id, on average, before a
# configuration is refused as one that crawls (see unique_draws)
MAX_DRAWS_PER_SAMPLE = 10


def unique_draws(vocab_size: int, num_sampled: int) -> list[float]:
    """About how many log-uniform draws unique sampling makes to find 1, 2, ... ``num_sampled``
    distinct ids of ``vocab_size``: the k-th new id takes 1 / (1 - P(the k-1 most frequent ids))
    draws. A slight overestimate (1.3x measured at V 1,000-4,000, S near V); what matters is that
    it grows without bound as num_sampled nears the vocabulary size."""
    log_v = math.log(vocab_size + 1)
    total, out = 0.0, []
    for j in range(num_sampled):
        total += log_v / (log_v - math.log(j + 1))
        out.append(total)
    return out


def _check_vocab_size(cfg: Config, vocab_size: int) -> None:
    """What the vocabulary's size allows: two words at least, and a num_sampled unique sampling
    can draw without crawling."""
    if vocab_size < 2:
        raise ConfigError(f"the vocabulary has {vocab_size} word(s) (min_count {cfg.min_count}, max_vocab_size "
                          f"{cfg.max_vocab_size}): training needs at least 2")
    if not cfg.unique:
        return
    fewer = (f"raise max_vocab_size ({cfg.max_vocab_size}) or lower min_count"
             if cfg.max_vocab_size else "lower min_count")
    if cfg.num_sampled >= vocab_size:
        raise ConfigError(f"num_sampled ({cfg.num_sampled}) must be below the vocabulary size ({vocab_size}) "
                          f"with unique sampling: lower num_sampled, or {fewer}")
    if 4 * cfg.num_sampled <= vocab_size:  # far below: unique_draws / num_sampled stays under 2.5
        return
    draws = unique_draws(vocab_size, cfg.num_sampled)
    if draws[-1] > MAX_DRAWS_PER_SAMPLE * cfg.num_sampled:
        most = max(s for s in range(1, cfg.num_sampled + 1) if draws[s - 1] <= MAX_DRAWS_PER_SAMPLE * s)
        raise ConfigError(
            f"num_sampled ({cfg.num_sampled}) is too close to the vocabulary size ({vocab_size}): unique sampling "
            f"would make about {draws[-1]:,.0f} draws per batch to find {cfg.num_sampled} distinct ids, and training "
            f"would crawl; use num_sampled {most} or less, or unique: false")


def apply_overrides(cfg: Config, overrides: dict, source: str) -> Config:
    values = cfg.to_dict()
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigError(f"config keys in {source} must be option names, got {key!r}")
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown config key '{key}' in {source}{hint}")
        values[key] = _coerce(key, value)
    return Config(**values)


_MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines; this refuses a corpus given as --config


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Defaults, then the YAML file, then overrides (None values are ignored), validated."""
    cfg = Config()
    if path is not None:
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                raw = fh.read(_MAX_CONFIG_BYTES + 1)
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
        if len(raw) > _MAX_CONFIG_BYTES:
            raise ConfigError(f"config {path} is over {_MAX_CONFIG_BYTES >> 10} KiB: not a w2v config file")
        cfg = parse_config(raw, str(path))
    if overrides:
        cfg = apply_overrides(cfg, {k: v for k, v in overrides.items() if v is not None}, "command line")
    return check_effective(validate(cfg))


# Options of one layout only: key -> (the setting they need, why they do nothing without it)
_RAY_ONLY = ("sync_interval", "sync_rows", "sync_damped_rows")


def check_effective(cfg: Config) -> Config:
    """Refuse a value that would have no effect in the layout chosen (ConfigError naming why): a
    user who sets it expects it to change something. Applied to what a user gives (a config file,
    the command line), not to configs w2v wrote itself."""
    if cfg.batch == "window" and cfg.batch_size != 1:
        raise ConfigError(f"batch_size {cfg.batch_size} has no effect with batch 'window' (one SGD step is one "
                          "centre's window, as word2vec.c): add --batch pairs (config: batch: pairs) for steps of "
                          "batch_size pairs, or drop batch_size")
    defaults = Config()
    for key in _RAY_ONLY:
        if cfg.backend != "ray" and getattr(cfg, key) != getattr(defaults, key):
            raise ConfigError(f"{key} is an option of the Ray backend and has no effect with backend "
                              f"{cfg.backend!r}: add --backend ray (config: backend: ray), or drop {key}")
    return cfg


def parse_config(raw: bytes | str, source: str) -> Config:
    """The defaults overridden by a YAML mapping (a config file, or the one a checkpoint holds), not
    yet validated; any bytes give a Config or a ConfigError."""
    import yaml

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        data = yaml.safe_load(text)
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {source} is not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {source} is not valid YAML: {_yaml_problem(e, text)}") from None
    except RecursionError:
        raise ConfigError(f"config {source} is not valid YAML: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {source} must be a mapping of option: value")
    return apply_overrides(Config(), data, source)


def _yaml_problem(e, text: str) -> str:
    """PyYAML's error as one line: where (line and column, 1-based, and the line itself) and what."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    what = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
    if mark is None:
        return what
    lines = text.splitlines()
    shown = lines[mark.line].strip() if mark.line < len(lines) else ""
    started = getattr(e, "context_mark", None)
    context = (f"; {e.context} that starts on line {started.line + 1}"
               if getattr(e, "context", None) and started is not None and started.line != mark.line else "")
    return (f"line {mark.line + 1}, column {mark.column + 1}: {what}" + (f" (in {shown[:60]!r})" if shown else "")
            + context)


def save_config(cfg: Config, path: str | Path) -> None:
    import yaml

    from .io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
