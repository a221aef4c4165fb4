"""Noise rules (family 4): terminal control sequences, repeated log lines, inline binary, whitespace."""

from __future__ import annotations
