"""Example reader of arbstream's tick topics for downstream consumers (no arbstream import needed).

Each record on ``ticks.<BASE>`` is a JSON ``TickBatch`` (``schemas/json/ticks.schema.json``):
``{"type": "batch", "ticks": [<quote or funding>, ...]}``, keyed by the symbol, the ticks of one
symbol in the order ingest received them. Records written before batching hold one bare tick
(``{"type": "quote", ...}``); this reader accepts both. Prices, sizes and rates are decimal
strings: parse them with ``decimal.Decimal``, never ``float``.

    python examples/read_ticks.py 127.0.0.1:9092 '^ticks\\.'
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer


def ticks_of(value: bytes) -> Iterator[dict[str, Any]]:
    """The ticks of one tick-topic record, in order; numbers stay exact (``Decimal``)."""
    message = json.loads(value, parse_float=Decimal)
    if message["type"] == "batch":
        yield from message["ticks"]
    else:
        yield message  # a single tick, written before batching


async def main(bootstrap: str, pattern: str) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest")
    await consumer.start()
    consumer.subscribe(pattern=pattern)
    try:
        async for record in consumer:
            for tick in ticks_of(record.value or b""):
                if tick["type"] == "quote":
                    print(tick["instrument_id"], "bid", tick["bid"], "ask", tick["ask"])
                else:
                    print(tick["instrument_id"], "funding rate", tick["rate"])
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else r"^ticks\."))
