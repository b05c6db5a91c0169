"""The seed's symbol files, read unchanged: which instruments an operator asked for.

Three formats, told apart by content (not by file name, so a renamed file still works):

* ``futures_symbols.txt`` — ``BASE:NATIVE_SYMBOL:venue`` per line, ``#`` comments;
* ``symbols.csv`` — a header ``exchange,symbol`` then one instrument per row;
* ``symbols.json`` — a list of ``{"exchange": ..., "symbol": ...}`` objects.

Venue names go through :data:`VENUE_ALIASES` (the seed called Gate ``gateio``). A line for an
exchange we know exists but do not support, or for a contract family the venue module declares
untracked (BitMEX quanto swaps, Phemex's retired USD-settled contracts), is skipped, and all such
lines are named in one warning; a name that is no exchange at all (a typo) is an error naming
the line, and so is a symbol a supported venue does not list — a typo must never silently drop
an instrument.

The seed spelled some symbols the way the venue's spot market does (``okx,BTC-USDT``) or
without the venue's price multiplier (``SHIB:SHIBUSDT:binance`` where Binance lists
``1000SHIBUSDT``). Such a symbol resolves to the venue's one perpetual with the same canonical
base and quote, and the mapping is logged, so the operator's intent is kept and the prices are
still per one base unit downstream.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.venues import VENUE_NAMES, venue_class
from ingest.venues.base import canonical_base
from plumbing.errors import ConfigError
from schemas.market import ContractKind, Instrument

log = logging.getLogger(__name__)

VENUE_ALIASES = {"gateio": "gate", "gate.io": "gate", "okex": "okx", "kucoinfutures": "kucoin", "bitget_v2": "bitget"}
"""Other names of venues we support, as the seed and common tools spell them."""

UNSUPPORTED_EXCHANGES = frozenset(
    {
        "aevo", "apex", "ascendex", "backpack", "bingx", "binanceus", "bitfinex", "bitmart", "bitstamp", "bitunix",
        "blofin", "btse", "coinbase", "cryptocom", "dydx", "gemini", "htx", "huobi", "kraken", "krakenfutures",
        "lbank", "poloniex", "toobit", "vertex", "weex", "whitebit", "woo", "woox", "xt",
    }
)  # fmt: skip
"""Real exchanges arbstream has no connector for: their lines are skipped with one warning."""

_QUOTES = ("USDT", "USDC", "USD")
_PERP_SUFFIXES = ("PERPETUAL", "SWAP", "PERP")


@dataclass(frozen=True)
class SymbolLine:
    """One requested instrument, with where it came from for error messages."""

    number: int
    text: str
    venue: str
    symbol: str
    base: str | None = None
    """The BASE column of the txt format (None in the csv/json formats)."""

    @property
    def where(self) -> str:
        return f"line {self.number}"


def read_lines(text: str) -> list[SymbolLine]:
    """Parse any of the three formats into lines (venue names not yet checked)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        return list(_json_lines(text))
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.replace(" ", "").lower().startswith("exchange,symbol"):
        return list(_csv_lines(text))
    return list(_txt_lines(text))


def _txt_lines(text: str) -> Iterator[SymbolLine]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(":")]
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"line {number}: {raw.strip()!r} is not BASE:NATIVE_SYMBOL:venue")
        yield SymbolLine(number, raw.strip(), parts[2].lower(), parts[1], parts[0].upper())


def _csv_lines(text: str) -> Iterator[SymbolLine]:
    rows = csv.reader(io.StringIO(text))
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if number == 1 or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise ConfigError(f"line {number}: {','.join(row)!r} is not exchange,symbol")
        yield SymbolLine(number, ",".join(row), cells[0].lower(), cells[1])


def _json_lines(text: str) -> Iterator[SymbolLine]:
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"symbols JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ConfigError("symbols JSON: expected a list of {exchange, symbol} objects")
    for number, entry in enumerate(entries, start=1):
        if not (isinstance(entry, dict) and isinstance(entry.get("exchange"), str) and entry.get("symbol")):
            raise ConfigError(f"entry {number}: {entry!r} is not an object with exchange and symbol")
        yield SymbolLine(number, json.dumps(entry), entry["exchange"].strip().lower(), str(entry["symbol"]).strip())


