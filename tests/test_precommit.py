"""The pre-commit hooks of ``.pre-commit-hooks.yaml``, run by the real ``pre-commit``.

Each test makes a throwaway git repository holding prompt templates and runs
``pre-commit try-repo <hook repo> ctxtax-lint|ctxtax-fix --all-files`` in it, as a user trying the
hooks would. The hook repository is a snapshot of this checkout (``pyproject.toml``, ``README.md``,
``.pre-commit-hooks.yaml`` and ``ctxtax/``, committed to a temporary git repository): ``try-repo``
of the checkout itself would only see committed and tracked files, so a new, still untracked module
would be missing from the hook while present in the tests.

``try-repo`` builds the hook's virtualenv with ``pip install .`` every time (its store lives in a
temporary directory). Installing ctxtax's dependencies (numba, numpy, ...) takes about 30 s per run,
so by default the hook's pip installs ctxtax alone (``PIP_NO_DEPS``) and the hook finds the
dependencies already installed where these tests run (``PYTHONPATH``): about 8 s per run, and no
package index is needed beyond setuptools for the build. ``CTXTAX_PRECOMMIT_INSTALL=full`` is the
plain twin: a complete install from the package index, as a user gets it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / ".pre-commit-hooks.yaml"
SNAPSHOT = ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "ctxtax")
TIMEOUT = 600

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(
        importlib.util.find_spec("pre_commit") is None,
        reason="pre-commit is not installed (pip install -e '.[dev]')",
    ),
]

RULES = """\
Answer in English. Keep every answer under two hundred words, cite the file and line you rely on,
and never invent an API: when you are not sure a function exists, say so and ask for its source.
"""
BLOATED = f"""\
You are a careful code reviewer for a Python project.

{RULES}
Review the diff below and list the problems you find, most serious first.

{RULES}"""
CLEAN = """\
You are a release-notes writer.

Summarize the merged pull requests below in five bullet points for users, not developers.
"""


@dataclass(frozen=True)
class Run:
    """One ``pre-commit`` run: its exit code and everything it printed."""

    code: int
    output: str


def _git(*args: str, cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _base_env(home: Path) -> dict[str, str]:
    """The environment of every git and pre-commit call: no git state leaking in from a hook
    that runs these tests, no user git configuration, pre-commit's cache in ``home``.

    ``HOME`` stays: pip's own configuration (which package index to use) may live there.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GIT_", "PRE_COMMIT")) and k not in {"SKIP", "PYTHONPATH"}
    }
    env.update(
        PRE_COMMIT_HOME=str(home),
        PRE_COMMIT_COLOR="never",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
    )
    if os.environ.get("CTXTAX_PRECOMMIT_INSTALL", "reuse") != "full":
        site = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
        env.update(PIP_NO_DEPS="1", PYTHONPATH=os.pathsep.join(site))
    return env


def _commit_all(repo: Path, env: dict[str, str]) -> None:
    _git("init", "--quiet", cwd=repo, env=env)
    _git("config", "user.name", "ctxtax tests", cwd=repo, env=env)
    _git("config", "user.email", "tests@ctxtax.invalid", cwd=repo, env=env)
    _git("config", "commit.gpgsign", "false", cwd=repo, env=env)
    _git("add", "--all", cwd=repo, env=env)
    _git("commit", "--quiet", "--message", "snapshot", cwd=repo, env=env)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A git repository holding this checkout's hooks and package, and the environment to use."""
    base = tmp_path_factory.mktemp("precommit")
    env = _base_env(base / "pre-commit-home")
    repo = base / "hook-repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SNAPSHOT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=ignore)
        else:
            shutil.copy2(source, repo / name)
    _commit_all(repo, env)
    yield repo, env


def _project(tmp_path: Path, env: dict[str, str], files: dict[str, str]) -> Path:
    work = tmp_path / "project"
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _commit_all(work, env)
    return work


