"""Third-party rule packs: a package registering rules under the ``ctxtax.rules`` entry point is
found by the registry, listed by ``ctxtax rules`` and run by ``ctxtax.audit``; a badly made rule is
refused with a `ConfigError` naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ctxtax
from ctxtax.rules import Rule, register

PACK = textwrap.dedent(
    '''
    """A tiny rule pack: flags the word TODO in user messages."""
    from ctxtax.rules import Rule, register
    from ctxtax._findings import Loc


    @register
    class TodoInPrompt(Rule):
        """A TODO left in a prompt.

        What it does:
            Flags user messages that contain ``TODO``.

        Why it costs:
            Notes to self are tokens the model reads on every call.

        Example:
            ``Summarize this. TODO: shorten``

        Fix:
            Remove the note.

        Options:
            None.
        """

        code = "CTX950"
        name = "todo-in-prompt"

        def check(self, session):
            for i, message in enumerate(session.context.messages):
                if message.role == "user" and "TODO" in message.text:
                    yield self.finding("a TODO in a user message", loc=Loc(message=i), tokens=1)
    '''
)


def _install_pack(root: Path) -> dict[str, str]:
    """A module and its dist-info (as pip would write them) on a path of its own."""
    (root / "todo_pack.py").write_text(PACK, encoding="utf-8")
    info = root / "todo_pack-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: todo-pack\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ctxtax.rules]\ntodo = todo_pack:TodoInPrompt\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    return env


def test_an_installed_pack_is_listed_and_run(tmp_path: Path) -> None:
    env = _install_pack(tmp_path)
    listed = subprocess.run(
        [sys.executable, "-m", "ctxtax", "rules"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "CTX950  todo-in-prompt" in listed
    session = tmp_path / "s.json"
    session.write_text(json.dumps([{"role": "user", "content": "Summarize. TODO: shorten"}]))
    out = subprocess.run(
        [sys.executable, "-m", "ctxtax", "audit", str(session), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert [f["code"] for f in json.loads(out)["findings"]] == ["CTX950"]


def test_badly_made_rules_are_refused() -> None:
    class BadCode(Rule):
        code = "XYZ1"
        name = "bad-code"

    class BadName(Rule):
        code = "CTX951"
        name = "Bad_Name"

    class Taken(Rule):
        code = "CTX101"
        name = "taken"

    with pytest.raises(ctxtax.ConfigError, match="BadCode: code must look like CTX123"):
        register(BadCode)
    with pytest.raises(ctxtax.ConfigError, match="CTX951: name must be kebab-case"):
        register(BadName)
    with pytest.raises(ctxtax.ConfigError, match="CTX101 is taken"):
        register(Taken)
