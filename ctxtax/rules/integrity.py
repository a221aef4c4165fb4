"""Integrity rules (family 9): tool calls and results that must come in pairs."""

from __future__ import annotations
