"""The canonical instrument id is written and read in one place (schemas.market), and an
instrument's identity and quote group come from the typed fields its ticks carry (decision 0036):
ingest copies ``quote``/``kind`` from the ``Instrument``; only a record written before those
fields existed falls back to its id, in ``schemas.market.identity``."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from ingest.instruments import load_all
from ingest.venues.base import make_funding, make_quote
from processors.arbitrage import ArbConfig, evaluate
from schemas.arbitrage import Opportunity, decode_event
from schemas.arbitrage import encode as encode_event
from schemas.market import (
    ContractKind,
    Funding,
    Instrument,
    InstrumentKey,
    Quote,
    decode_tick,
    decode_ticks,
    encode,
    encode_ticks,
    identity,
    instrument_id_of,
    instrument_key,
    quote_group,
)

T0 = 1_790_000_000_000_000_000


def _instrument(instrument_id: str) -> Instrument:
    key = instrument_key(instrument_id)
    return Instrument(
        instrument_id=instrument_id,
        venue=key.venue,
        native_symbol="X",
        base=key.base,
        quote=key.quote,
        settle=key.quote if key.kind is ContractKind.LINEAR else key.base,
        kind=key.kind,
    )


def _quote(inst: Instrument) -> Quote:
    """What ingest publishes (venues' parsers all go through make_quote)."""
    one = Decimal(1)
    return make_quote(inst, bid=one, bid_qty=one, ask=one, ask_qty=one, exchange_ts_ns=T0, receipt_ts_ns=T0)


def _bare(quote: Quote | Funding) -> bytes:
    """``quote`` as a record written before decision 0036: no quote/kind on the wire."""
    fields = msgspec.json.decode(encode(quote))
    del fields["quote"], fields["kind"]
    return msgspec.json.encode(fields)


def test_every_bundled_instrument_id_reads_back_as_its_own_fields() -> None:
    instruments = load_all()
    assert len(instruments) > 50
    for inst in instruments:
        assert instrument_key(inst.instrument_id) == inst.key == (inst.base, inst.quote, inst.kind, inst.venue)
        assert instrument_id_of(*inst.key) == inst.instrument_id
        assert inst.key.quote_group == inst.quote_group == quote_group(inst)


def test_every_bundled_instruments_ticks_carry_its_quote_and_kind() -> None:
    for inst in load_all():
        quote = _quote(inst)
        funding = make_funding(inst, rate=Decimal("0.0001"), exchange_ts_ns=T0, receipt_ts_ns=T0)
        for tick in (quote, funding):
            assert (tick.quote, tick.kind) == (inst.quote, inst.kind)
            assert quote_group(tick) == inst.quote_group and tick.key == inst.key
            assert decode_tick(encode(tick)) == tick  # on the wire too


@pytest.mark.parametrize(
    ("instrument_id", "key", "group"),
    [
        ("BTC-USDT-PERP@binance", InstrumentKey("BTC", "USDT", ContractKind.LINEAR, "binance"), "USDT"),
        ("BTC-USD-INV-PERP@bitmex", InstrumentKey("BTC", "USD", ContractKind.INVERSE, "bitmex"), "USD-inverse"),
        ("PEPE-USDC-PERP@hyperliquid", InstrumentKey("PEPE", "USDC", ContractKind.LINEAR, "hyperliquid"), "USDC"),
    ],
)
def test_keys_and_quote_groups(instrument_id: str, key: InstrumentKey, group: str) -> None:
    assert instrument_key(instrument_id) == key
    quote = _quote(_instrument(instrument_id))
    assert (quote.quote, quote.kind) == (key.quote, key.kind)
    assert key.quote_group == group == quote_group(quote) == quote.key.quote_group


def test_an_inverse_contracts_group_is_its_quote_and_inverse() -> None:
    xbtusd = _quote(_instrument("BTC-USD-INV-PERP@bitmex"))
    assert (xbtusd.quote, xbtusd.kind) == ("USD", ContractKind.INVERSE)
    assert quote_group(xbtusd) == "USD-inverse"
    assert quote_group(xbtusd, {"USD": "USDT"}) == "USDT-inverse"  # a bridge keeps the kind


def test_a_bridge_maps_the_quote_currency_but_keeps_the_kind() -> None:
    usdc = _quote(_instrument("ETH-USDC-PERP@okx"))
    usdt = _quote(_instrument("ETH-USDT-PERP@binance"))
    bridges = {"USDC": "USDT"}
    assert quote_group(usdc) == "USDC" != quote_group(usdt)
    assert quote_group(usdc, bridges) == "USDT" == quote_group(usdt, bridges)
    assert quote_group(_quote(_instrument("ETH-USDC-INV-PERP@okx")), bridges) == "USDT-inverse"


def test_the_group_comes_from_the_typed_fields_not_the_id() -> None:
    # An id that does not parse: a typed quote never needs it (the id is not re-read).
    quote = msgspec.structs.replace(_quote(_instrument("SOL-USDC-PERP@deribit")), instrument_id="not an id")
    assert quote_group(quote) == "USDC" and identity(quote) == ("USDC", ContractKind.LINEAR)
    assert quote.key == InstrumentKey("SOL", "USDC", ContractKind.LINEAR, "deribit")


def test_an_old_record_without_the_fields_still_decodes_with_the_right_group() -> None:
    inverse = _quote(_instrument("BTC-USD-INV-PERP@deribit"))
    usdc = make_funding(_instrument("BTC-USDC-PERP@hyperliquid"), rate=None, exchange_ts_ns=T0, receipt_ts_ns=T0)
    old_inverse, old_usdc = decode_tick(_bare(inverse)), decode_tick(_bare(usdc))
    assert (old_inverse.quote, old_inverse.kind, old_usdc.quote, old_usdc.kind) == (None, None, None, None)
    # The one legacy path (schemas.market.identity) reads them from the canonical id.
    assert identity(old_inverse) == ("USD", ContractKind.INVERSE) and quote_group(old_inverse) == "USD-inverse"
    assert identity(old_usdc) == ("USDC", ContractKind.LINEAR) and quote_group(old_usdc, {"USDC": "USD*"}) == "USD*"
    assert old_inverse.key == inverse.key and old_usdc.key == usdc.key
    # A pre-batching bare record and a batch of old ticks both decode.
    batch = b'{"type":"batch","ticks":[' + _bare(inverse) + b"," + _bare(usdc) + b"]}"
    assert decode_ticks(batch) == [old_inverse, old_usdc]
    assert decode_ticks(encode_ticks([inverse, usdc])) == [inverse, usdc]


def test_alert_legs_carry_the_fields_and_an_old_alert_without_them_keeps_its_group() -> None:
    buy = _quote(_instrument("BTC-USD-INV-PERP@bitmex"))
    sell = msgspec.structs.replace(_quote(_instrument("BTC-USD-INV-PERP@okx")), bid=Decimal(2), ask=Decimal(3))
    alert = evaluate("BTC", buy, sell, T0, ArbConfig(taker_fees={}), T0)
    assert (alert.buy.quote, alert.buy.kind, alert.sell.quote, alert.sell.kind) == (
        "USD",
        ContractKind.INVERSE,
        "USD",
        ContractKind.INVERSE,
    )
    assert decode_event(encode_event(alert)) == alert and quote_group(alert.buy) == "USD-inverse"
    fields = msgspec.json.decode(encode_event(alert))
    for side in ("buy", "sell"):
        del fields[side]["quote"], fields[side]["kind"]
    old = decode_event(msgspec.json.encode(fields))
    assert isinstance(old, Opportunity) and (old.buy.quote, old.buy.kind) == (None, None)
    assert quote_group(old.buy) == quote_group(old.sell) == "USD-inverse"


@pytest.mark.parametrize(
    "bad", ["BTCUSDT", "BTC-USDT-PERP", "BTC-USDT-PERP@", "BTC-USDT-SWAP@okx", "BTC-USD-XYZ-PERP@x", "-USDT-PERP@x"]
)
def test_anything_else_is_refused_with_the_expected_shape(bad: str) -> None:
    with pytest.raises(ValueError, match="not a canonical instrument id"):
        instrument_key(bad)


def test_a_quote_knows_its_key() -> None:
    quote = Quote(
        instrument_id="SOL-USD-INV-PERP@deribit",
        venue="deribit",
        native_symbol="SOL-PERPETUAL",
        base="SOL",
        bid=Decimal(1),
        bid_size=Decimal(1),
        ask=Decimal(2),
        ask_size=Decimal(1),
        exchange_ts_ns=1,
        receipt_ts_ns=2,
        quote="USD",
        kind=ContractKind.INVERSE,
    )
    assert quote.key == InstrumentKey("SOL", "USD", ContractKind.INVERSE, "deribit")


def test_a_relisted_instrument_s_ticks_carry_its_new_fields() -> None:
    """make_quote keeps a template per instrument id: a new instrument object under the same id
    (a relisting with another multiplier or contract size) must not get the old one's fields."""
    old = _instrument("PEPE-USDT-PERP@binance")
    relisted = msgspec.structs.replace(
        old, native_symbol="1000PEPEUSDT", price_multiplier=Decimal(1000), contract_size=Decimal(1000)
    )
    two = Decimal(2)
    for inst in (old, relisted, old):
        quote = make_quote(inst, bid=two, bid_qty=two, ask=two, ask_qty=two, exchange_ts_ns=None, receipt_ts_ns=T0)
        assert (quote.native_symbol, quote.price_multiplier) == (inst.native_symbol, inst.price_multiplier)
        assert (quote.exchange_ts_ns, quote.receipt_ts_ns, quote.exchange_ts_missing) == (T0, T0, True)
        assert (quote.bid, quote.bid_size) == (two, two * inst.contract_size)  # linear: contracts to base units
