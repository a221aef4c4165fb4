"""4. ``ctxtax audit`` on one short file, each round a fresh process (numba's cache warm).

compare.py adds the ``python -X importtime`` breakdown and checks the < 0.5 s target.
"""

from __future__ import annotations

import corpus
import pipelines
import pytest

pytestmark = pytest.mark.benchmark(group="cli", warmup=False)


def test_cli_audit_short_file(benchmark, quick: bool) -> None:
    argv = pipelines.cli_argv(corpus.EXAMPLE_SESSION)
    pipelines.run_cli(argv)  # warm: numba's cache, the tokenizer's cache
    benchmark.pedantic(pipelines.run_cli, args=(argv,), rounds=1 if quick else 10)


def test_import_breakdown_parses() -> None:
    rows = pipelines.import_times(corpus.EXAMPLE_SESSION)
    assert any(module.startswith("ctxtax") for module, _, _ in rows)
    assert all(cumulative >= own for _, own, cumulative in rows)
