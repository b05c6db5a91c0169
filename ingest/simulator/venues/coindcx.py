"""CoinDCX futures simulator: Socket.IO events, served under /coindcx/socket.io.

Frames in and out are ``["<event>", data]`` texts; the server adapter turns them
into Socket.IO emits. Like the live venue, a ``join`` is never acknowledged and
an unknown channel (or depth) is silently ignored. Each book stream starts with
a ``depth-snapshot`` and then sends ``depth-update`` diffs (a moved level is
deleted with size "0"), with a fresh snapshot every few frames; ``vs`` rises by
one per frame per (pair, depth) stream. Sides are objects keyed by price in the
order V8 writes them (integer-looking prices first), and the payload is a JSON
text inside the event object. ``currentPrices@futures@rt`` carries every pair's
mark ``mp`` and funding ``efr``/``fr`` as JSON numbers; updates carry only the
fields that changed, and a periodic ``#snapshot`` repeats them all.

Generated listings (``list_instrument``/``listing``): USDT-margined linear pairs
only, spelt ``B-<COIN>_USDT`` with Binance's 1000/10000/1000000 prefixes (every
CoinDCX perpetual relays a Binance USD-M one), served as the active-pair list
plus one details response per pair, numbers as JSON numbers like the venue's.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import msgspec
import orjson

from ingest.simulator.base import BOOK, FUNDING, Frame, ListingSpec, SimSession, VenueSim, to_venue_qty
from ingest.simulator.listing_helpers import number, prefixed, tick_for
from ingest.simulator.market import SimFunding, SimQuote
from ingest.venues.base import make_instrument
from schemas.market import ContractKind, Instrument

CURRENT_PRICES = "currentPrices@futures@rt"
DEPTHS = ("10", "20", "50")
SNAPSHOT_EVERY = 8  # book frames per stream between snapshots
FULL_PRICES_EVERY = 15  # price frames per pair between #snapshot repeats
# One resting level a little away from the top on each side, so books are not one level deep.
DEEP_BID, DEEP_ASK = Decimal("0.996"), Decimal("1.004")

ACTIVE_PATH = "/exchange/v1/derivatives/futures/data/active_instruments?margin_currency_short_name[]=USDT"
DETAIL_PATH = "/exchange/v1/derivatives/futures/data/instrument?pair={pair}&margin_currency_short_name=USDT"
PREFIXES = (1, 1000, 10_000, 1_000_000)  # Binance's (1000PEPE, 10000..., 1000000MOG)

Levels = dict[str, str]
_numbers = msgspec.json.Encoder(decimal_format="number")  # currentPrices fields are JSON numbers


def _text(value: Decimal) -> str:
    return format(value, "f")


def _frame_symbol(pair: str) -> str:
    return pair.removeprefix("B-").replace("_", "")


def _event(name: str, payload: dict[str, Any]) -> str:
    """The live envelope: the payload is JSON text inside ``{"event", "data"}``."""
    return orjson.dumps([name, {"event": name, "data": _numbers.encode(payload).decode()}]).decode()


def _v8_order(levels: Levels, descending: bool) -> Levels:
    """Key order of a JavaScript object: integer-like keys ascending first, then the rest in book order."""
    whole = sorted((p for p in levels if p.isdigit()), key=int)
    rest = sorted((p for p in levels if not p.isdigit()), key=Decimal, reverse=descending)
    return {price: levels[price] for price in whole + rest}


def _diff(old: Levels, new: Levels) -> Levels:
    gone = {price: "0" for price in old if price not in new}
    return gone | {price: size for price, size in new.items() if old.get(price) != size}


class CoindcxSim(VenueSim):
    transport = "socketio"
    name = "coindcx"
    ws_paths = ("/socket.io",)

    # -- generated listings -------------------------------------------------
    @classmethod
    def list_instrument(cls, spec: ListingSpec) -> Instrument | None:
        if spec.group != "USDT" or spec.multiplier not in PREFIXES:
            return None  # USDT-margined only (the INR-margined book is the same contract)
        coin = prefixed(spec.base, spec.multiplier)
        if coin is None:
            return None  # a name the prefix rule would read differently
        return make_instrument(
            cls.name,
            f"B-{coin}_USDT",
            coin,
            "USDT",
            "USDT",
            ContractKind.LINEAR,
            contract_size=Decimal(spec.multiplier),
            tick_size=tick_for(spec.reference_price * spec.multiplier),
            funding_interval_h=spec.funding_interval_h,
        )

    def listing(self, instruments: list[Instrument]) -> dict[str, Any]:
        mine = [i for i in instruments if i.venue == self.name]
        responses: dict[str, Any] = {ACTIVE_PATH: [i.native_symbol for i in mine]}
        for inst in mine:
            responses[DETAIL_PATH.format(pair=inst.native_symbol)] = {"instrument": _details(inst)}
        return responses

    def on_message(self, session: SimSession, frame: Frame) -> list[Frame]:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return []  # the live socket just closes on a malformed packet
        if not isinstance(message, list) or len(message) != 2 or not isinstance(message[1], dict):
            return []
        event, body = message
        channel = str(body.get("channelName", ""))
        if event == "join":
            for kind, pair, depth in self._channel(channel):
                session.subscriptions.add((kind, pair))
                if kind == BOOK:
                    session.state.setdefault("depth", {})[pair] = depth
        elif event == "leave":
            for kind, pair, _depth in self._channel(channel):
                session.subscriptions.discard((kind, pair))
                session.state.get("books" if kind == BOOK else "prices", {}).pop(pair, None)
        return []  # no acknowledgement, no error: ever

    def _channel(self, channel: str) -> list[tuple[str, str, str]]:
        """(kind, pair, depth) subscriptions a channel name stands for; none for unknown names."""
        if channel == CURRENT_PRICES:
            return [(FUNDING, pair, "") for pair in self.by_native]
        pair, _, rest = channel.partition("@orderbook@")
        depth, _, product = rest.partition("-")
        if pair in self.by_native and depth in DEPTHS and product == "futures":
            return [(BOOK, pair, depth)]
        return []

    # -- books --------------------------------------------------------------
    def book_frames(self, session: SimSession, inst: Instrument, quote: SimQuote) -> list[Frame]:
        pair = inst.native_symbol
        depth = session.state.get("depth", {}).get(pair, "20")
        streams: dict[str, dict[str, Any]] = session.state.setdefault("books", {})
        stream = streams.get(pair)
        snapshot = stream is None or stream["frames"] % SNAPSHOT_EVERY == 0
        if stream is None or snapshot:
            stream = streams[pair] = {"frames": 0, "deep": self._deep(inst, quote), "bids": {}, "asks": {}}
        shown_bids, shown_asks = self._levels(inst, quote, stream["deep"])
        bids, asks = shown_bids, shown_asks
        if not snapshot:
            bids, asks = _diff(stream["bids"], shown_bids), _diff(stream["asks"], shown_asks)
        stream["bids"], stream["asks"] = shown_bids, shown_asks
        stream["frames"] += 1
        event = "depth-snapshot" if snapshot else "depth-update"
        payload: dict[str, Any] = {
            "ts": quote.ts_ms,
            "vs": session.next_seq(f"{pair}@{depth}", start=310_447_000),
            "asks": _v8_order(asks, descending=False),
            "bids": _v8_order(bids, descending=True),
            "type": event,
            "pts": quote.ts_ms,
        }
        if not snapshot:
            payload["E"] = quote.ts_ms - 60  # the relayed third-party event time
        return [_event(event, payload | {"pr": "futures", "s": _frame_symbol(pair)})]

    @staticmethod
    def _deep(inst: Instrument, quote: SimQuote) -> tuple[tuple[Decimal, str], tuple[Decimal, str]]:
        tick = inst.tick_size or quote.bid
        size = _text(to_venue_qty(inst, quote.bid_size * 3, quote.bid))
        bid = (quote.bid * DEEP_BID).quantize(tick, rounding=ROUND_FLOOR)
        ask = (quote.ask * DEEP_ASK).quantize(tick, rounding=ROUND_CEILING)
        return (bid, size), (ask, size)

    @staticmethod
    def _levels(inst: Instrument, quote: SimQuote, deep: Any) -> tuple[Levels, Levels]:
        """The book we show: the top, plus the resting level while it is still behind the top."""
        (deep_bid, bid_size), (deep_ask, ask_size) = deep
        bids = {_text(quote.bid): _text(to_venue_qty(inst, quote.bid_size, quote.bid))}
        asks = {_text(quote.ask): _text(to_venue_qty(inst, quote.ask_size, quote.ask))}
        if deep_bid < quote.bid:
            bids[_text(deep_bid)] = bid_size
        if deep_ask > quote.ask:
            asks[_text(deep_ask)] = ask_size
        return bids, asks

    # -- current prices -------------------------------------------------------
    def funding_frames(self, session: SimSession, inst: Instrument, funding: SimFunding) -> list[Frame]:
        pair = inst.native_symbol
        sent: dict[str, dict[str, Decimal]] = session.state.setdefault("prices", {})
        counts: dict[str, int] = session.state.setdefault("price_frames", {})
        values = {"fr": funding.rate, "efr": funding.rate, "mp": funding.mark}
        previous = sent.get(pair)
        count = counts[pair] = counts.get(pair, 0) + 1
        full = previous is None or count % FULL_PRICES_EVERY == 0
        changed: dict[str, Any] = {k: v for k, v in values.items() if full or (previous or {}).get(k) != v}
        sent[pair] = values
        if not changed:
            return []
        changed |= {"bmST": funding.ts_ms - 150, "cmRT": funding.ts_ms - 8}
        if full:
            changed |= {"ls": funding.mark, "mkt": _frame_symbol(pair)}
        session.state["prices_vs"] = session.state.get("prices_vs", 361_105_000) + 1
        payload = {
            "vs": session.state["prices_vs"],
            "ts": funding.ts_ms,
            "pr": "futures",
            "pST": funding.ts_ms - 17,
            "prices": {pair: changed},
        }
        event = "currentPrices@futures#snapshot" if full and previous is not None else "currentPrices@futures#update"
        return [_event(event, payload)]

    def malformed_frame(self) -> Frame:
        """A well-formed event whose inner JSON text is cut short (the server adapter can still emit it)."""
        return orjson.dumps(["depth-update", {"event": "depth-update", "data": '{"ts":1790516465500,"vs":'}]).decode()


def _details(inst: Instrument) -> dict[str, Any]:
    """One pair's details in the venue's shape (numbers are JSON numbers, as on the wire)."""
    coin = inst.native_symbol.removeprefix("B-").removesuffix("_USDT")
    tick = inst.tick_size or Decimal("0.01")
    lot = Decimal(1).scaleb(min(0, -(tick.adjusted() + 4)))  # about a dollar or more per lot
    return {
        "settle_currency_short_name": "USDT",
        "quote_currency_short_name": "USDT",
        "position_currency_short_name": coin,
        "underlying_currency_short_name": coin,
        "status": "active",
        "pair": inst.native_symbol,
        "kind": "perpetual",
        "settlement": "never",
        "max_leverage_long": Decimal("20.0"),
        "max_leverage_short": Decimal("20.0"),
        "unit_contract_value": Decimal("1.0"),
        "price_increment": number(tick),
        "quantity_increment": number(lot),
        "min_trade_size": number(lot),
        "min_price": number(tick),
        "max_price": number(tick.scaleb(6) * 9),
        "min_quantity": number(lot),
        "max_quantity": number(lot.scaleb(6)),
        "min_notional": Decimal("6.0"),
        "maker_fee": Decimal("0.0236"),
        "taker_fee": Decimal("0.059"),
        "safety_percentage": Decimal("1.5"),
        "quanto_to_settle_multiplier": Decimal("1.0"),
        "is_inverse": False,
        "is_quanto": False,
        "allow_post_only": False,
        "allow_hidden": False,
        "max_market_order_quantity": number(lot.scaleb(5)),
        "funding_frequency": inst.funding_interval_h,
        "max_notional": Decimal("0.0"),
        "expiry_time": 2548162800000,
        "exit_only": False,
        "multiplier_up": Decimal("4.0"),
        "multiplier_down": Decimal("4.0"),
        "liquidation_fee": Decimal("1.0"),
        "margin_currency_short_name": "USDT",
        "time_in_force_options": ["good_till_cancel", "immediate_or_cancel", "fill_or_kill"],
        "order_types": ["limit_order", "market_order", "stop_limit", "take_profit_limit", "stop_market"],
    }


SIM = CoindcxSim
