"""Every implemented venue against its own simulator: subscribe, ack, and exact round trips.

The simulator encodes known quotes in the venue's wire format; the venue module
must decode them back to the same prices and sizes. This keeps the two sides of
each protocol honest with each other; the per-venue tests pin both to the docs.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.instruments import load_venue_instruments
from ingest.simulator.base import BOOK, FUNDING, SimSession
from ingest.simulator.market import SimFunding, SimQuote
from ingest.simulator.venues import sim_class
from ingest.venues import implemented_venues, venue_class
from ingest.venues.base import FrameError
from schemas.market import ContractKind, Funding, Quote, quote_group

RECEIPT = 1_790_516_465_999_000_000
SIM_BASE = "ws://127.0.0.1:1"


def _subscribed_sessions(name: str):
    instruments = load_venue_instruments(name)
    venue = venue_class(name)(instruments)
    sim = sim_class(name)(instruments)
    sessions = []
    for plan in venue.connections(f"{SIM_BASE}/{name}"):
        path = plan.url.removeprefix(f"{SIM_BASE}/{name}").split("?")[0] or sim.ws_paths[0]
        assert path in sim.ws_paths, f"{plan.url} is not served by the {name} simulator"
        session = SimSession(name, path, {})
        replies = list(sim.on_open(session))
        for frame in venue.on_connect() + venue.subscribe_messages(plan.topics):
            replies += sim.on_message(session, frame)
        for reply in replies:
            parsed = venue.parse(reply, RECEIPT)
            assert not parsed.events and parsed.error is None and parsed.gap is None, reply
        sessions.append(session)
    return instruments, venue, sim, sessions


@pytest.mark.parametrize("name", implemented_venues())
def test_every_instrument_subscribed_for_book_and_funding(name: str) -> None:
    instruments, _venue, _sim, sessions = _subscribed_sessions(name)
    subscribed = set().union(*(s.subscriptions for s in sessions))
    assert instruments, f"{name} bundled listing is empty"
    assert {i.base for i in instruments} >= {"BTC", "ETH"}
    for inst in instruments:
        assert (BOOK, inst.native_symbol) in subscribed
        assert (FUNDING, inst.native_symbol) in subscribed


@pytest.mark.parametrize("name", implemented_venues())
def test_simulated_frames_decode_to_the_same_values(name: str) -> None:
    instruments, venue, sim, sessions = _subscribed_sessions(name)
    for inst in instruments:
        session = next(s for s in sessions if (BOOK, inst.native_symbol) in s.subscriptions)
        price = Decimal("86400.5") if inst.base == "BTC" else Decimal("3.25")
        quote = SimQuote(price, price + 1, Decimal("2.5"), Decimal("40"), 1_790_516_465_000)
        events = [e for f in sim.book_frames(session, inst, quote) for e in venue.parse(f, RECEIPT).events]
        got = [e for e in events if isinstance(e, Quote)][-1]
        assert (got.instrument_id, got.bid, got.ask) == (inst.instrument_id, quote.bid, quote.ask)
        # Identity travels as typed fields from the Instrument (decision 0036), never re-parsed.
        assert (got.quote, got.kind, quote_group(got)) == (inst.quote, inst.kind, inst.quote_group)
        # Venues with integer contract sizes round; allow one contract of difference.
        one = inst.contract_size if inst.kind is ContractKind.LINEAR else inst.contract_size / quote.bid
        assert got.bid_size is not None and abs(got.bid_size - quote.bid_size) <= one
        assert got.ask_size is not None and abs(got.ask_size - quote.ask_size) <= one
        session = next(s for s in sessions if (FUNDING, inst.native_symbol) in s.subscriptions)
        funding = SimFunding(Decimal("0.000125"), price, price, 1_790_524_800_000, 1_790_516_466_000)
        events = [e for f in sim.funding_frames(session, inst, funding) for e in venue.parse(f, RECEIPT).events]
        got_funding = [e for e in events if isinstance(e, Funding)][-1]
        assert (got_funding.instrument_id, got_funding.rate) == (inst.instrument_id, funding.rate)
        assert (got_funding.quote, got_funding.kind, quote_group(got_funding)) == (
            inst.quote,
            inst.kind,
            inst.quote_group,
        )


@pytest.mark.parametrize("name", implemented_venues())
def test_malformed_frame_is_a_frame_error(name: str) -> None:
    _instruments, venue, sim, _sessions = _subscribed_sessions(name)
    with pytest.raises(FrameError):
        venue.parse(sim.malformed_frame(), RECEIPT)
