"""The heap policy (monitor/heappolicy.py): a frame's arrays reuse mapped pages.

Each measurement runs in a fresh interpreter, since the policy is process-wide and
cannot be undone: a loop allocating and freeing what one mark frame at 1000 accounts
does (40 arrays of 25,000 floats, 8 MB), counting the minor page faults of its later
rounds with `getrusage`. A count of kernel traps, not a time."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

FRAMES = """
import resource, sys
import numpy as np
from monitor.heappolicy import keep_freed_pages
applied = keep_freed_pages() if sys.argv[1] == "kept" else None

def frame():
    arrays = [np.ones(25_000) for _ in range(40)]
    del arrays

for _ in range(3):
    frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    frame()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

PAGES_PER_FRAME = 40 * 25_000 * 8 // 4096


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", FRAMES, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy tunes glibc's malloc")
def test_frames_after_the_policy_fault_no_pages_in():
    applied, kept = faults("kept")
    assert applied == "True"
    _, default = faults("default")
    # glibc's own policy gives the freed top of the heap back: each frame faults most of
    # its pages in again. Kept, the pages stay mapped (a few faults are Python's own).
    assert default > 5 * PAGES_PER_FRAME // 2
    assert kept < PAGES_PER_FRAME // 10