def _try_repo(hook: str, work: Path, hook_repo: tuple[Path, dict[str, str]]) -> Run:
    repo, env = hook_repo
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(repo), hook, "--all-files"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(done.returncode, done.stdout + done.stderr)


def test_lint_hook_fails_on_a_duplicated_paragraph(
    tmp_path: Path, hook_repo: tuple[Path, dict[str, str]]
) -> None:
    work = _project(
        tmp_path,
        hook_repo[1],
        {"prompts/review.prompt": BLOATED, "prompts/notes.md": CLEAN, "src/app.py": "x = 1\n"},
    )
    run = _try_repo("ctxtax-lint", work, hook_repo)
    assert run.code != 0, run.output
    finding = re.search(r"^prompts/review\.prompt:(\d+):(\d+): CTX503 ", run.output, re.MULTILINE)
    assert finding, run.output
    assert int(finding.group(1)) == 8  # the second copy of the rules paragraph
    assert "prompts/notes.md:" not in run.output
    assert "app.py" not in run.output  # not a prompt suffix: never passed to the hook
    assert (work / "prompts/review.prompt").read_text(encoding="utf-8") == BLOATED


def test_lint_hook_passes_clean_prompts(
    tmp_path: Path, hook_repo: tuple[Path, dict[str, str]]
) -> None:
    work = _project(
        tmp_path, hook_repo[1], {"prompts/notes.md": CLEAN, "prompts/greet.j2": "Hello.\n"}
    )
    run = _try_repo("ctxtax-lint", work, hook_repo)
    assert run.code == 0, run.output
    assert re.search(r"ctxtax lint \(prompt templates\)\.+Passed", run.output), run.output


def test_fix_hook_removes_the_copy(tmp_path: Path, hook_repo: tuple[Path, dict[str, str]]) -> None:
    work = _project(
        tmp_path, hook_repo[1], {"prompts/review.prompt": BLOATED, "prompts/notes.md": CLEAN}
    )
    run = _try_repo("ctxtax-fix", work, hook_repo)
    assert run.code != 0, run.output
    assert "files were modified by this hook" in run.output, run.output
    # `ctxtax lint --fix` itself exited 0 (nothing left): pre-commit fails the hook only because
    # it changed a file, and prints no exit code for it.
    assert "- exit code:" not in run.output, run.output
    fixed = (work / "prompts/review.prompt").read_text(encoding="utf-8")
    assert fixed.count(RULES.strip()) == 1, fixed
    assert fixed.startswith("You are a careful code reviewer")
    assert "Review the diff below" in fixed
    assert (work / "prompts/notes.md").read_text(encoding="utf-8") == CLEAN


def test_manifest_is_valid_and_matches_prompt_suffixes() -> None:
    import yaml

    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(HOOKS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    hooks = {hook["id"]: hook for hook in yaml.safe_load(HOOKS.read_text(encoding="utf-8"))}
    assert hooks["ctxtax-lint"]["entry"] == "ctxtax lint"
    assert hooks["ctxtax-fix"]["entry"] == "ctxtax lint --fix"
    suffixes = [
        ".txt",
        ".md",
        ".markdown",
        ".prompt",
        ".prompty",
        ".j2",
        ".jinja",
        ".jinja2",
        ".yaml",
        ".yml",
        ".json",
    ]
    try:
        from ctxtax.lint.loaders import SUFFIXES
    except ImportError:  # the loaders moved: the list above still says what the hooks promise
        pass
    else:
        assert sorted(SUFFIXES) == sorted(suffixes)
    for hook in hooks.values():
        assert hook["language"] == "python"
        files = re.compile(hook["files"])
        for suffix in suffixes:
            assert files.search(f"prompts/agent{suffix}"), (hook["id"], suffix)
        for other in ("app.py", "prompts/logo.png", "notes.txt.bak", "Makefile"):
            assert not files.search(other), (hook["id"], other)
