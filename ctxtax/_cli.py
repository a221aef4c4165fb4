"""The ``ctxtax`` command line. ``main(argv=None) -> int``: 0 ok, 1 findings at ``--fail-on``
(``lint``: any finding), 2 usage, configuration or input error.

An input error prints one line (``ctxtax: error: <where>: <what>``) and exits 2; nothing is ever
written over an input file. An unexpected internal error also prints one line (and exits 3), with
the traceback only under ``CTXTAX_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ctxtax import __version__
from ctxtax.errors import ConfigError, CtxtaxError

if TYPE_CHECKING:
    from ctxtax._config import Config

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"ctxtax: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _codes(value: str) -> list[str]:
    return [code.strip() for code in value.split(",") if code.strip()]


_ENVIRONMENT = """environment:
  CTXTAX_IMPL=numba|python  force the duplication kernels' implementation (default: numba
                            once an input or the work done is large; short audits never
                            load it)
  CTXTAX_THREADS=N          threads a large kernel call is split over (1: never; default:
                            the CPUs this process may use, at most 4)
  CTXTAX_CACHE_DIR=DIR      where start-up work is cached (default: $XDG_CACHE_HOME/ctxtax
                            or ~/.cache/ctxtax)
  CTXTAX_DEBUG=1            print the traceback of an unexpected error"""


def _parser() -> argparse.ArgumentParser:
    from ctxtax.formats import FORMATS

    parser = _Parser(
        prog="ctxtax",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ctxtax {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    audit = commands.add_parser("audit", help="count and price the tokens of session files")
    audit.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="session files")
    audit.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    audit.add_argument("--model", help="count and price for this model")
    audit.add_argument(
        "--input-format", choices=sorted(FORMATS), help="read the input as this format"
    )
    audit.add_argument("--prices", type=Path, help="JSON price table overriding the built-in one")
    audit.add_argument(
        "--no-strict",
        action="store_true",
        help="report broken tool-call pairing instead of refusing the input",
    )
    audit.add_argument("--top", type=int, default=10, help="rows per table in text output")
    audit.add_argument(
        "--select",
        type=_codes,
        help="rules to run: codes or prefixes, comma separated (CTX1,CTX201)",
    )
    audit.add_argument(
        "--ignore", type=_codes, help="rules not to run: codes or prefixes (added to the config's)"
    )
    audit.add_argument(
        "--config",
        type=Path,
        help="configuration file (ctxtax.toml or pyproject.toml); default: the nearest one",
    )
    audit.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    audit.add_argument(
        "--fail-on",
        choices=("never", "warning", "error"),
        default="never",
        help="exit 1 when a finding of this severity or worse is found (default: never)",
    )

    opt = commands.add_parser(
        "optimize", help="write a session without its waste (safe edits unless --unsafe)"
    )
    opt.add_argument("input", type=Path, metavar="IN", help="a session or request file")
    opt.add_argument("-o", "--output", type=Path, help="write here (default: standard output)")
    opt.add_argument(
        "--in-place", action="store_true", help="write over IN (never done unless asked)"
    )
    opt.add_argument("--unsafe", action="store_true", help="also make lossy edits")
    opt.add_argument(
        "--clear-old-results",
        action="store_true",
        help="with --unsafe: clear tool results but the last --keep-last (cache-aware)",
    )
    opt.add_argument(
        "--to",
        choices=("same", "openai", "anthropic"),
        default="same",
        help="output format (a log is written as an API payload)",
    )
    opt.add_argument("--model", help="count and price for this model")
    opt.add_argument(
        "--input-format", choices=sorted(FORMATS), help="read the input as this format"
    )
    opt.add_argument("--keep-last", type=int, default=3, help="tool results never made lossy")
    opt.add_argument("--include-tools", type=_codes, help="only edit these tools' results")
    opt.add_argument("--exclude-tools", type=_codes, help="never edit these tools' results")
    opt.add_argument("--min-saving", type=int, default=8, help="smallest edit, in tokens")
    opt.add_argument(
        "--no-cache-aware",
        action="store_true",
        help="make every edit, whatever prompt cache it breaks",
    )
    opt.add_argument(
        "--expected-calls", type=float, help="calls still to come (default: as many as so far)"
    )
    opt.add_argument("--select", type=_codes, help="rules whose edits to make")
    opt.add_argument("--ignore", type=_codes, help="rules whose edits not to make")
    opt.add_argument("--log", type=Path, help="also write the edit log (JSON) here")

    rep = commands.add_parser(
        "replay",
        help="replay sessions call by call and price each call: as recorded, with ctxtax's "
        "optimizer, with LangChain's context editing",
    )
    rep.add_argument("paths", nargs="+", type=Path, metavar="SESSION", help="session files")
    rep.add_argument("--model", help="count, cache and price every call for this model")
    rep.add_argument("--unsafe", action="store_true", help="let the optimizer make lossy edits")
    rep.add_argument(
        "--clear-old-results",
        action="store_true",
        help="with --unsafe: let it clear old tool results too (cache-aware)",
    )
    rep.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    rep.add_argument(
        "--cache-policy",
        choices=("anthropic", "openai", "none"),
        help="the provider's caching rules (default: the model's)",
    )
    rep.add_argument("--prices", type=Path, help="JSON price table overriding the built-in one")
    rep.add_argument(
        "--strategies",
        type=_codes,
        help="comma separated, of none,ctxtax,context-editing (default: all three)",
    )
    rep.add_argument(
        "--input-format", choices=sorted(FORMATS), help="read the input as this format"
    )

    lint = commands.add_parser(
        "lint", help="find waste in prompt templates and tool schema files (exit 1 on findings)"
    )
    lint.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="template files or directories"
    )
    lint.add_argument("--fix", action="store_true", help="apply safe fixes, then lint again")
    lint.add_argument(
        "--format", choices=("text", "json", "github", "sarif"), default="text", help="output"
    )
    lint.add_argument("--select", type=_codes, help="rules to run: codes or prefixes")
    lint.add_argument("--ignore", type=_codes, help="rules not to run (added to the config's)")
    lint.add_argument("--config", type=Path, help="configuration file; default: the nearest one")
    lint.add_argument("--isolated", action="store_true", help="ignore every configuration file")

    rules = commands.add_parser("rules", help="list every rule")
    rules.add_argument("--format", choices=("text", "json"), default="text", help="output format")

    explain = commands.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("rule", metavar="CODE", help="a rule code (CTX201) or name (idle-tool)")
    return parser


_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def _config(args: argparse.Namespace) -> Config:
    from ctxtax._config import Config, load_config

    if args.isolated:
        return Config()
    if args.config is not None:
        return load_config(args.config)
    return load_config(start=args.paths[0] if args.paths else ".")


def _audit(args: argparse.Namespace) -> int:
    from ctxtax._engine import audit
    from ctxtax._pricing import load_prices

    config = _config(args)
    prices = load_prices(args.prices) if args.prices else None
    reports = [
        audit(
            path,
            model=args.model,
            format=args.input_format,
            prices=prices,
            strict=not args.no_strict,
            select=args.select,
            ignore=args.ignore,
            config=config,
        )
        for path in args.paths
    ]
    if args.format == "json":
        data = [r.to_dict() for r in reports]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    else:
        from ctxtax._render import render_text

        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        for report in reports:
            sys.stdout.write(render_text(report, color=color, top=args.top))
    if args.fail_on != "never":
        bar = _SEVERITY_RANK[args.fail_on]
        if any(_SEVERITY_RANK[f.severity] >= bar for r in reports for f in r.findings):
            return EXIT_FINDINGS
    return EXIT_OK


def _write_atomically(path: Path, text: str) -> None:
    import tempfile

    path = path.expanduser()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _optimize(args: argparse.Namespace) -> int:
    from ctxtax._optimize import optimize

    target: Path | None = args.input if args.in_place else args.output
    if args.output is not None and args.in_place:
        raise ConfigError("give -o OUT or --in-place, not both")
    if (
        target is not None
        and not args.in_place
        and target.expanduser().resolve() == args.input.expanduser().resolve()
    ):
        raise ConfigError(f"{target}: is the input; pass --in-place to write over it")
    result = optimize(
        args.input,
        model=args.model,
        format=args.input_format,
        unsafe=args.unsafe,
        clear_old_results=args.clear_old_results,
        keep_last=args.keep_last,
        include_tools=args.include_tools,
        exclude_tools=args.exclude_tools or (),
        min_saving=args.min_saving,
        cache_aware=not args.no_cache_aware,
        expected_calls=args.expected_calls,
        select=args.select,
        ignore=args.ignore,
        to=args.to,
    )
    text = json.dumps(result.payload, indent=2, ensure_ascii=False) + "\n"
    if target is None:
        sys.stdout.write(text)
    else:
        _write_atomically(target, text)
    if args.log is not None:
        log = [
            {
                "code": e.code,
                "action": e.action,
                "safety": e.safety,
                "loc": e.loc.model_dump(exclude_none=True),
                "tokens_saved": e.tokens_saved,
                "replacement": e.replacement,
                "removed": e.removed,
            }
            for e in result.edits
        ]
        _write_atomically(args.log, json.dumps(log, indent=2, ensure_ascii=False) + "\n")
    print(f"ctxtax optimize: {result.summary()}", file=sys.stderr)
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from ctxtax._pricing import load_prices
    from ctxtax._replay import STRATEGIES, replay

    prices = load_prices(args.prices) if args.prices else None
    results = [
        replay(
            path,
            model=args.model,
            strategies=args.strategies or STRATEGIES,
            unsafe=args.unsafe,
            clear_old_results=args.clear_old_results,
            cache_policy=args.cache_policy,
            prices=prices,
            format=args.input_format,
        )
        for path in args.paths
    ]
    if args.format == "json":
        data = [r.to_dict() for r in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
        return EXIT_OK
    for result in results:
        many = f", {result.conversations} conversations" if result.conversations > 1 else ""
        model = result.model or "model unknown"
        print(f"{result.source}: {model}, {result.cache_policy} caching{many}")
        print()
        sys.stdout.write(result.table())
        for note in result.notes:
            print(f"note: {note}")
        print()
    return EXIT_OK


def _lint(args: argparse.Namespace) -> int:
    from ctxtax.lint.engine import lint_paths
    from ctxtax.lint.output import render

    config = _config(args)
    result = lint_paths(
        args.paths,
        select=args.select if args.select is not None else config.select,
        ignore=[*config.ignore, *(args.ignore or [])],
        rule_options=config.rules or None,
        model=config.model,
        exclude=config.lint.exclude,
        fix=args.fix,
    )
    sys.stdout.write(render(result, args.format))
    for error in result.errors:
        print(f"ctxtax: error: {error}", file=sys.stderr)
    if result.errors:
        return EXIT_USAGE
    return EXIT_FINDINGS if result.findings else EXIT_OK


def _rules(args: argparse.Namespace) -> int:
    from ctxtax.rules import all_rules

    rows = [
        {
            "code": code,
            "name": rule.name,
            "severity": rule.severity,
            "summary": (rule.__doc__ or "").strip().splitlines()[0] if rule.__doc__ else "",
            "options": sorted(rule.Options.model_fields),
        }
        for code, rule in all_rules().items()
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        print(f"{row['code']}  {row['name']:<{width}}  {row['severity']:<7}  {row['summary']}")
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from ctxtax.rules import all_rules

    rules = all_rules()
    wanted = args.rule.strip()
    rule = rules.get(wanted.upper()) or next(
        (r for r in rules.values() if r.name == wanted.lower()), None
    )
    if rule is None:
        raise ConfigError(f"unknown rule {wanted!r}; `ctxtax rules` lists them")
    summary = (rule.__doc__ or "").strip().splitlines()[0]
    out = [f"{rule.code} {rule.name} ({rule.severity})", "", summary]
    for heading, text in rule.documentation().items():
        out += ["", f"{heading}:", *("    " + line if line else "" for line in _dedent(text))]
    print("\n".join(out))
    return EXIT_OK


def _dedent(text: str) -> list[str]:
    import textwrap

    first, _, rest = text.partition("\n")
    return [first.strip(), *textwrap.dedent(rest).splitlines()] if rest else [first.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "audit":
            return _audit(args)
        if args.command == "optimize":
            return _optimize(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "lint":
            return _lint(args)
        if args.command == "rules":
            return _rules(args)
        if args.command == "explain":
            return _explain(args)
    except CtxtaxError as exc:
        print(f"ctxtax: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("CTXTAX_DEBUG"):
            raise
        print(
            f"ctxtax: internal error: {type(exc).__name__}: {exc} "
            "(set CTXTAX_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
