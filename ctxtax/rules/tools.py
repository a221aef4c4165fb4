"""Tool rules (family 2): idle, cold, duplicate and bloated tool definitions."""

from __future__ import annotations
