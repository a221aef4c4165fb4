"""The ``ctxtax`` command line. ``main(argv=None) -> int``: 0 ok, 2 usage or input error.

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

from ctxtax import __version__
from ctxtax.errors import CtxtaxError

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


def _parser() -> argparse.ArgumentParser:
    from ctxtax.formats import FORMATS

    parser = _Parser(prog="ctxtax", description=__doc__.splitlines()[0] if __doc__ else None)
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
    audit.add_argument("--ignore", type=_codes, help="rules not to run: codes or prefixes")
    return parser


def _audit(args: argparse.Namespace) -> int:
    from ctxtax._engine import audit
    from ctxtax._pricing import load_prices

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
        )
        for path in args.paths
    ]
    if args.format == "json":
        data = [r.to_dict() for r in reports]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
        return EXIT_OK
    from ctxtax._render import render_text

    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    for report in reports:
        sys.stdout.write(render_text(report, color=color, top=args.top))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "audit":
            return _audit(args)
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
