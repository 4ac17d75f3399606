"""Every `w2v ...` command shown in README.md and docs/*.md names a real command and only options
that command has, with values of the right type (parsed by the CLI's own click parser, not run),
and every relative link of the pages resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from w2v.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SYNOPSIS = re.compile(r"[\[\]]|\.\.\.|[a-z]\|[a-z]")  # [--opt], CORPUS..., --to text|binary


def _shell_lines(page: Path):
    """(line number, command) of each `w2v` command in the page's sh blocks and `$ w2v` examples."""
    in_sh = False
    lines = page.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if n < len(lines) and lines[n].startswith("w2v: error:"):
            continue  # an example of a mistake and its error line
        if line.startswith("```"):
            in_sh = line.strip() in ("```sh", "```bash", "```console") if not in_sh else False
            continue
        text = line.strip()
        if text.startswith("$ "):
            text = text[2:]
        elif not in_sh:
            continue
        text = text.split("  #")[0].split(" # ")[0].strip()
        if text.startswith("w2v "):
            yield n, text


def _commands():
    for page in PAGES:
        for n, text in _shell_lines(page):
            if not SYNOPSIS.search(text) and text.split()[1][0].isalpha() and "COMMAND" not in text:
                # a synopsis line ([--opt], CORPUS..., w2v COMMAND --help) is not a command
                yield pytest.param(text, id=f"{page.name}:{n}")


COMMANDS = list(_commands())


def test_the_pages_show_commands():
    assert len(COMMANDS) >= 20, "the command extraction found too few commands: is the pattern broken?"


@pytest.fixture
def paths_unchecked(monkeypatch):
    """Files named in the pages need not exist here: every other check of the parser stays."""
    monkeypatch.setattr(click.Path, "convert", lambda self, value, param, ctx: value)


@pytest.mark.parametrize("text", COMMANDS)
def test_a_documented_command_parses(text, paths_unchecked):
    args = shlex.split(text)[1:]
    args = [a for a in args if a not in (">", "2>&1")]
    if args[0] in ("--version", "-h", "--help"):
        return
    cmd = main.get_command(click.Context(main), args[0])
    assert cmd is not None, f"{args[0]!r} is not a w2v command"
    with cmd.make_context(args[0], args[1:]) as ctx:
        assert ctx.command is cmd


def test_a_wrong_option_is_caught_by_the_same_check(paths_unchecked):
    cmd = main.get_command(click.Context(main), "train")
    with pytest.raises(click.NoSuchOption):
        cmd.make_context("train", ["corpus.txt", "--no-such-option"])
    with pytest.raises(click.BadParameter):
        cmd.make_context("train", ["corpus.txt", "--epochs", "many"])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_how_it_works_shows_the_layer_order_of_the_contract():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    contract = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = [" | ".join(m.strip().removeprefix("w2v.") for m in layer.split("|"))
              for layer in contract["contracts"][0]["layers"]]
    page = (ROOT / "docs" / "how-it-works.md").read_text(encoding="utf-8")
    shown = page[page.index("## Layers"):].split("```")[1].strip().splitlines()
    assert shown == layers
