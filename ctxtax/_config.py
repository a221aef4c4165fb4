"""Project configuration: ``[tool.ctxtax]`` in ``pyproject.toml``, or a ``ctxtax.toml``.

::

    [tool.ctxtax]                 # in ctxtax.toml the same keys sit at the top level
    select = ["CTX1", "CTX2"]     # rule codes or prefixes to run (default: all)
    ignore = ["CTX304"]           # rule codes or prefixes not to run
    model = "gpt-4o"              # count and price for this model unless the session names one

    [tool.ctxtax.rules.CTX202]    # options of one rule, by code or by name
    last_calls = 5

    [tool.ctxtax.lint]            # `ctxtax lint` only
    exclude = ["vendor/*", "*.generated.md"]   # globs (path or file name) not linted

The nearest configuration file wins, searched from a directory up to the file-system root: in each
directory ``ctxtax.toml`` first, then a ``pyproject.toml`` that has a ``[tool.ctxtax]`` table.
Everything is validated when read: an unknown key, rule code or option is a `ConfigError` naming
the file and the key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ctxtax.errors import ConfigError

CONFIG_FILES = ("ctxtax.toml", "pyproject.toml")


class LintConfig(BaseModel):
    """``[tool.ctxtax.lint]``: options only `ctxtax lint` reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exclude: list[str] = Field(default_factory=list)


class Config(BaseModel):
    """Rule selection and options, as read from a configuration file (or built in code)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    select: list[str] | None = None
    ignore: list[str] = Field(default_factory=list)
    model: str | None = None
    rules: dict[str, dict[str, Any]] = Field(default_factory=dict)
    lint: LintConfig = Field(default_factory=LintConfig)
    path: Path | None = Field(default=None, exclude=True)

    def audit_options(self) -> dict[str, Any]:
        """Keyword arguments of `ctxtax.audit` (``select``, ``ignore``, ``rule_options``,
        ``model``) for this configuration."""
        return {
            "select": self.select,
            "ignore": self.ignore,
            "rule_options": self.rules or None,
            "model": self.model,
        }


def _where(path: Path | None) -> str:
    return f"{path}" if path is not None else "configuration"


def _table(path: Path) -> dict[str, Any] | None:
    """The ctxtax table of one file, or None when a pyproject.toml has none."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool")
        table = tool.get("ctxtax") if isinstance(tool, dict) else None
        if table is None:
            return None
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.ctxtax] must be a table")
        return table
    return data


def find_config(start: Path | str = ".") -> Path | None:
    """The configuration file that applies to ``start`` (a file or directory), or None."""
    here = Path(start).expanduser().resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        for name in CONFIG_FILES:
            candidate = folder / name
            if candidate.is_file() and _table(candidate) is not None:
                return candidate
    return None


def parse_config(table: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a configuration table: keys, rule codes and every rule's options."""
    from ctxtax.rules import all_rules, select_rules

    where = _where(path)
    section = "[tool.ctxtax]" if path is not None and path.name == "pyproject.toml" else "top level"
    known = [name for name in Config.model_fields if name != "path"]
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r} in {section}; known keys: {', '.join(known)}"
            )
    try:
        config = Config(**table, path=path)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"{where}: {key}: {error['msg']}") from None
    rules = all_rules()
    by_name = {rule.name: code for code, rule in rules.items()}
    options: dict[str, dict[str, Any]] = {}
    for key, values in config.rules.items():
        code = key.upper() if key.upper() in rules else by_name.get(key)
        if code is None:
            raise ConfigError(
                f"{where}: [rules.{key}]: no rule with that code or name (see `ctxtax rules`)"
            )
        options[code] = values
    try:
        select_rules(config.select, config.ignore, options)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config.model_copy(update={"rules": options})


def load_config(path: Path | str | None = None, *, start: Path | str = ".") -> Config:
    """Read and validate a configuration file.

    Args:
        path: the file to read (a ``ctxtax.toml``, or a ``pyproject.toml`` whose
            ``[tool.ctxtax]`` table is read). When None, the nearest one from ``start`` up.
        start: where the search begins when ``path`` is None.

    Returns:
        The `Config`; an empty one (all rules, defaults) when no file is found.
    """
    if path is None:
        found = find_config(start)
        if found is None:
            return Config()
        path = found
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    table = _table(path)
    if table is None:
        raise ConfigError(f"{path}: has no [tool.ctxtax] table")
    return parse_config(table, path)


__all__ = ["CONFIG_FILES", "Config", "LintConfig", "find_config", "load_config", "parse_config"]
