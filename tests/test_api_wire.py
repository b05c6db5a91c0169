"""api/wire.py: Decimals leave the API as JSON numbers with their own digits (decision 0020)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

from pydantic import BaseModel

from api.wire import Num, Pct, to_json
from ingest.control import ControlFollower
from schemas.control import ControlRequest, encode_request

D = Decimal


class Row(BaseModel):
    price: Num
    pct: Pct | None
    sizes: list[Num]


def test_number_literals_keep_the_source_digits() -> None:
    row = Row(price=D("86412.30"), pct=D("0.12"), sizes=[D("0.1") + D("0.2"), D("100000")])
    assert to_json(row) == b'{"price":86412.30,"pct":0.12,"sizes":[0.3,100000]}'  # no 0.30000000000000004


def test_quotients_are_rounded_per_family_half_even() -> None:
    third = D(1) / D(3)  # 28 significant digits
    huge = D("123456789012345678901234567890.12345678901234567")
    row = Row(price=D(86412) + third, pct=third * 100, sizes=[D("2.5E-12"), D("3.5E-12"), huge])
    body = json.loads(to_json(row), parse_float=D)
    assert body["price"] == D("86412.333333333333")  # 12 decimals
    assert body["pct"] == D("33.333333")  # percentages: 6 decimals
    assert body["sizes"][:2] == [D("0.000000000002"), D("0.000000000004")]  # half-even at the 12th place
    # 42 digits after rounding: more than Decimal's default 28-digit context holds, never an error
    assert body["sizes"][2] == D("123456789012345678901234567890.123456789012")


def test_the_openapi_schema_says_number() -> None:
    props = Row.model_json_schema(mode="serialization")["properties"]
    assert props["price"]["type"] == "number" and props["sizes"]["items"]["type"] == "number"
    assert {"type": "number"}.items() <= props["pct"]["anyOf"][0].items()


def test_ingest_acts_on_reload_requests_and_counts_what_it_cannot_read() -> None:
    seen: list[ControlRequest] = []

    async def on_request(request: ControlRequest) -> None:
        seen.append(request)

    follower = ControlFollower("127.0.0.1:1", "ns", on_request)
    assert follower.topic == "ns.control"
    request = ControlRequest(op="reload-config", request_id="r1", sent_ts_ns=1)
    unknown_op = b'{"op": "drop-tables", "request_id": "x", "sent_ts_ns": 1}'
    for raw in (encode_request(request), b"not json", unknown_op, None):
        asyncio.run(follower._handle(raw))
    assert seen == [request] and (follower.handled, follower.rejected) == (1, 3)
