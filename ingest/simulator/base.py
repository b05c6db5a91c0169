"""What every venue simulator provides: the server side of one venue's protocol.

A venue simulator (``ingest/simulator/venues/<name>.py``, exporting ``SIM``)
answers the same subscribe messages, acks and heartbeats as the real venue and
encodes the synthetic market into the venue's own frames. Sizes arrive in base
units and must be converted to the venue's size unit (contracts, lots, USD).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from aiohttp import web

from ingest.instruments import listing_path
from ingest.simulator.market import SimFunding, SimQuote
from schemas.market import ContractKind, Instrument

Frame = str | bytes
RestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BOOK = "book"
FUNDING = "funding"


@dataclass
class SimSession:
    """One client connection to the simulator."""

    venue: str
    path: str
    query: dict[str, str]
    subscriptions: set[tuple[str, str]] = field(default_factory=set)
    """(BOOK or FUNDING, native symbol) pairs this client subscribed to."""
    sequences: dict[str, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    """Free-form per-connection protocol state for the venue simulator."""
    skip_sequence: bool = False
    """Fault injection: the next sequence number jumps by one extra."""
    close_requested: bool = False
    """Set by a venue simulator to drop the connection without a close frame (as venues do)."""

    def next_seq(self, key: str, start: int = 1000) -> int:
        value = self.sequences.get(key, start) + (2 if self.skip_sequence else 1)
        self.skip_sequence = False
        self.sequences[key] = value
        return value


def to_venue_qty(inst: Instrument, base_qty: Decimal, price: Decimal) -> Decimal:
    """Inverse of the ingest conversion: base units to the venue's size unit."""
    if inst.kind is ContractKind.LINEAR:
        return base_qty / inst.contract_size
    return base_qty * price / inst.contract_size


def to_contracts(inst: Instrument, base_qty: Decimal, price: Decimal) -> int:
    """Whole contracts (at least one) for venues whose sizes are integers."""
    return max(1, int(to_venue_qty(inst, base_qty, price)))


@dataclass(frozen=True)
class ListingSpec:
    """One contract the generated market wants a venue to list (see ``VenueSim.list_instrument``)."""

    base: str
    """Canonical base (``PEPE``, ``BTC``)."""
    group: str
    """Quote group: ``USDT`` / ``USDC`` (linear) or ``USD-inverse``."""
    multiplier: int
    """Price multiplier the venue uses for this base (1, or 1000 for ``1000PEPE`` / ``kPEPE``)."""
    funding_interval_h: int
    reference_price: Decimal
    """Price of one base unit, to choose a plausible tick and contract size."""
    volume_24h_quote: Decimal | None = None


class VenueSim(ABC):
    name: ClassVar[str]
    transport: ClassVar[str] = "websocket"
    """"socketio": the server mounts python-socketio at /<name>/socket.io and frames are
    ``["event", data]`` JSON text in both directions."""
    ws_paths: ClassVar[tuple[str, ...]] = ("/ws",)
    """WebSocket paths served under ``/<name>``; must match the venue module's ws_url()."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self.by_native = {i.native_symbol: i for i in instruments if i.venue == self.name}

    def rest_routes(self) -> dict[str, RestHandler]:
        """REST endpoints under ``/<name>``: by default the bundled instrument listings.

        The bundled file maps "path?query" to the response; routes match on the
        path, and the handler picks the entry whose query matches the request's.
        """
        listing = orjson.loads(listing_path(self.name, None).read_bytes())
        by_path: dict[str, dict[str, Any]] = {}
        for key, response in listing.items():
            path, _, query = key.partition("?")
            by_path.setdefault(path, {})[query] = response

        def handler_for(responses: dict[str, Any]) -> RestHandler:
            async def serve(request: web.Request) -> web.StreamResponse:
                body = responses.get(request.query_string, next(iter(responses.values())))
                return web.Response(body=orjson.dumps(body), content_type="application/json")

            return serve

        return {path: handler_for(responses) for path, responses in by_path.items()}

    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        """The Instrument this venue would list for ``spec`` (its native symbol, contract size,
        tick), or None when the venue offers no such contract (e.g. an inverse on a USDT-only
        venue). Must be exactly what the venue module's ``parse_instruments`` reads back from
        :meth:`listing`."""
        raise NotImplementedError(f"{cls.name}: generated listings not implemented")

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        """The venue's REST listing responses for ``instruments``, keyed like the bundled file
        ("path?query" -> decoded response), so that ``VENUE.parse_instruments(listing(x)) == x``."""
        raise NotImplementedError(f"{self.name}: generated listings not implemented")

    def on_open(self, session: SimSession) -> list[Frame]:
        """Frames sent as soon as a client connects (welcome/info messages)."""
        return []

    @abstractmethod
    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        """Handle a client frame (subscribe, ping...): update session, return replies."""

    @abstractmethod
    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        """Frames carrying the new top of book for a BOOK subscription."""

    @abstractmethod
    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        """Frames carrying funding/mark for a FUNDING subscription."""

    def malformed_frame(self) -> Frame:
        return '{"truncated": '
