"""Shared test helpers: where the real data is, and skipping when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real"
EXAMPLES = ROOT / "examples"


def real(*parts: str) -> Path:
    """A path under ../shared/data/real, skipping the test when it is not there."""
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the ../shared/data/real folder is absent)")
    return path


def real_files() -> list[Path]:
    """Every data file under ../shared/data/real (not SOURCE.md / README.md)."""
    if not REAL.exists():
        return []
    return sorted(
        p
        for p in REAL.rglob("*")
        if p.is_file()
        and p.suffix in {".json", ".jsonl", ".md", ".traj"}
        and p.name not in {"SOURCE.md", "README.md"}
    )


def real_texts(step: int = 1) -> list[str]:
    """The distinct texts an audit of the real sessions tokenizes (every ``step``-th file, in
    order), skipping the test when the real data is absent."""
    import ctxtax
    from ctxtax._counting import context_texts

    files = real_files()
    if not files:
        pytest.skip(f"real data not found at {REAL} (the ../shared/data/real folder is absent)")
    texts: list[str] = []
    for path in files[::step]:
        try:
            contexts = ctxtax.load_all(path)
        except ctxtax.CtxtaxError:
            continue
        for ctx in contexts:
            texts.extend(context_texts(ctx))
    return list(dict.fromkeys(texts))
