"""NATS JetStream queue: a work-queue stream, one durable pull consumer shared by workers.

The stream (file storage, work-queue retention: a message is removed once a
worker acknowledges it) and the durable consumer are created on first use.
nats-py is asyncio; this class runs one event loop in a background thread so
that it serves threaded code (``publish``, ``consume``) and asyncio code
(``apublish``) alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from ..errors import ConfigError
from .base import Batch, Handler, QueueError, decode_batch, encode_batch, message_id

log = logging.getLogger("provmark.queue")
T = TypeVar("T")


class NatsQueue:
    """A :class:`~provmark.queue.base.Queue` on NATS JetStream.

    ``ack_wait`` is how long a delivered batch may stay unacknowledged before it
    is delivered again (a worker that died); a live worker extends it while its
    handler runs. ``replicas`` applies when this call creates the streams (use 3
    on a JetStream cluster so an acknowledged batch survives the loss of a node).
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "PROVMARK",
        subject: str = "provmark.records",
        durable: str = "provmark-worker",
        ack_wait: float = 30.0,
        fetch: int = 8,
        max_ack_pending: int = 1000,
        replicas: int = 1,
        timeout: float = 10.0,
    ) -> None:
        if ack_wait <= 0 or fetch < 1 or timeout <= 0:
            raise ConfigError("ack_wait and timeout must be positive and fetch at least 1")
        self.url = url
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.ack_wait = ack_wait
        self.fetch = fetch
        self.max_ack_pending = max_ack_pending
        self.replicas = replicas
        self.timeout = timeout
        self.dead_subject = f"{subject}.dead"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="provmark-nats", daemon=True
        )
        self._thread.start()
        self._sub: JetStreamContext.PullSubscription | None = None
        try:
            self._nc, self._js, self._max_bytes = self._call(self._connect(), timeout + 5)
        except BaseException:
            self._stop_loop()
            raise

    def __repr__(self) -> str:
        return f"NatsQueue({self.url!r}, stream={self.stream!r})"

    # ------------------------------------------------------------ plumbing
    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout if timeout is not None else self.timeout + 5)
        except nats.errors.Error as exc:
            raise QueueError(f"{self.url}: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            future.cancel()
            raise QueueError(f"{self.url}: no answer from NATS within {timeout}s") from None

    async def _connect(self) -> tuple[Client, JetStreamContext, int]:
        async def on_error(exc: Exception) -> None:
            log.warning("nats %s: %s", self.url, exc)

        try:  # nats-py retries a first connect forever when reconnects are unlimited
            nc = await asyncio.wait_for(
                nats.connect(
                    self.url,
                    connect_timeout=self.timeout,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=on_error,
                ),
                self.timeout,
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise QueueError(f"cannot connect to NATS at {self.url}: {exc!r}") from None
        js = nc.jetstream(timeout=self.timeout)
        try:
            await self._ensure_stream(js, self.stream, self.subject, RetentionPolicy.WORK_QUEUE)
            # Dead letters are kept (limits retention) until someone looks at them.
            dead = f"{self.stream}_DEAD"
            await self._ensure_stream(js, dead, self.dead_subject, RetentionPolicy.LIMITS)
        except BaseException:
            await nc.close()
            raise
        # Headroom for headers and the JSON brackets under the server's limit.
        return nc, js, max(1024, nc.max_payload - 4096)

    async def _ensure_stream(
        self, js: JetStreamContext, name: str, subject: str, retention: RetentionPolicy
    ) -> None:
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=name,
                subjects=[subject],
                retention=retention,
                storage=StorageType.FILE,
                duplicate_window=120.0,
                num_replicas=self.replicas,
            )
            try:
                await js.add_stream(config)
            except nats.js.errors.BadRequestError:  # another process created it first
                info = await js.stream_info(name)
            else:
                return
        except nats.errors.Error as exc:
            raise QueueError(
                f"{self.url}: JetStream is unavailable ({exc!r}); run nats-server -js"
            ) from None
        if subject not in (info.config.subjects or []):
            raise ConfigError(
                f"JetStream stream {name} exists with subjects {info.config.subjects}, "
                f"not {subject!r}; choose another stream name"
            )

    # ------------------------------------------------------------ publish
    def publish(self, batch: Batch) -> None:
        self._call(self._publish(encode_batch(batch, self._max_bytes), self.subject))

    async def apublish(self, batch: Batch) -> None:
        chunks = encode_batch(batch, self._max_bytes)
        future = asyncio.run_coroutine_threadsafe(self._publish(chunks, self.subject), self._loop)
        await asyncio.wrap_future(future)

    async def _publish(self, chunks: Sequence[bytes], subject: str) -> None:
        async def one(chunk: bytes) -> None:
            try:
                await self._js.publish(
                    subject, chunk, timeout=self.timeout, headers={"Nats-Msg-Id": message_id(chunk)}
                )
            except nats.errors.Error as exc:
                raise QueueError(
                    f"{self.url}: batch not persisted by JetStream ({type(exc).__name__}: {exc})"
                ) from None

        await asyncio.gather(*(one(c) for c in chunks))

    # ------------------------------------------------------------ consume
    def consume(self, handler: Handler, *, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        delay = 0.1
        while not stop.is_set():
            try:
                msgs = self._call(self._fetch())
                ok = self._handle(handler, msgs) if msgs else True
            except QueueError as exc:  # NATS unreachable: keep trying, nothing was acked
                log.warning("nats: %s", exc)
                ok = False
            if ok:
                delay = 0.1
            else:
                stop.wait(delay)
                delay = min(delay * 2, 5.0)

    async def _fetch(self) -> list[Msg]:
        if self._sub is None:
            config = ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=-1,
                max_ack_pending=self.max_ack_pending,
                filter_subject=self.subject,
            )
            self._sub = await self._js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream, config=config
            )
        try:
            return await self._sub.fetch(self.fetch, timeout=1.0)
        except nats.errors.TimeoutError:
            return []
        except nats.errors.Error as exc:
            log.warning("nats fetch from %s failed: %r", self.url, exc)
            await asyncio.sleep(0.5)
            return []

    def _handle(self, handler: Handler, msgs: list[Msg]) -> bool:
        """Run the handler on the records of ``msgs``; ack them all, or none (redelivery)."""
        records: Batch = []
        good: list[Msg] = []
        for msg in msgs:
            try:
                records.extend(decode_batch(msg.data))
                good.append(msg)
            except QueueError as exc:
                log.error("nats: undecodable message %s dead-lettered: %s", _seq(msg), exc)
                self._call(self._dead_letter_raw(msg))
        if not good:
            return True
        keepalive = asyncio.run_coroutine_threadsafe(self._keep_alive(good), self._loop)
        try:
            rejected = handler(records)
            if rejected:
                chunks = encode_batch(list(rejected), self._max_bytes)
                self._call(self._publish(chunks, self.dead_subject))
        except Exception as exc:
            log.error("provmark worker: %d records not stored, will retry: %s", len(records), exc)
            keepalive.cancel()
            self._call(self._settle(good, ok=False))
            return False
        keepalive.cancel()
        self._call(self._settle(good, ok=True))
        return True

    async def _keep_alive(self, msgs: list[Msg]) -> None:
        """Tell JetStream the batch is being worked on, so it is not redelivered meanwhile."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            for msg in msgs:
                with contextlib.suppress(nats.errors.Error):
                    await msg.in_progress()

    async def _settle(self, msgs: list[Msg], *, ok: bool) -> None:
        for msg in msgs:
            try:
                if ok:
                    await msg.ack_sync(timeout=self.timeout)  # confirmed: not redelivered
                else:
                    await msg.nak(delay=1.0)
            except nats.errors.Error as exc:
                # Not acked: it is delivered again after ack_wait; storing is idempotent.
                log.warning("nats: could not settle message %s: %r", _seq(msg), exc)

    async def _dead_letter_raw(self, msg: Msg) -> None:
        await self._js.publish(self.dead_subject, msg.data, timeout=self.timeout)
        await msg.ack_sync(timeout=self.timeout)

    # ------------------------------------------------------------ lag
    def pending(self) -> int:
        async def count() -> int:
            try:
                info = await self._js.stream_info(self.stream)
            except nats.errors.Error as exc:
                raise QueueError(f"{self.url}: cannot read stream {self.stream}: {exc!r}") from None
            return int(info.state.messages)

        return self._call(count())

    def dead_letters(self) -> int:
        """Messages in the dead-letter stream (records rejected for good)."""

        async def count() -> int:
            return int((await self._js.stream_info(f"{self.stream}_DEAD")).state.messages)

        return self._call(count())

    def close(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self._call(self._nc.close(), self.timeout)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


def _seq(msg: Msg) -> str:
    try:
        return str(msg.metadata.sequence.stream)
    except Exception:
        return "?"
