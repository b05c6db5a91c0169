"""The API follows ingest's instruments/listings topics: universe and listing sources, no restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from api.main import build_context, create_app
from ingest.catalog import Catalog
from ingest.listings import VenueListing, statuses
from schemas.market import Instrument, ListingSource
from tests.test_api_support import get_json, scenario_settings, serve
from tests.test_listings import bundled, parsed

pytestmark = pytest.mark.integration


async def poll(url: str, check: Callable[[Any], bool], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    body: Any = None
    while time.monotonic() < deadline:
        status, body = await asyncio.to_thread(get_json, url)
        if status in (200, 503) and isinstance(body, dict) and check(body):  # /health: 503 without streams
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: last answer {body}")


def _venues(body: Any) -> dict[str, Any]:
    return {v["venue"]: v for v in body["venues"]}


async def test_api_universe_and_listing_sources_follow_the_topics(kafka_bootstrap: str, namespace: str) -> None:
    binance = [i for i in parsed("binance", bundled("binance")) if i.base in {"BTC", "ETH"}]
    okx = [i for i in parsed("okx", bundled("okx")) if i.base == "BTC"]
    listed_at = time.time_ns() - 90 * 10**9
    listings = {
        "binance": VenueListing("binance", tuple(binance), ListingSource.LIVE, listed_at),
        "okx": VenueListing("okx", tuple(okx), ListingSource.BUNDLED, listed_at, "live: timed out; cache: no file"),
    }
    catalog = Catalog(kafka_bootstrap, namespace, ["binance", "okx"])
    await catalog.start()
    try:
        await catalog.publish_universe([*binance, *okx])
        await catalog.publish_statuses(statuses(listings, [*binance, *okx]))

        ctx = build_context(scenario_settings(namespace=namespace), kafka_bootstrap)
        with serve(create_app(ctx)) as url:
            health = await poll(url + "/health", lambda b: b.get("complete") is True, "API loaded")
            by_venue = _venues(health)
            assert by_venue["binance"]["listing"]["source"] == "live"
            assert by_venue["binance"]["listing"]["tracked"] == len(binance)
            assert 89 < by_venue["binance"]["listing"]["age_s"] < 200
            okx_listing = by_venue["okx"]["listing"]
            assert (okx_listing["source"], okx_listing["error"]) == ("bundled", "live: timed out; cache: no file")
            venues = _venues((await asyncio.to_thread(get_json, url + "/api/venues"))[1])
            assert set(venues["binance"]["instruments"]) == {i.instrument_id for i in binance}

            # ETH is delisted on Binance and OKX's listing comes back live: no restart needed.
            eth = next(i for i in binance if i.base == "ETH")
            remaining = [i for i in binance if i is not eth]
            bigger = msgspec.structs.replace(okx[0], volume_24h_quote=None)
            await catalog.publish_universe([*remaining, bigger])
            listings["okx"] = VenueListing("okx", tuple(okx), ListingSource.LIVE, time.time_ns())
            await catalog.publish_statuses(statuses(listings, [*remaining, bigger]))
            body = await poll(
                url + "/api/venues",
                lambda b: (
                    eth.instrument_id not in _venues(b)["binance"]["instruments"]
                    and _venues(b)["okx"]["listing"]["source"] == "live"
                ),
                "ETH delisted and OKX live",
            )
            assert set(_venues(body)["binance"]["instruments"]) == {i.instrument_id for i in remaining}
            assert ctx.universe.published == {i.instrument_id: i for i in [*remaining, bigger]}
    finally:
        await catalog.stop()


def test_universe_decodes_what_ingest_encodes() -> None:
    from api.universe import Universe
    from schemas.market import encode

    instrument: Instrument = parsed("okx", bundled("okx"))[0]
    universe = Universe()
    universe.apply_instrument(instrument.instrument_id.encode(), encode(instrument))
    assert universe.instruments == (instrument,) and universe.by_venue("okx") == [instrument]
    universe.apply_instrument(instrument.instrument_id.encode(), b"{not json")
    assert (universe.undecodable, universe.instruments) == (1, (instrument,))
    universe.apply_instrument(instrument.instrument_id.encode(), None)
    assert not universe.instruments and not universe.symbols and not universe.by_venue("okx")
