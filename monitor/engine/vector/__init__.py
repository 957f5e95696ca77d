"""The vectorised exact engine: every position and pool of every account, every frame.

The scalar engine (`AccountBook`) stays the reference: this package computes the same
figures, to the same rules and notes, for all accounts at once with numpy, and
tests/test_engine_vector.py holds the two to 1e-9 on every exchange model.

Column layout
-------------
`VectorEngine.load(snapshot)` compiles one account into an `AccountBlock` (columns.py):
the exchange model is applied by building the scalar `AccountBook` (legs, pools, hedge
groups), and its legs are laid out as columns. Rows are in the scalar output order (per
pool asset, sorted, its cross members; then the isolated positions):

- per position row: symbol id, sign, qty, contracts, entry, inverse, has terms, fixed MM
  (Bybit's pre-2025 entry rule), fee rate kept apart (OKX), fee to close (Bybit), whether
  the tier moves with the price, contract-keyed, irregular table, closed-form eligible,
  isolated wallet, pool row (-1 for isolated), the closed-form isolated price;
- per position row and tier (2-D, padded with +inf floors): floors, rates, deductions,
  and the solver's per-tier line (slope, constant) that legs.Leg precomputes;
- per pool row: wallet (NaN if none reported), the exchange's ratio, a status (OK, no
  wallet, no tiers, mixed coin/USD) whose note is fixed per snapshot;
- liquidation problems, each a set of legs with a constant: POOL (every member against
  the wallet: the pool's move), GROUP (one symbol's legs, the others held: one-way or
  hedge), ISOLATED (one leg against its wallet), with a member table (problem -> legs).

`layout.py` concatenates the blocks (offsetting cross-table indices, padding tiers) and
routes each problem once: closed form, Newton, or the segment walk (rows.py lays out the
searches' rows: a problem and a direction each). A snapshot of the same positions (a
poll) is written over its account's rows, keeping rows, targets and warm starts; a
change of shape re-joins the blocks (concatenation only, nothing else recompiled).

How a frame flows (`update(marks)`)
-----------------------------------
marks (a dict, or a vector in `layout.symbols` order; NaN or missing -> the snapshot's
mark) -> per position: value, PnL, tier (floors <= key, per row), MM + kept-apart fees
(state.py) -> per pool: sums by `np.add.reduceat` (each pool's members are contiguous
rows; pairwise, a few ulps from the scalar loop's order), balance, ratio, free margin ->
per problem: its constant
-> moves (liquidation.py):
- closed form (bracket.py): single linear legs on regular notional tables, Binance's
  bracket formula; isolated ones once per snapshot (their price ignores the mark);
- far-side Newton (newton.py), vectorised across all rows (a pool or group and one
  direction each; both directions where both can hurt, the nearer kept, ties to the
  fall, as the scalar does);
- the segment walk (walk.py) for sets with a tier-moving leg on an irregular table (MM
  jumps at a floor: ccxt's unified tiers), every row's floors laid out as sorted
  events at once, the first deciding segment re-solved on a fresh sum;
- the scalar solver only for a Newton row that did not settle (a safeguard).
-> per position: price = mark x (1 + move), distance = |move|; per pool: move, distance.
The result is a `Frame` of arrays (frame.py); `account_risk(frame, name)` turns one
account's rows back into the scalar records for readers that want them.

What a frame does not redo
--------------------------
A frame is a few hundred numpy calls over thousands of rows, and each call costs
microseconds of its own, so what does not change between frames is not recomputed:
- per layout shape (plan.py): masks, index lists and the notes that need no figure;
  rows.py's per-member and per-row statics of the searches (kept across polls);
- per frame to frame (carry.py, held in liquidation.WarmStart): each position's tier,
  each Newton member's tier at its row's root and each closed-form leg's bracket, with
  the tier tables' entries read there (rate, deduction, line, edges), the Newton
  members' far-side entries and the closed-form legs' terms. Only rows whose tier or
  bracket moved are read again, and a poll marks stale only the rows it rewrote. A
  tier that moved is tried at its neighbour before a search of the whole row.
The entries are the tables' own values, read at the same places, so every figure is
what a frame computed from nothing would give (tests/test_engine_vector.py walks marks
in calm and crash-sized steps with polls between frames against the scalar engine).

What is exact
-------------
Everything: there is no tolerance anywhere. Within a run of unchanged tiers equity - MM is
linear in t (the move x, or 1 / (1 + x) for inverse contracts); every answer is the root
of the line of the segment that holds it, so it is the scalar engine's root up to the
order of additions (a few ulps).

How the Newton solve is safeguarded
-----------------------------------
It only runs where every tier-moving leg has a regular table (rates never fall,
deductions continuous), which makes equity - MM concave in t: existence of a root is
decided first from the far end (the last segment's slope; the value at price zero), and
the iteration starts from a line on or above the function (the segment of last frame's
root, the current segment, or the far one), so each root is at or past the true one and
the next moves back towards it; it stops when the line at the root is the line just
solved (the root lies on its own segment), at most one step per segment. A vanishing
slope is "no root"; a row still moving after 64 steps (not possible for a finite
piecewise-linear function) goes to the scalar walk. Warm starts only choose the first
line: the answer never depends on them.

Unknowns
--------
No tiers, no reported wallet, no isolated margin, coin and USD contracts in one pool,
OKX coin-margined cross in a USD pool: NaN in every figure that needs them, never 0,
with a note code per row (`Frame.note`, `Frame.pool_note`) and the scalar book's text
(`Frame.position_note(row)`, `Frame.pool_note_text(row)`).

Daemon integration
------------------
monitor/daemon/evaluation.py: one engine per exchange group (accounts sharing marks).
An account's newly installed book (poll, user-stream update) is loaded before the next
frame; each mark frame is one `update` of the board's marks; `levels.py` classifies every
row's level at once against per-row threshold columns, and only rows whose level moved
go to the daemon's level tracker, with their events' figures read from the frame's
columns. Band, hold, screen and the envelopes, which used to decide what a tick could
skip, are gone.
"""

from monitor.engine.vector.engine import VectorEngine
from monitor.engine.vector.frame import Frame, Note
from monitor.engine.vector.risk import account_risk

__all__ = ["Frame", "Note", "VectorEngine", "account_risk"]
