"""Faust hands the tick topics' records to the ``detect`` agent one fetch at a time (decision 0035).

Faust delivers every record as its own event: ``Consumer._drain_messages`` runs
``wait_first(callback(message), ...)`` per record (two tasks and an ``asyncio.wait``), then the
conductor, the channel's queue and the stream's iterator pass it on. Measured here on 480
one-partition topics (a no-op agent, 200k records): ~6–9k records/s and ~8k records per CPU-second
whichever way the agent takes them, against ~80k records/s (~90k per CPU-second) when the same
consumer, in the same Faust worker, hands each fetch over as one list. On the whole market a record
holds ~1.4 ticks (per-symbol batches of a 5 ms window), so the per-event path alone capped a worker
near 9k ticks/s.

:func:`deliver_in_batches` replaces the consumer's ``getmany`` (what ``_drain_messages``
iterates) for one app with one that takes Faust's fetched records (``_wait_next_records``) a
partition at a time: records of the batched topics are checked and tracked exactly as
``_drain_messages`` does (read offset, gaps, ``track_message``) and put on a Faust channel as one
list per fetch; records of every other topic go on through Faust's own per-event path. The agent
acknowledges each record after its batch is processed (:meth:`BatchRouter.ack`), so Faust's
commits (after its producer flush) keep the at-least-once guarantee.
``tests/test_processors_faust.py`` runs the patch on the installed Faust's consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias, cast

import faust
from aiokafka import ConsumerRecord
from faust.transport.consumer import Consumer
from faust.types import TP, Message

log = logging.getLogger(__name__)

_ROUTER = "_arbstream_batch_router"
Admit: TypeAlias = Callable[[TP, Sequence[ConsumerRecord]], Sequence[ConsumerRecord]]
"""A partition's fetched records -> those to deliver (:meth:`processors.faust_host.EngineHost.admit`)."""
HAND_OVER_RECHECK_S = 0.1
"""How often a hand-over waiting for the agent looks whether Faust started recovering a table."""
_ORIGINAL = "_arbstream_original_drain_messages"


class BatchRouter:
    """The tick topics (``names``, a list :class:`processors.discovery.TopicDiscovery` extends in
    place) whose records go to ``channel`` a fetch at a time."""

    def __init__(
        self, app: faust.App, channel: faust.ChannelT[Any], names: list[str], admit: Admit | None = None
    ) -> None:
        self.app = app
        self.channel = channel
        self.names = names
        self.admit = admit
        """Which of a partition's fetched records become messages (None: all), before any is tracked."""
        self._known: frozenset[str] = frozenset(names)

    def batched(self, topic: str) -> bool:
        if len(self._known) != len(self.names):  # discovery appends new names; it never removes any
            self._known = frozenset(self.names)
        return topic in self._known

    def current(self, messages: Sequence[Message]) -> list[Message]:
        """The messages of the group's current generation, the others acknowledged at once.

        What Faust's stream does with an event fetched before a rebalance: skipped, acknowledged
        (its partition's new owner reads it from the committed offset)."""
        generation = self.app.consumer_generation_id
        active = self.app.flow_control.is_active()
        stale = [m for m in messages if not active or m.generation_id != generation]
        if not stale:
            return list(messages)
        self.ack(stale)
        return [m for m in messages if active and m.generation_id == generation]

    def ack(self, messages: Sequence[Message]) -> None:
        """Each record processed: Faust commits offsets up to the first record not acknowledged."""
        consumer = self.app.consumer
        message_out = self.app.sensors.on_message_out
        for message in messages:
            consumer.ack(message)
            message_out(message.tp, message.offset, message)

    async def hand_over(self, batch: list[Message], suspended: Any) -> bool:
        """Put ``batch`` on the channel, waiting while the agent is behind, but not once Faust has
        suspended the flow (a rebalance) or is recovering a table: its recovery reads the changelog
        through this same drain loop, so a drain blocked on a full buffer would hang it for good
        (faust-streaming #74; seen once in CI: the survivor of a SIGKILLed worker never finished
        recovering). A batch given up then was fetched before the rebalance (the tick partitions
        are paused while a table recovers), and Faust reads its partitions again from the committed
        offsets when the recovery ends ("Seek stream partitions to committed offsets"), so nothing
        is lost. ``suspended``: the consumer's ``suspend_flow`` event. Returns whether the batch was
        handed over."""
        while not (suspended.is_set() or self.app.in_recovery):
            # Typed for events, but a channel's stream yields any other value as it is.
            put = asyncio.ensure_future(self.channel.put(cast(Any, batch)))
            stop = asyncio.ensure_future(suspended.wait())
            await asyncio.wait((put, stop), timeout=HAND_OVER_RECHECK_S, return_when=asyncio.FIRST_COMPLETED)
            for waiting in (put, stop):
                if not waiting.done():
                    waiting.cancel()
            await asyncio.wait((put, stop))  # settled; our own cancellation still propagates
            if not put.cancelled():
                put.result()
                return True
        return False

    def wrap(self, consumer: Consumer) -> Any:
        """The drain loop's ``getmany``: Faust's, with the tick topics' records taken a partition at a
        time into one batch. Faust's own ``getmany`` asks the partition's high-water mark and
        round-robins the partitions again for every record (10 % of the worker's main thread at
        10,000 ticks/s, pyinstrument); here each happens once per partition of the fetch."""
        read_offsets = consumer._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = consumer._to_message
        monitor = self.app.monitor
        admit = self.admit

        async def batching_getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
            # As Faust's Consumer.getmany (faust-streaming 0.15.3) up to the records.
            records, active = await consumer._wait_next_records(timeout)
            generation = self.app.consumer_generation_id
            if records is None or consumer.should_stop:
                return
            if not consumer.flow_active:
                await _seek_back(consumer)
                return

            def rebalanced() -> bool:
                """The partitions' owners read on from the committed offsets: stop here, as Faust."""
                return not consumer.flow_active or self.app.consumer_generation_id != generation

            batch: list[Message] = []
            for tp, fetched in records.items():
                if rebalanced():
                    break
                if active is not None and tp not in active and tp not in consumer._buffered_partitions:
                    continue
                monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                if not self.batched(tp.topic):
                    for record in fetched:  # Faust's per-event path
                        if rebalanced():
                            break
                        yield tp, to_message(tp, record)
                    continue
                # Left out by admit: never tracked, so the next record delivered records a gap.
                admitted = fetched if admit is None else admit(tp, fetched)
                # As Consumer._drain_messages does per record: drop re-deliveries, record gaps.
                read = read_offsets[tp]
                for record in admitted:
                    offset = record.offset
                    if read is not None and offset < read:
                        continue
                    skipped = gap(read, offset)
                    if skipped is not None and acks_enabled_for(tp.topic):
                        await consumer._add_gap(tp, *skipped)
                    message = to_message(tp, record)
                    consumer.track_message(message)
                    read = read_offsets[tp] = offset
                    batch.append(message)
            if batch:
                await self.hand_over(batch, consumer.suspend_flow)
                if consumer._commit_every is not None and consumer._n_acked >= consumer._commit_every:
                    consumer._n_acked = 0
                    await consumer.commit()

        return batching_getmany


