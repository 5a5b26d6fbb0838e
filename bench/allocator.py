"""Does impasto.allocator keep a freed block in the process, and give it back after the run?

    python bench/allocator.py

Resident memory is a property of the whole process (glibc's dynamic mmap threshold moves with
whatever was allocated before), so this is a measurement of one machine and one process, not a
test: it prints what it saw. The tests check the calls impasto makes to the C library instead.
"""

from __future__ import annotations

import os
import sys

import torch

from impasto import allocator

BLOCK = 16 * 2**20  # float32 elements: a 64 MB block


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def released_by_freeing() -> int:
    block = torch.ones(BLOCK)  # touched, so resident
    alive = resident()
    del block
    return alive - resident()


def main() -> None:
    if not sys.platform.startswith("linux") or allocator._LIBC is None:
        print("glibc on Linux only: nothing to measure here")
        return
    mb = 2**20
    plain = released_by_freeing()
    with allocator.reuse_freed_memory():
        kept = released_by_freeing()
        inside = resident()
    after = inside - resident()
    print(f"freeing a 64 MB block, plain malloc: {plain / mb:.0f} MB went back to the system")
    print(f"inside reuse_freed_memory:          {kept / mb:.0f} MB went back (kept for reuse)")
    print(f"on leaving it (malloc_trim):        {after / mb:.0f} MB went back")


if __name__ == "__main__":
    main()
