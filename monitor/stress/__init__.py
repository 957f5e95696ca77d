"""Stress: what a price move would do to a book, exactly, before the market does it.

Pure: snapshots and candle closes in, outcomes out; no I/O and nothing sent anywhere.
The evaluation is the engine's own (`AccountBook`), so a stress figure and the live
figure of `status` can never disagree about the same marks.
"""
