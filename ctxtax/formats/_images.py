"""What an image costs depends on its pixel size: read from the image header, never the base64."""

from __future__ import annotations

import base64
import binascii
import struct

from ctxtax._model import Image

# Enough base64 to reach the size header of PNG, GIF and WebP, and of most JPEGs.
_HEAD_CHARS = 65_536


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, WebP or JPEG header, or None if it cannot be read."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8X":
            width = 1 + int.from_bytes(data[24:27], "little")
            height = 1 + int.from_bytes(data[27:30], "little")
            return width, height
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return int(width) & 0x3FFF, int(height) & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + length
    return None


def image_from_base64(data: str, media_type: str | None = None) -> Image:
    """An `Image` whose size is read from the first bytes of base64 data."""
    byte_size = len(data) * 3 // 4
    head = data[:_HEAD_CHARS]
    head = head[: len(head) - len(head) % 4]
    size: tuple[int, int] | None = None
    try:
        size = image_size(base64.b64decode(head, validate=False))
        if size is None and media_type in ("image/jpeg", "image/jpg") and len(data) > _HEAD_CHARS:
            size = image_size(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        size = None
    width, height = size if size else (None, None)
    return Image(media_type=media_type, width=width, height=height, byte_size=byte_size)


def image_from_url(url: str, *, detail: str | None = None) -> Image:
    """An `Image` from an http(s) URL or a ``data:`` URL (whose size is then read)."""
    if url.startswith("data:") and "," in url:
        header, data = url.split(",", 1)
        media_type = header[5:].split(";", 1)[0] or None
        image = image_from_base64(data, media_type)
        return image.model_copy(update={"detail": detail})
    return Image(url=url, detail=detail)


__all__ = ["image_from_base64", "image_from_url", "image_size"]
