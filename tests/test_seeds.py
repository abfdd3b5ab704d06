"""The derived seeds keep the exact values that published runs and built suites were made with."""

from __future__ import annotations

import hashlib

import pytest

from op4ksr_bench.seeds import derived_seed, image_seed, seed_for


@pytest.mark.parametrize(("seed", "name"), [(0, "a"), (4001, "enl-bamboo"), (7, "img 003")])
def test_seed_rules_are_the_leading_bits_of_the_hash(seed, name):
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    assert image_seed(seed, name) == int(digest.hex()[:8], 16)
    assert seed_for(seed, name) == int.from_bytes(digest[:8], "big") >> 1
    assert derived_seed(seed, name, 12) == int.from_bytes(digest[:2], "big") >> 4


def test_pinned_values():
    assert image_seed(0, "img000") == 0x6E21E77E
    assert seed_for(4001, "enl-bamboo") == 8151883391171302288