def gap(read: int | None, offset: int) -> tuple[int, int] | None:
    """The offsets [start, end) never delivered between the last read offset and ``offset``
    (a backlog jump, or a compacted topic), which Faust's commits must pass as if acknowledged.

    Faust's ``_drain_messages`` tests ``read`` for truth: after a partition's offset 0 it records
    no gap, and as its commits pass at most one missing offset, the committed offset then stops at
    1 for good when the next delivered is 3 or later — seen in the bench as tail partitions that
    jumped right after their first record and a drain that waited forever for their commits."""
    if read is None or offset - read <= 1:
        return None
    return read + 1, offset


async def _seek_back(consumer: Consumer) -> None:
    """What Faust's ``getmany`` does when called while the flow is stopped."""
    try:
        await consumer.perform_seek()
    except Exception as exc:  # noqa: BLE001 - as Faust: logged, the next call tries again
        log.warning("exception performing seek when flow not active %s", exc)


def deliver_in_batches(
    app: faust.App, channel: faust.ChannelT[Any], names: list[str], admit: Admit | None = None
) -> BatchRouter:
    """Route ``app``'s records of the topics in ``names`` to ``channel`` one fetch at a time (a list
    of :class:`faust.types.Message`), each partition's fetched records first filtered by ``admit``
    when given. Other apps in the process are unaffected."""
    _patch_drain_messages()
    router = BatchRouter(app, channel, names, admit)
    setattr(app, _ROUTER, router)
    return router


def _patch_drain_messages() -> None:
    """Idempotent: the consumer's drain loop iterates the router's ``getmany`` for apps that have one."""
    original = getattr(Consumer, _ORIGINAL, None) or Consumer._drain_messages

    async def drain_messages(self: Consumer, fetcher: Any) -> None:
        router: BatchRouter | None = getattr(self.app, _ROUTER, None)
        if router is not None:
            # An instance attribute: _drain_messages reads ``self.getmany`` once, when it starts.
            self.getmany = router.wrap(self)  # type: ignore[method-assign]
        await original(self, fetcher)

    setattr(Consumer, _ORIGINAL, original)
    Consumer._drain_messages = drain_messages  # type: ignore[method-assign]
