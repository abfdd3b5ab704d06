"""Reading a licence string: whether it restricts commercial use.

Method cards declare it (:attr:`op4ksr_bench.methods.base.MethodCard.non_commercial`); this reading is the
default of a user-written card that does not say, and the fallback for ``run.json`` records written before
cards carried the flag.
"""

from __future__ import annotations

import re
from typing import Any

NON_COMMERCIAL = re.compile(r"non[- ]?commercial|\bnc\b|-nc-|-nc$", re.IGNORECASE)


def is_non_commercial(licence: str | None) -> bool:
    """True if a licence string restricts commercial use (``CC-BY-NC-4.0``, ``non-commercial``, ...)."""
    return bool(licence) and bool(NON_COMMERCIAL.search(licence))


def card_is_non_commercial(card: dict[str, Any]) -> bool:
    """A ``run.json`` method card's ``non_commercial`` flag; read from its licence when the record has none."""
    if "non_commercial" in card:
        return bool(card["non_commercial"])
    return is_non_commercial(card.get("licence"))
