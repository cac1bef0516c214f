"""Every command's --help is complete: each command and option says what it does, and each
group's help names all its subcommands (the help is the operator's manual at hand)."""

import re

import click
import pytest

from mailer.cli import main


def commands(group: click.Group, path: tuple[str, ...] = ()):
    """Every command below a group, with its path of names."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


ALL = list(commands(main))
IDS = [" ".join(path) for path, _ in ALL]


@pytest.mark.parametrize("path, command", ALL, ids=IDS)
def test_every_command_and_option_has_help(path, command):
    assert (command.help or "").strip(), f"mailer {' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), \
                f"mailer {' '.join(path)} {param.opts[0]} has no help text"


# `mailer --help` itself describes the tool; click lists its commands below that.
@pytest.mark.parametrize("path, group", [(p, c) for p, c in ALL if isinstance(c, click.Group)],
                         ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_each_group_help_lists_all_its_subcommands(path, group):
    text = group.help or ""
    first_paragraph = text.split("\n\n")[0]
    named = set(re.findall(r"[a-z][a-z-]+", first_paragraph))
    missing = set(group.commands) - named
    assert not missing, f"mailer {' '.join(path)} --help does not name {sorted(missing)}"


@pytest.mark.parametrize("path, phrases", [
    (("send",), ["exit 1", "exit 3"]),
    (("issues", "resume"), ["exit 1 and 3"]),
    (("issues", "retry-failed"), ["exit 1 and 3"]),
    (("subscribers", "add"), ["exit 1"]),
    (("subscribers", "import"), ["exit 1", "exit 2", "status"]),
    (("subscribers", "purge"), ["subscribe requests"]),
])
def test_help_gives_exit_codes_and_what_a_command_also_does(path, phrases):
    command = main
    for name in path:
        command = command.commands[name]
    text = " ".join(command.help.split()).lower()
    for phrase in phrases:
        assert phrase in text, f"mailer {' '.join(path)} --help lacks {phrase!r}"
