"""Seeds derived from a base seed and a name (an image id), so a result never depends on order or sharding.

Both rules hash ``"<seed>:<name>"`` with sha256 and keep its leading bits:

* :func:`image_seed` (32 bits): the run's per-image seed of torch, numpy and random (``run.json`` ``seed_rule``);
* :func:`seed_for` (63 bits): the per-image seed of suite building (crops, degradations, partition order).
"""

from __future__ import annotations

import hashlib


def derived_seed(seed: int, name: str, bits: int) -> int:
    """The leading ``bits`` bits (1..256) of ``sha256(f"{seed}:{name}")`` as a non-negative integer."""
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    size = (bits + 7) // 8
    return int.from_bytes(digest[:size], "big") >> (8 * size - bits)


def image_seed(seed: int, image_id: str) -> int:
    """The per-image seed of a run: the first 32 bits of ``sha256(f"{seed}:{image_id}")``."""
    return derived_seed(seed, image_id, 32)


def seed_for(suite_seed: int, image_id: str) -> int:
    """The per-image seed of a suite build: the first 63 bits of ``sha256(f"{suite_seed}:{image_id}")``."""
    return derived_seed(suite_seed, image_id, 63)
