"""Staleness rules (family 3): superseded results, unreferenced old outputs, resolved errors, old reasoning."""

from __future__ import annotations
