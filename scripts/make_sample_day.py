"""Generate the bundled sample day: service/data/sample_day.parquet.

A US session (14:30-21:00 UTC) on 2026-02-02, the day of the Strykr article in
the seeds: IWM opens at 259.63, breaks out above 265 in the first hour, fades,
loses 255 in the afternoon and flushes through 250 into the close. SPX pokes
through 4,900 and RUT slips below 1,900, the levels of the second article.

Prices follow Brownian bridges through the anchor points below, with a
volatility per index close to a real session's, rounded to the cent. The
seed is fixed, so the file is reproducible::

    .venv/bin/python scripts/make_sample_day.py
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

SEED = 20260202
SESSION_OPEN = datetime(2026, 2, 2, 14, 30, tzinfo=UTC)
SESSION_SECONDS = 6.5 * 3600
OUT = Path(__file__).resolve().parent.parent / "service" / "data" / "sample_day.parquet"

# (minutes after the open, price): the day's shape.
ANCHORS: dict[str, list[tuple[float, float]]] = {
    "IWM": [
        (0, 259.63),
        (18, 262.10),
        (34, 265.45),  # breakout above 265 (about 34 s into `make run`)
        (55, 264.20),
        (95, 262.40),
        (150, 260.10),
        (210, 257.20),
        (262, 254.60),  # loses 255
        (300, 252.30),
        (350, 249.70),  # through 250
        (372, 250.90),
        (390, 250.45),
    ],
    "SPX": [
        (0, 4868.20),
        (60, 4884.50),
        (140, 4903.80),  # pokes through 4,900
        (200, 4891.00),
        (300, 4872.40),
        (390, 4861.75),
    ],
    "RUT": [
        (0, 1931.40),
        (90, 1924.80),
        (200, 1912.10),
        (280, 1898.60),  # slips below 1,900
        (340, 1893.20),
        (390, 1895.90),
    ],
}
# Volatility per square root of a second, and mean seconds between ticks.
SIGMA = {"IWM": 0.022, "SPX": 0.30, "RUT": 0.16}
MEAN_GAP_S = {"IWM": 0.8, "SPX": 1.0, "RUT": 1.0}
HAS_VOLUME = {"IWM": True, "SPX": False, "RUT": False}


def bridge(
    rng: random.Random, anchors: list[tuple[float, float]], sigma: float, mean_gap: float
) -> list[tuple[float, float]]:
    """(seconds after the open, price) points of a Brownian bridge through the anchors."""
    points: list[tuple[float, float]] = []
    for (m0, p0), (m1, p1) in itertools.pairwise(anchors):
        t0, t1 = m0 * 60, m1 * 60
        times = [t0]
        while True:
            t = times[-1] + rng.expovariate(1 / mean_gap)
            if t >= t1:
                break
            times.append(t)
        walk = [0.0]
        for a, b in itertools.pairwise(times):
            walk.append(walk[-1] + rng.gauss(0, sigma * math.sqrt(b - a)))
        end = walk[-1] + rng.gauss(0, sigma * math.sqrt(t1 - times[-1]))
        for t, w in zip(times, walk, strict=True):
            share = (t - t0) / (t1 - t0)
            points.append((t, p0 + (p1 - p0) * share + w - end * share))
    return points


def main() -> None:
    rng = random.Random(SEED)
    rows: list[tuple[datetime, str, float, int | None]] = []
    open_ns = int(SESSION_OPEN.timestamp()) * 1_000_000_000
    for symbol, anchors in ANCHORS.items():
        last_ms = 0
        for seconds, price in bridge(rng, anchors, SIGMA[symbol], MEAN_GAP_S[symbol]):
            if seconds >= SESSION_SECONDS:
                continue
            # One price per instant (the engine rejects a second one): a tick that
            # rounds to its predecessor's millisecond moves to the next one.
            ts_ms = max((open_ns + round(seconds * 1e9)) // 1_000_000, last_ms + 1)
            last_ms = ts_ms
            volume = 100 * rng.choice((1, 1, 1, 2, 2, 3, 5, 10)) if HAS_VOLUME[symbol] else None
            rows.append(
                (datetime.fromtimestamp(ts_ms / 1000, tz=UTC), symbol, round(price, 2), volume)
            )
    frame = pl.DataFrame(
        rows,
        schema={
            "ts": pl.Datetime("ms", "UTC"),
            "symbol": pl.String,
            "price": pl.Float64,
            "volume": pl.Int64,
        },
        orient="row",
    ).sort("ts", "symbol", maintain_order=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(OUT, compression="zstd", compression_level=19, statistics=False)
    print(f"wrote {OUT} ({frame.height} ticks, {OUT.stat().st_size} bytes)")
    summary = frame.group_by("symbol", maintain_order=True).agg(
        pl.len().alias("ticks"),
        pl.col("price").min().alias("low"),
        pl.col("price").max().alias("high"),
    )
    print(summary)


if __name__ == "__main__":
    main()
