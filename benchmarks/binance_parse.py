"""Binance's all-market mark array, parsed to ticks: CPU per frame, typed path vs generic.

`tick_latency.py`'s frames (`!markPrice@arr@1s`: 60 held markets and 500 others, numbers
as strings) handed to the USD-M feed's parser as the socket hands them over (bytes). The
baseline, in the same process on the same frames, is the generic path every other frame
takes (`_parse_any`: orjson, one dict per market, then the filter), which was the array's
path before the typed decoder. The two are timed in turn on each frame, in alternating
order, with `time.process_time()`; both give the same ticks (checked on every frame).

    python benchmarks/binance_parse.py [--frames 200] [--rounds 10]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from common import summary, synthetic_book
from tick_latency import _walk, array_frame, market_id

from monitor.feeds.base import MarkTick
from monitor.venues.binance.feed import BinanceUsdmMarkFeed

Parse = Callable[[bytes, float], list[MarkTick]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10, help="passes over the frames")
    args = parser.parse_args()
    _, marks = synthetic_book(10, 25, symbols=60)
    rng = random.Random(3)
    unheld = {f"X{i:03d}USDT": rng.uniform(0.01, 100) for i in range(500)}
    walk = _walk(marks, args.frames, 0.02, random.Random(5))
    frames = [array_frame(m, unheld).encode() for m in walk]
    held = {market_id(symbol): symbol for symbol in marks}
    feed = BinanceUsdmMarkFeed(
        "binanceusdm", held, on_ticks=lambda ticks: None, on_status=lambda *_: None
    )
    for frame in frames:
        assert feed._parse(frame, 1.0) == feed._parse_any(frame, 1.0)
    typed, generic = _alternating([feed._parse, feed._parse_any], frames, args.rounds)
    fast, slow = summary(typed), summary(generic)
    print(f"typed decoder   : median {fast[0]:.3f} ms   p99 {fast[1]:.3f} ms")
    print(f"orjson, dicts   : median {slow[0]:.3f} ms   p99 {slow[1]:.3f} ms   (baseline)")
    print(f"baseline / typed (median): {slow[0] / fast[0]:.2f}x")


def _alternating(runs: list[Parse], frames: list[bytes], rounds: int) -> list[list[float]]:
    """CPU seconds per frame of each parser, the parsers taking turns on every frame
    (first one, then the other), so that both see the same machine and the same cache."""
    samples: list[list[float]] = [[] for _ in runs]
    for turn in range(rounds * len(frames)):
        frame = frames[turn % len(frames)]
        order = range(len(runs)) if turn % 2 else reversed(range(len(runs)))
        for index in order:
            start = time.process_time()
            runs[index](frame, 1.0)
            samples[index].append(time.process_time() - start)
    return samples


if __name__ == "__main__":
    main()