def resolve(text: str, known: list[Instrument]) -> list[Instrument]:
    """The instruments a symbol file asks for, resolved against the venues' listings."""
    index = _Index(known)
    chosen: list[Instrument] = []
    skipped: list[str] = []
    untracked: list[str] = []
    for line in read_lines(text):
        venue = VENUE_ALIASES.get(line.venue, line.venue)
        if venue not in VENUE_NAMES:
            if line.venue in UNSUPPORTED_EXCHANGES:
                skipped.append(f"{line.where} ({line.venue})")
                continue
            raise ConfigError(f"{line.where}: {line.text!r}: unknown venue {line.venue!r}")
        instrument = index.find(venue, line)
        if isinstance(instrument, str):
            untracked.append(f"{line.where} ({venue} {line.symbol}: {instrument})")
        elif instrument not in chosen:
            chosen.append(instrument)
    if skipped:
        log.warning("symbols file: %d lines for unsupported exchanges skipped: %s", len(skipped), ", ".join(skipped))
    if untracked:
        log.warning(
            "symbols file: %d lines for contracts arbstream does not track skipped: %s",
            len(untracked),
            "; ".join(untracked),
        )
    return chosen


def load(path: Path, known: list[Instrument]) -> list[Instrument]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"symbols file {path}: {exc.strerror or exc}") from exc
    try:
        return resolve(text, known)
    except ConfigError as exc:
        raise ConfigError(f"symbols file {path}: {exc}") from exc


class _Index:
    def __init__(self, known: list[Instrument]) -> None:
        self.by_native = {(i.venue, i.native_symbol): i for i in known}
        self.by_upper = {(i.venue, i.native_symbol.upper()): i for i in known}
        self.by_base: dict[tuple[str, str, str], list[Instrument]] = {}
        for i in known:
            self.by_base.setdefault((i.venue, i.base, i.quote), []).append(i)

    def find(self, venue: str, line: SymbolLine) -> Instrument | str:
        """The line's instrument, or why the venue's contract is one arbstream does not track."""
        found = self.by_native.get((venue, line.symbol)) or self.by_upper.get((venue, line.symbol.upper()))
        if found is None and (reason := venue_class(venue).untracked_reason(line.symbol)) is not None:
            return reason
        if found is None:
            found = self._by_meaning(venue, line)
            if found is not None:
                log.info("symbols file %s: %s %s is listed as %s", line.where, venue, line.symbol, found.native_symbol)
        if found is None:
            raise ConfigError(f"{line.where}: {line.text!r}: {venue} lists no perpetual {line.symbol!r}")
        if line.base is not None and found.base != canonical_base(line.base)[0]:
            raise ConfigError(
                f"{line.where}: {line.text!r}: {venue} {found.native_symbol} is base {found.base}, not {line.base}"
            )
        return found

    def _by_meaning(self, venue: str, line: SymbolLine) -> Instrument | None:
        """The venue's one perpetual whose canonical base and quote the seed's spelling names."""
        compact = "".join(ch for ch in line.symbol.upper() if ch.isalnum())
        for suffix in _PERP_SUFFIXES:
            compact = compact.removesuffix(suffix)
        if compact.endswith(("USDTM", "USDCM", "USDM")):  # KuCoin's perpetual suffix
            compact = compact[:-1]
        quote = next((q for q in _QUOTES if compact.endswith(q) and len(compact) > len(q)), None)
        if quote is None:
            return None
        base = canonical_base(line.base or compact[: -len(quote)])[0]
        candidates = self.by_base.get((venue, base, quote), [])
        if len(candidates) > 1:
            wanted = ContractKind.INVERSE if quote == "USD" else ContractKind.LINEAR
            candidates = [i for i in candidates if i.kind is wanted]
        return candidates[0] if len(candidates) == 1 else None
