"""The dashboard's app icon and web-app manifest, so the page can be installed.

Phones that take Web Push only from an installed web app (iOS) need a manifest
with PNG icons of 192 and 512 pixels. The PNGs are drawn here, once per size,
from the same shapes as ``icon.svg``: a price line over a level, on the
dashboard's background. No image library: a few antialiased strokes.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
import zlib

BACKGROUND = (15, 20, 25)
LEVEL = (47, 191, 113)
PRICE = (76, 154, 255)
# In a 0..1 square, as in icon.svg (viewBox 0 0 100 100, divided by 100).
PRICE_LINE = ((0.16, 0.62), (0.34, 0.44), (0.5, 0.56), (0.66, 0.3), (0.84, 0.4))
LEVEL_LINE = ((0.14, 0.7), (0.86, 0.7))
SIZES = (192, 512)

MANIFEST = {
    "name": "Strykr real-time alerts",
    "short_name": "Strykr",
    "description": "Price-level alerts from the Strykr Watch, live on a chart",
    "start_url": "/",
    "scope": "/",
    "display": "standalone",
    "background_color": "#0f1419",
    "theme_color": "#0f1419",
    "icons": [
        {"src": "/static/icon.svg", "sizes": "any", "type": "image/svg+xml"},
        *(
            {"src": f"/static/icon-{size}.png", "sizes": f"{size}x{size}", "type": "image/png"}
            for size in SIZES
        ),
    ],
}


@functools.cache
def png_icon(size: int) -> bytes:
    """The icon as a square PNG of ``size`` pixels a side (RGB, 8 bits)."""
    if size not in SIZES:
        raise ValueError(f"icons are drawn at {SIZES}, not {size}")
    pixels = [[BACKGROUND] * size for _ in range(size)]
    _stroke(pixels, LEVEL_LINE, 0.035 * size, LEVEL)
    _stroke(pixels, PRICE_LINE, 0.06 * size, PRICE)
    raw = b"".join(b"\x00" + bytes(v for pixel in row for v in pixel) for row in pixels)
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _stroke(
    pixels: list[list[tuple[int, int, int]]],
    points: tuple[tuple[float, float], ...],
    width: float,
    color: tuple[int, int, int],
) -> None:
    """A polyline of ``width`` pixels with round joins, blended over what is there."""
    size = len(pixels)
    half = width / 2
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        ax, ay, bx, by = x0 * size, y0 * size, x1 * size, y1 * size
        left, right = int(min(ax, bx) - half - 1), int(max(ax, bx) + half + 2)
        top, bottom = int(min(ay, by) - half - 1), int(max(ay, by) + half + 2)
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        for y in range(max(0, top), min(size, bottom)):
            row = pixels[y]
            for x in range(max(0, left), min(size, right)):
                px, py = x + 0.5 - ax, y + 0.5 - ay
                t = max(0.0, min(1.0, (px * dx + py * dy) / length2))
                distance = math.hypot(px - t * dx, py - t * dy)
                cover = max(0.0, min(1.0, half + 0.5 - distance))
                if cover > 0:
                    row[x] = _blend(row[x], color, cover)


def _blend(
    under: tuple[int, int, int], over: tuple[int, int, int], alpha: float
) -> tuple[int, int, int]:
    r = round(under[0] + (over[0] - under[0]) * alpha)
    g = round(under[1] + (over[1] - under[1]) * alpha)
    b = round(under[2] + (over[2] - under[2]) * alpha)
    return (r, g, b)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
