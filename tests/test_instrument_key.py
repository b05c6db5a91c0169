"""The canonical instrument id is written and read in one place (schemas.market): identity and
quote group come from the types, not from ad-hoc string splitting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ingest.instruments import load_all
from processors.arbitrage import quote_group
from schemas.market import ContractKind, InstrumentKey, Quote, instrument_id_of, instrument_key


def test_every_bundled_instrument_id_reads_back_as_its_own_fields() -> None:
    instruments = load_all()
    assert len(instruments) > 50
    for inst in instruments:
        assert instrument_key(inst.instrument_id) == inst.key == (inst.base, inst.quote, inst.kind, inst.venue)
        assert instrument_id_of(*inst.key) == inst.instrument_id
        assert inst.key.quote_group == inst.quote_group


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
    assert key.quote_group == group == quote_group(instrument_id)


def test_a_bridge_maps_the_quote_currency_but_keeps_the_kind() -> None:
    assert quote_group("ETH-USDC-PERP@okx", {"USDC": "USDT"}) == "USDT"
    assert quote_group("ETH-USDC-INV-PERP@okx", {"USDC": "USDT"}) == "USDT-inverse"


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
    )
    assert quote.key == InstrumentKey("SOL", "USD", ContractKind.INVERSE, "deribit")
