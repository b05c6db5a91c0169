"""Funding-rate caps: where each venue publishes them (listings, OKX's stream), which one applies,
and ``cap``/``floor``/``at_cap`` on /api/funding-table/ and /api/coin-detail/ (null when unknown)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from api.funding_math import at_cap, rate_limits
from api.main import build_context, create_app
from api.universe import Universe
from ingest.instruments import load_venue_instruments
from ingest.venues.base import load_json
from ingest.venues.binance import EXCHANGE_INFO, FUNDING_INFO, Binance
from ingest.venues.okx import Okx
from schemas.market import Funding
from tests.test_api_support import scenario_settings, serve
from tests.test_funding_api import get
from tests.test_funding_support import BN, BY, HL, OK, VOLUMES, funding, funding_model, instrument

D = Decimal


def _caps(venue: str) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    return {i.native_symbol: (i.funding_cap, i.funding_floor) for i in load_venue_instruments(venue)}


def test_listed_caps_per_venue_from_the_bundled_listings() -> None:
    assert _caps("bybit")["BTCUSDT"] == (D("0.00375"), D("-0.00375"))  # upperFundingRate / lowerFundingRate
    assert _caps("okx")["BTC-USDT-SWAP"] == (D("0.00375"), D("-0.00375"))  # public/funding-rate max/min
    assert _caps("gate")["BTC_USDT"] == (D("0.003"), D("-0.003"))  # funding_rate_limit, both signs
    assert _caps("mexc")["BTC_USDT"] == (D("0.0018"), D("-0.0018"))  # contract/funding_rate max/min
    for venue in ("kucoin", "bitget", "phemex", "bitmex", "hyperliquid", "deribit", "coinex", "coindcx", "paradex"):
        assert set(_caps(venue).values()) == {(None, None)}, venue  # not in what we fetch: unknown, not guessed


def test_binance_caps_only_for_the_adjusted_symbols_of_funding_info() -> None:
    row = {"contractType": "PERPETUAL", "status": "TRADING", "quoteAsset": "USDT", "marginAsset": "USDT"}
    listing = {
        EXCHANGE_INFO: {
            "symbols": [
                {**row, "symbol": "BLZUSDT", "baseAsset": "BLZ"},
                {**row, "symbol": "BTCUSDT", "baseAsset": "BTC"},
            ]
        },
        FUNDING_INFO: [
            {
                "symbol": "BLZUSDT",
                "adjustedFundingRateCap": "0.02500000",
                "adjustedFundingRateFloor": "-0.02500000",
                "fundingIntervalHours": 4,
                "disclaimer": False,
            }
        ],
    }
    parsed = {i.native_symbol: i for i in Binance.parse_instruments(load_json(msgspec.json.encode(listing)))}
    assert (parsed["BLZUSDT"].funding_cap, parsed["BLZUSDT"].funding_floor) == (D("0.025"), D("-0.025"))
    assert (parsed["BTCUSDT"].funding_cap, parsed["BTCUSDT"].funding_floor) == (None, None)


def test_okx_stream_caps_and_which_bound_applies() -> None:
    venue = Okx(load_venue_instruments("okx"))
    frame = (
        '{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"fundingRate":"0.004",'
        '"fundingTime":"1790524800000","nextFundingTime":"1790553600000","maxFundingRate":"0.004",'
        '"minFundingRate":"-0.004","instId":"BTC-USDT-SWAP","ts":"1790516467000"}]}'
    )
    (streamed,) = venue.parse(frame, 1_790_516_467_100_000_000).events
    assert isinstance(streamed, Funding)
    assert (streamed.rate_cap, streamed.rate_floor) == (D("0.004"), D("-0.004"))
    listed = msgspec.structs.replace(instrument(OK, None), funding_cap=D("0.00375"), funding_floor=D("-0.00375"))
    assert rate_limits(streamed, listed) == (D("0.004"), D("-0.004"))  # the stream's is the newer
    plain = funding(OK, "0.001", 8, None, 0)
    assert rate_limits(plain, listed) == (D("0.00375"), D("-0.00375"))
    assert rate_limits(plain, None) == (None, None)


@pytest.mark.parametrize(
    ("rate", "cap", "floor", "expected"),
    [
        ("0.00375", "0.00375", "-0.00375", True),
        ("0.0037", "0.00375", "-0.00375", False),
        ("-0.00375", "0.00375", "-0.00375", True),
        ("-0.004", None, "-0.00375", True),
        ("0.01", None, "-0.00375", False),
        ("0.01", None, None, None),
        (None, "0.00375", "-0.00375", None),
    ],
)
def test_at_cap(rate: str | None, cap: str | None, floor: str | None, expected: bool | None) -> None:
    as_dec = [None if v is None else D(v) for v in (rate, cap, floor)]
    assert at_cap(*as_dec) is expected


def _entries(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["instrument_id"]: e for row in body["results"] for e in row["exchanges_data"]}


def test_cap_floor_and_at_cap_on_the_table_and_the_coin_page() -> None:
    now = time.time_ns()
    model = funding_model(now)
    eth = model.symbols["ETH"]
    eth.funding[OK] = msgspec.structs.replace(eth.funding[OK], rate_cap=D("0.001"), rate_floor=D("-0.001"))
    listed = {
        BY: (D("0.00018"), D("-0.00018")),  # bybit's rate 0.00018 sits at its cap
        BN: (D("0.02"), D("-0.02")),
    }
    universe = Universe(
        instruments=[
            msgspec.structs.replace(instrument(i, v), funding_cap=listed.get(i, (None, None))[0],
                                    funding_floor=listed.get(i, (None, None))[1])
            for i, v in VOLUMES.items()
        ]
    )  # fmt: skip
    ctx = build_context(scenario_settings(), None, model=model, universe=universe)
    with serve(create_app(ctx)) as url:
        table = _entries(get(url + "/api/funding-table/?q=ETH"))
        got = {i: (e["cap"], e["floor"], e["at_cap"]) for i, e in table.items()}
        assert got == {
            BY: (D("0.00018"), D("-0.00018"), True),
            BN: (D("0.02"), D("-0.02"), False),
            HL: (None, None, None),  # Hyperliquid publishes no cap in what we read
            OK: (D("0.001"), D("-0.001"), True),  # from OKX's funding stream
        }
        stats = {
            s["instrument_id"]: (s["cap"], s["at_cap"]) for s in get(url + "/api/coin-detail/ETH/")["summary_stats"]
        }
        assert stats == {BY: (D("0.00018"), True), BN: (D("0.02"), False), HL: (None, None), OK: (D("0.001"), True)}
