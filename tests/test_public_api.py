"""The public door: a sorted __all__, light import, docstrings."""

from __future__ import annotations

import subprocess
import sys

import ctxtax


def test_all_is_sorted_and_pinned() -> None:
    # Sorted as ruff's RUF022 sorts it (constants, then classes, then functions); pinned so a
    # change to the public door is a deliberate one.
    assert ctxtax.__all__ == [
        "PRICES",
        "PRICES_DATE",
        "Accuracy",
        "AppliedEdit",
        "Audited",
        "Auditor",
        "Call",
        "Config",
        "ConfigError",
        "Context",
        "CtxtaxError",
        "Edit",
        "Finding",
        "FormatError",
        "Image",
        "InputError",
        "Loc",
        "Message",
        "MessageError",
        "Optimized",
        "Optimizer",
        "PairingError",
        "ParseError",
        "Part",
        "Price",
        "Replay",
        "Report",
        "Step",
        "TiktokenCounter",
        "TokenCounter",
        "ToolSpec",
        "Usage",
        "__version__",
        "audit",
        "lint_paths",
        "load",
        "load_all",
        "load_config",
        "optimize",
        "replay",
        "revert",
        "write",
    ]


def test_every_public_name_resolves_and_has_a_docstring() -> None:
    for name in ctxtax.__all__:
        value = getattr(ctxtax, name)
        if callable(value) and name not in {"PRICES"}:
            assert value.__doc__, name


def test_import_is_light() -> None:
    code = (
        "import sys, ctxtax; heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('numba', 'tiktoken', 'langchain', 'langchain_core', 'numpy', 'pydantic')]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_errors_inherit_the_builtin_they_resemble() -> None:
    assert issubclass(ctxtax.InputError, ValueError)
    assert issubclass(ctxtax.ParseError, ctxtax.InputError)
    assert issubclass(ctxtax.PairingError, ctxtax.CtxtaxError)
    assert issubclass(ctxtax.ConfigError, ValueError)
