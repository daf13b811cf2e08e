"""Free model text mapped onto a label set. It sits with the calls because a call pool worker parses
an app answer before handing it to the judge calls that follow it."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["parse_label"]


def _norm(s: str) -> str:
    return re.sub(r"[\s\-]+", "_", s.strip().strip("`'\".,:;!*").strip().lower())


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """Map free model text onto the label set: exact, then normalised, then a single label named in it."""
    t = text.strip()
    if t in labels:
        return t
    by_norm = {_norm(lab): lab for lab in labels}
    n = _norm(t)
    if n in by_norm:
        return by_norm[n]
    if ":" in t:
        tail = _norm(t.rsplit(":", 1)[1])
        if tail in by_norm:
            return by_norm[tail]
    words = _norm(t)
    found = {lab for key, lab in by_norm.items() if re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", words)}
    if len(found) > 1:
        # Prefer the longest when one label contains another (card_payment vs card_payment_fee).
        longest = max(found, key=len)
        if all(_norm(other) in _norm(longest) for other in found):
            return longest
        return None
    return found.pop() if found else None
