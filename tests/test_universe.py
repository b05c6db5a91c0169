"""The tracked universe (`ARBSTREAM_SYMBOLS`) and the seed's symbol files."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from ingest.instruments import load_all
from ingest.settings import IngestSettings
from ingest.symbol_files import read_lines, resolve
from ingest.universe import UniverseSpec, select, select_universe
from ingest.venues.base import make_instrument
from plumbing.errors import ConfigError
from schemas.market import ContractKind, Instrument

SEED = Path(__file__).parent / "fixtures" / "seed"
LINEAR, INVERSE = ContractKind.LINEAR, ContractKind.INVERSE


def inst(venue: str, native: str, asset: str, quote: str = "USDT", volume: str | None = None) -> Instrument:
    kind = INVERSE if quote == "USD" else LINEAR
    made = make_instrument(venue, native, asset, quote, asset if kind is INVERSE else quote, kind)
    return made if volume is None else msgspec.structs.replace(made, volume_24h_quote=Decimal(volume))


MARKET = [
    inst("binance", "BTCUSDT", "BTC", volume="9000"),
    inst("okx", "BTC-USDT-SWAP", "BTC", volume="5000"),
    inst("okx", "BTC-USD-SWAP", "BTC", "USD"),
    inst("bitmex", "XBTUSD", "XBT", "USD", volume="100"),
    inst("binance", "1000PEPEUSDT", "1000PEPE", volume="7000"),
    inst("hyperliquid", "kPEPE", "kPEPE", "USDC"),
    inst("bybit", "1000PEPEUSDT", "1000PEPE", volume="8000"),
    inst("binance", "LONELYUSDT", "LONELY", volume="99999"),
    inst("gate", "TAIL_USDT", "TAIL"),
    inst("mexc", "TAIL_USDT", "TAIL"),
    inst("hyperliquid", "TAIL", "TAIL", "USDC"),
]


def bases(chosen: list[Instrument]) -> list[str]:
    return sorted({i.base for i in chosen})


def test_all_tracks_every_base_on_at_least_min_venues() -> None:
    assert bases(select_universe(MARKET, UniverseSpec.parse(["all"]))) == ["BTC", "PEPE", "TAIL"]
    assert bases(select_universe(MARKET, UniverseSpec.parse(["all"], min_venues=3))) == ["BTC", "PEPE", "TAIL"]
    assert bases(select_universe(MARKET, UniverseSpec.parse(["all"], min_venues=4))) == []
    assert bases(select_universe(MARKET, UniverseSpec.parse([], min_venues=1))) == [
        "BTC",
        "LONELY",
        "PEPE",
        "TAIL",
    ]
    btc = [i.instrument_id for i in select_universe(MARKET, UniverseSpec.parse(["all"])) if i.base == "BTC"]
    assert btc == ["BTC-USDT-PERP@binance", "BTC-USDT-PERP@okx", "BTC-USD-INV-PERP@okx", "BTC-USD-INV-PERP@bitmex"]


def test_top_n_ranks_by_summed_volume_then_venues() -> None:
    # PEPE 15000 > BTC 14100; TAIL publishes no volume so it ranks after both; LONELY is on one venue.
    assert bases(select_universe(MARKET, UniverseSpec.parse(["top:1"]))) == ["PEPE"]
    assert bases(select_universe(MARKET, UniverseSpec.parse(["top:2"]))) == ["BTC", "PEPE"]
    assert bases(select_universe(MARKET, UniverseSpec.parse(["TOP:3"]))) == ["BTC", "PEPE", "TAIL"]


def test_filters_apply_to_every_form() -> None:
    usdt = UniverseSpec.parse(["all"], quote_groups=["USDT"])
    assert bases(select_universe(MARKET, usdt)) == ["BTC", "PEPE", "TAIL"]
    assert {i.quote_group for i in select_universe(MARKET, usdt)} == {"USDT"}
    inverse = UniverseSpec.parse(["all"], quote_groups=["USD-inverse"])
    assert [i.instrument_id for i in select_universe(MARKET, inverse)] == [
        "BTC-USD-INV-PERP@okx",
        "BTC-USD-INV-PERP@bitmex",
    ]
    no_pepe = UniverseSpec.parse(["all"], exclude=["pepe"])
    assert bases(select_universe(MARKET, no_pepe)) == ["BTC", "TAIL"]
    assert bases(select_universe(MARKET, UniverseSpec.parse(["btc", "lonely"], exclude=["BTC"]))) == ["LONELY"]


def test_a_named_list_ignores_the_venue_minimum_and_warns_about_unlisted(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        chosen = select_universe(MARKET, UniverseSpec.parse(["LONELY", "NOPE"]))
    assert [i.instrument_id for i in chosen] == ["LONELY-USDT-PERP@binance"]
    assert "no enabled venue lists NOPE" in caplog.text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["top:0"], "top:N needs a positive whole N"),
        (["top:x"], "top:N needs a positive whole N"),
        (["BTC", "all"], "'all' cannot be combined"),
        (["top:5", "ETH"], "'top:5' cannot be combined"),
    ],
)
def test_bad_symbols_settings_fail_with_the_rule(value: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UniverseSpec.parse(value)


def test_ingest_settings_default_to_the_whole_market_and_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IngestSettings().universe_spec() == UniverseSpec(mode="all", min_venues=2)
    monkeypatch.setenv("ARBSTREAM_SYMBOLS", "top:25")
    monkeypatch.setenv("ARBSTREAM_EXCLUDE", "luna, ust")
    monkeypatch.setenv("ARBSTREAM_QUOTE_GROUPS", "USDT")
    spec = IngestSettings().universe_spec()
    assert (spec.mode, spec.top_n, spec.exclude, spec.quote_groups) == (
        "top",
        25,
        frozenset({"LUNA", "UST"}),
        frozenset({"USDT"}),
    )
    monkeypatch.setenv("ARBSTREAM_SYMBOLS", "top:none")
    with pytest.raises(ConfigError, match="top:N needs"):
        IngestSettings()


def test_nothing_to_track_is_an_error() -> None:
    with pytest.raises(ConfigError, match="nothing to track: no instrument of ARBSTREAM_SYMBOLS=all"):
        select(MARKET, UniverseSpec.parse(["all"], min_venues=9))


def test_txt_symbol_file_resolves_and_rejects_with_line_numbers() -> None:
    known = load_all(["binance", "bitmex"])
    chosen = resolve("# tracked\nBTC:BTCUSDT:binance\n\nBTC:XBTUSD:bitmex  # inverse\n", known)
    assert [i.instrument_id for i in chosen] == ["BTC-USDT-PERP@binance", "BTC-USD-INV-PERP@bitmex"]
    with pytest.raises(ConfigError, match=r"line 2: 'ETH:ETHUSDT:binanse': unknown venue 'binanse'"):
        resolve("BTC:BTCUSDT:binance\nETH:ETHUSDT:binanse\n", known)
    with pytest.raises(ConfigError, match=r"line 1: .*binance lists no perpetual 'BTCUSDX'"):
        resolve("BTC:BTCUSDX:binance", known)
    with pytest.raises(ConfigError, match=r"line 1: .*binance lists no perpetual 'DOGEUSDT'"):
        resolve("DOGE:DOGEUSDT:binance", known)
    with pytest.raises(ConfigError, match=r"line 1: .*is base BTC, not ETH"):
        resolve("ETH:BTCUSDT:binance", known)
    with pytest.raises(ConfigError, match=r"line 1: 'BTCUSDT' is not BASE:NATIVE_SYMBOL:venue"):
        resolve("BTCUSDT", known)


def test_seed_spellings_resolve_to_the_venue_perpetual_they_mean() -> None:
    known = [*MARKET, inst("coindcx", "B-BTC_USDT", "BTC"), inst("gate", "BTC_USDT", "BTC")]
    chosen = resolve(
        "exchange,symbol\nokx,BTC-USDT\nokx,BTC-USD\ncoindcx,BTCUSDT\nbinance,PEPEUSDT\ngateio,BTC_USDT\n", known
    )
    assert [i.instrument_id for i in chosen] == [
        "BTC-USDT-PERP@okx",
        "BTC-USD-INV-PERP@okx",
        "BTC-USDT-PERP@coindcx",
        "PEPE-USDT-PERP@binance",
        "BTC-USDT-PERP@gate",
    ]
    assert chosen[3].native_symbol == "1000PEPEUSDT" and chosen[3].price_multiplier == 1000


def test_unsupported_exchanges_are_skipped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    text = '[{"exchange": "htx", "symbol": "BTC-USDT"}, {"exchange": "binance", "symbol": "BTCUSDT"},\n'
    text += ' {"exchange": "kraken", "symbol": "PF_XBTUSD"}]'
    with caplog.at_level(logging.WARNING):
        chosen = resolve(text, MARKET)
    assert [i.instrument_id for i in chosen] == ["BTC-USDT-PERP@binance"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["symbols file: 2 lines for unsupported exchanges skipped: line 1 (htx), line 3 (kraken)"]


def test_the_seed_files_parse_in_all_three_formats() -> None:
    txt = read_lines((SEED / "futures_symbols.txt").read_text())
    csv = read_lines((SEED / "symbols.csv").read_text())
    jsn = read_lines((SEED / "symbols.json").read_text())
    assert len(txt) == 428 and (txt[0].base, txt[0].symbol, txt[0].venue) == ("BTC", "BTCUSDT", "binance")
    assert sum(1 for line in txt if line.venue == "gateio") == 51
    assert [(line.venue, line.symbol) for line in csv] == [(line.venue, line.symbol) for line in jsn]
    assert (csv[-1].number, csv[-1].venue, csv[-1].symbol) == (13, "okx", "SOL-USDT")
    with pytest.raises(ConfigError, match=r"entry 2: .* is not an object with exchange and symbol"):
        read_lines('[{"exchange": "okx", "symbol": "BTC-USDT"}, {"symbol": "X"}]')
    with pytest.raises(ConfigError, match="line 3: 'bybit' is not exchange,symbol"):
        read_lines("exchange,symbol\nokx,BTC-USDT\nbybit\n")


def test_the_seed_files_load_against_the_simulated_market_with_the_documented_skips(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from ingest.simulator.universe import generated_market
    from ingest.venues import VENUE_NAMES

    market = generated_market(VENUE_NAMES).instruments
    with caplog.at_level(logging.WARNING):
        chosen = resolve((SEED / "futures_symbols.txt").read_text(), market)
    assert (len(chosen), len({i.base for i in chosen})) == (404, 128)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # 11 BitMEX quanto swaps and 13 retired Phemex USD-settled contracts: named once, skipped.
    assert len(warnings) == 1 and warnings[0].startswith("symbols file: 24 lines for contracts arbstream does not")
    assert "line 396 (bitmex ETHUSD: BitMEX quanto swap" in warnings[0]
    by_id = {i.instrument_id: i for i in chosen}
    assert by_id["PEPE-USDT-PERP@kucoin"].native_symbol == "PEPEUSDTM"  # seed: PEPE:PEPEUSDTM:kucoin
    assert by_id["BONK-USDT-PERP@kucoin"].native_symbol == "BONKUSDTM"  # seed: 1000BONKUSDTM, resolved by meaning
    for name in ("symbols.csv", "symbols.json"):
        assert [i.instrument_id for i in resolve((SEED / name).read_text(), market)][:5] == [
            "BTC-USDT-PERP@binance",
            "ETH-USDT-PERP@binance",
            "ADA-USDT-PERP@binance",
            "SOL-USDT-PERP@binance",
            "BTC-USDT-PERP@bybit",
        ]
