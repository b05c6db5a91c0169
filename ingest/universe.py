"""Which instruments arbstream tracks: the universe, from the listings and the settings.

``ARBSTREAM_SYMBOLS`` is one of

* ``all`` (the default): every canonical base listed as a perpetual on at least
  ``ARBSTREAM_MIN_VENUES`` (2) enabled venues — arbitrage needs two legs, and the long tail is
  where it lives;
* ``top:N``: the N bases of ``all`` with the largest 24 h quote volume summed over venues, where
  the venues publish it (bases without any volume figure rank after every base with one, then by
  venue count and name, so the choice is deterministic);
* a comma list of bases (``BTC,ETH,PEPE``): exactly those, on every venue listing them (no
  minimum venue count: the operator asked for them by name).

Filters apply to every form: ``ARBSTREAM_QUOTE_GROUPS`` keeps only those quote groups
(``USDT``, ``USDC``, ``USD-inverse``...; empty = all) and ``ARBSTREAM_EXCLUDE`` drops bases. A
symbols file (``ARBSTREAM_SYMBOLS_FILE``, :mod:`ingest.symbol_files`) replaces the selection.
Pure functions: listings in, instruments out.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ingest import symbol_files
from plumbing.errors import ConfigError
from schemas.market import Instrument

log = logging.getLogger(__name__)

ALL = "all"
TOP_PREFIX = "top:"


@dataclass(frozen=True)
class UniverseSpec:
    """The parsed universe settings."""

    mode: str = ALL
    """``all``, ``top`` or ``list``."""
    bases: frozenset[str] = frozenset()
    top_n: int = 0
    min_venues: int = 2
    quote_groups: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        symbols: Sequence[str],
        min_venues: int = 2,
        quote_groups: Iterable[str] = (),
        exclude: Iterable[str] = (),
    ) -> UniverseSpec:
        """From the settings' values; raises ConfigError with the rule on a bad value."""
        if min_venues < 1:
            raise ConfigError(f"ARBSTREAM_MIN_VENUES must be at least 1, got {min_venues}")
        words = [s.strip() for s in symbols if s.strip()]
        mode, bases, top_n = ALL, frozenset[str](), 0
        if len(words) == 1 and words[0].lower().startswith(TOP_PREFIX):
            count = words[0][len(TOP_PREFIX) :]
            if not count.isdigit() or int(count) < 1:
                raise ConfigError(f"ARBSTREAM_SYMBOLS={words[0]!r}: top:N needs a positive whole N, e.g. top:100")
            mode, top_n = "top", int(count)
        elif words and [w.lower() for w in words] != [ALL]:
            odd = [w for w in words if w.lower() == ALL or w.lower().startswith(TOP_PREFIX)]
            if odd:
                raise ConfigError(f"ARBSTREAM_SYMBOLS: {odd[0]!r} cannot be combined with a list of bases")
            mode, bases = "list", frozenset(w.upper() for w in words)
        return cls(
            mode=mode,
            bases=bases,
            top_n=top_n,
            min_venues=min_venues,
            quote_groups=frozenset(quote_groups),
            exclude=frozenset(b.upper() for b in exclude),
        )

    def describe(self) -> str:
        if self.mode == "list":
            return ",".join(sorted(self.bases))
        return f"top:{self.top_n}" if self.mode == "top" else ALL


def select_universe(known: Sequence[Instrument], spec: UniverseSpec) -> list[Instrument]:
    """The tracked instruments among ``known`` (every enabled venue's listing), in listing order."""
    eligible = [
        i for i in known if i.base not in spec.exclude and (not spec.quote_groups or i.quote_group in spec.quote_groups)
    ]
    if spec.mode == "list":
        missing = spec.bases - {i.base for i in eligible}
        if missing:
            log.warning("ARBSTREAM_SYMBOLS: no enabled venue lists %s", ", ".join(sorted(missing)))
        return [i for i in eligible if i.base in spec.bases]
    venues: dict[str, set[str]] = defaultdict(set)
    for instrument in eligible:
        venues[instrument.base].add(instrument.venue)
    bases = {base for base, where in venues.items() if len(where) >= spec.min_venues}
    if spec.mode == "top":
        bases = set(_top(bases, eligible, venues, spec.top_n))
    return [i for i in eligible if i.base in bases]


def select(
    known: Sequence[Instrument],
    spec: UniverseSpec,
    symbols_file: Path | None = None,
) -> list[Instrument]:
    """A symbols file if one is configured, else the universe rule; never empty."""
    chosen = symbol_files.load(symbols_file, list(known)) if symbols_file else select_universe(known, spec)
    if not chosen:
        raise ConfigError(f"nothing to track: no instrument of ARBSTREAM_SYMBOLS={spec.describe()} in the listings")
    return chosen


def _top(bases: set[str], eligible: Sequence[Instrument], venues: dict[str, set[str]], count: int) -> list[str]:
    volume: dict[str, Decimal] = defaultdict(Decimal)
    published: set[str] = set()
    for instrument in eligible:
        if instrument.base in bases and instrument.volume_24h_quote is not None:
            volume[instrument.base] += instrument.volume_24h_quote
            published.add(instrument.base)
    ranked = sorted(bases, key=lambda b: (b not in published, -volume[b], -len(venues[b]), b))
    return ranked[:count]
