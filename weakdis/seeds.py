"""One way to derive independent random streams from a trial's seed."""
from __future__ import annotations

import hashlib


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the random stream named ``stream`` of a trial seeded with ``seed``.

    Distinct stream names give unrelated seeds (a hash, not an arithmetic formula, so that
    ``seed + 1`` of one stream never equals another stream's seed), and the result is the same on
    every machine and Python version. Name streams by what they draw, e.g. ``"batches/rank0"``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    digest = hashlib.blake2b(f"{seed}/{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)
