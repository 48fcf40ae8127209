"""The installable app's icons: valid PNGs of the sizes the manifest names, drawn as the SVG is."""

from __future__ import annotations

import struct
import zlib

import pytest

from service.api.icons import BACKGROUND, LEVEL, MANIFEST, SIZES, png_icon


def decode(png: bytes) -> tuple[int, list[bytes]]:
    """The size and the rows of an RGB PNG without filters (as the icons are written)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, bytes] = {}
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks[kind] = data
        at += 12 + length
    width, height, depth, color, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (width, depth, color) == (height, 8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    rows = [raw[i * stride : (i + 1) * stride] for i in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, [row[1:] for row in rows]


@pytest.mark.parametrize("size", SIZES)
def test_each_icon_is_a_png_of_its_size_with_the_level_line_on_the_background(size: int) -> None:
    width, rows = decode(png_icon(size))
    assert width == size

    def pixel(x: float, y: float) -> tuple[int, ...]:
        row = rows[int(y * size)]
        at = int(x * size) * 3
        return tuple(row[at : at + 3])

    assert pixel(0.02, 0.02) == BACKGROUND
    assert pixel(0.5, 0.7) == LEVEL  # the middle of the level line (0.7 of the height)
    assert pixel(0.5, 0.9) == BACKGROUND


def test_the_manifest_names_an_icon_of_each_size_and_starts_the_dashboard() -> None:
    sizes = {icon["sizes"] for icon in MANIFEST["icons"]}  # type: ignore[attr-defined]
    assert {f"{size}x{size}" for size in SIZES} <= sizes
    assert (MANIFEST["start_url"], MANIFEST["display"]) == ("/", "standalone")
    with pytest.raises(ValueError, match="icons are drawn at"):
        png_icon(64)
