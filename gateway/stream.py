"""gateway.stream
~~~~~~~~~~~~~~~~~
An open upstream answer as a sequence of parsed Responses events.

The stream owns what every dialect needs while an answer is in flight: the
keep-alive and idle clock (a ``None`` tick when the upstream is silent for
``keepalive`` seconds, a timeout after ``read_timeout``), terminal detection
(a stream that ends or breaks without ``response.completed`` becomes an
``error`` event, never a silent end), the outcome and the token counts in the
request record. It knows nothing of accounts: an in-stream limit is reported
through ``on_failure`` and the executor decides what it means.

Before the first event reaches the client the executor *primes* the stream:
it reads until the answer starts (or fails, or ``prime`` seconds pass), so an
early ``response.failed`` can still fail over to another account.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator

from . import failures
from .security import scrub
from .errors import GatewayError, TransportError
from .protocol import (COMPLETED, FAILURES, FINAL, LIFECYCLE, OUTPUT_ITEM_DONE,
                       OutputCollector)
from .record import Outcome, RequestRecord
from .relay import EOF, WAITING, Relayable
from .sse import Event




class UpstreamStream:
    """Parsed events of one upstream answer; ``close()`` must always be called."""

    def __init__(self, reader, record: RequestRecord, *, read_timeout: float, keepalive: float,
                 timed: bool, headers: dict[str, str],
                 on_failure: Callable[[failures.UpstreamFailure], None] | None = None,
                 hidden: frozenset[str] = frozenset(),
                 on_output: Callable[[list], None] | None = None):
        self.record = record
        self.read_timeout = read_timeout
        self.keepalive = keepalive
        self.headers = headers  # what the gateway adds to its own answer
        self.on_failure = on_failure
        self.hidden = hidden  # event types dropped before any renderer (an account's quota)
        self.on_output = on_output  # gets a completed answer's output items (gateway.prefix)
        self._output = OutputCollector() if on_output is not None else None
        self.outcome = Outcome.OPEN
        self.error_code: str | None = None
        self._pending: list[Event] = []  # read while priming, not yet handed on
        # timed: priming gives up after its deadline (a streaming client must not wait in
        # silence); untimed: a client that wants the final object waits for the start.
        self._timed = timed
        self._reader = reader  # an upstream Answer's (gateway.relay's reader contract)
        self._terminal = False
        self._eof = False
        self._priming = False
        self._closed = False
        self._defer: Callable | None = None  # relayed: the loop's writer of end-of-answer writes

    def client_headers(self) -> dict[str, str]:
        return self.headers

    # -- reading -----------------------------------------------------------
    @property
    def finished(self) -> bool:
        """Nothing more will come from the upstream."""
        return self._eof

    def _read(self, timeout: float | None) -> list[Event] | None:
        """The next read's events; None when nothing arrived in *timeout*."""
        try:
            events = self._reader.next(timeout if timeout is not None else self.read_timeout)
            if events is None or events is WAITING:
                return events
        except TransportError as exc:
            return self._end(failures.error_event(exc.code, exc.message), Outcome.UPSTREAM_ERROR)
        if events is EOF:
            if self._terminal:
                self._eof = True
                return []
            return self._end(
                failures.error_event("stream_truncated",
                                     "The upstream stream closed before response.completed."),
                Outcome.TRUNCATED)
        for event in events:
            self._observe(event)
        return self._visible(events)

    def _visible(self, events: list[Event]) -> list[Event]:
        """*events* without the ones this caller must not see (``hidden``)."""
        if not self.hidden or not events:
            return events
        return [event for event in events if event.type not in self.hidden]

    def _end(self, event: Event, outcome: Outcome) -> list[Event]:
        """The upstream is gone: a synthesised error event, unless the answer was complete."""
        self._eof = True
        if self._terminal:
            return []
        self._terminal = True
        self.outcome = outcome
        self.error_code = event.data.get("code") if event.data else None
        return [event]

    def _silent_too_long(self) -> list[Event]:
        return self._end(failures.error_event(
            "upstream_timeout", "The upstream stopped sending data (read timeout)."),
            Outcome.UPSTREAM_ERROR)

    def _observe(self, event: Event) -> None:
        kind = event.type
        if kind in FINAL:
            data = event.data or {}
            self.record.add_response(data.get("response"))
            self.outcome = Outcome.COMPLETED if kind == COMPLETED else Outcome.INCOMPLETE
            self._terminal = True
            if self._output is not None and kind == COMPLETED:
                self._output.observe(kind, data)
                self._after(functools.partial(self.on_output, self._output.output()))
        elif kind == OUTPUT_ITEM_DONE and self._output is not None:
            self._output.observe(kind, event.data)
        elif kind in FAILURES:
            scrub.failure_event(event)  # the client sees this event as it is now
            self._terminal = True
            self.outcome = Outcome.FAILED
            failure = failures.from_event(event.data)
            self.error_code = failure.code
            data = event.data or {}
            self.record.add_usage((data.get("response") or {}).get("usage"))
            if not self._priming and self.on_failure is not None and failure.status == 429:
                # a limit announced inside a 200 still cools the account (a store write:
                # off the relay loop when relayed)
                self._after(functools.partial(self.on_failure, failure))

    def _after(self, write: Callable[[], None]) -> None:
        """An end-of-answer write: off the relay loop when relayed, else now."""
        if self._defer is not None:
            self._defer(write)
        else:
            write()

    def prime(self, seconds: float) -> failures.UpstreamFailure | None:
        """Read until the answer starts; the failure if it failed before that.

        Read events are kept for :meth:`events`. A timed stream gives up waiting
        after *seconds* (a streaming client must not wait in silence for long).
        """
        self._priming = True
        deadline = time.monotonic() + seconds
        try:
            while not self._eof:
                timeout = None
                if self._timed:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        return None
                events = self._read(timeout)
                if events is None:
                    if self._timed:
                        return None
                    events = self._silent_too_long()
                self._pending.extend(events)  # the whole read: events after the start too
                for event in events:
                    kind = event.type
                    if kind in FAILURES:
                        return failures.from_event(event.data)
                    if kind not in LIFECYCLE:
                        return None
            return None
        finally:
            self._priming = False

    def announce(self, event: Event | None) -> None:
        """Put a gateway event before the rest of the answer (None: nothing)."""
        if event is not None:
            self._pending.insert(0, event)

    def batches(self) -> Iterator[list[Event] | None]:
        """Events in order, grouped as they were read; None is a keep-alive tick
        (nothing arrived for ``keepalive`` seconds). Ends after the upstream body ends.

        A renderer writes each group at once: what arrived together leaves in one
        ``send``, which under load (a gateway behind by a few packets) is most of
        the per-event cost saved, and never delays an event."""
        pending, self._pending = self._pending, []
        if pending:
            self.record.mark_first_byte()
            yield pending
        silent = 0.0
        wait = self.tick_seconds
        while not self._eof:
            events = self._read(wait)
            if events is WAITING:  # relayed: nothing yet, the loop calls again
                yield WAITING
                continue
            if events is None:
                silent += wait
                if silent >= self.read_timeout:
                    events = self._silent_too_long()
                else:
                    yield None
                    continue
            silent = 0.0
            if events:
                self.record.mark_first_byte()
                yield events

    @property
    def tick_seconds(self) -> float:
        """How long a silence lasts before a keep-alive tick (or counts toward the
        read timeout)."""
        return self.keepalive if self.keepalive > 0 else self.read_timeout

    def relay(self, defer: Callable | None = None) -> int | None:
        """Hand the rest of this answer's reading to a loop: the socket to wait on,
        after which :meth:`batches` yields ``WAITING`` instead of waiting; None (and
        nothing changes) when the answer cannot be relayed (it is over, or its
        reader cannot say which socket to wait on). *defer* runs the answer's
        end-of-answer writes (record sinks, a cooldown) off the loop's thread."""
        reader = self._reader
        fd = reader.relay_fd() if isinstance(reader, Relayable) else None
        if fd is not None and not self._eof:
            reader.relay()
            self._defer = defer
            return fd
        return None

    def tick(self) -> None:
        """Relayed: a keep-alive interval passed in silence (the loop's clock)."""
        self._reader.tick()

    def events(self) -> Iterator[Event | None]:
        """Every event in order, one at a time (None: a keep-alive tick)."""
        for batch in self.batches():
            if batch is None:
                yield None
            else:
                yield from batch

    def final(self) -> dict:
        """Read the whole answer and return the final Responses object (a client
        that did not ask to stream); a failure raises what the client is told."""
        collector = OutputCollector()
        wants = collector.WANTS
        try:
            for event in self.events():
                if event is None:
                    continue
                kind = event.type
                if kind in FAILURES:
                    err = failures.client_error(failures.from_event(event.data))
                    self.close(Outcome.FAILED, status=err.status, code=err.code)
                    raise err
                if kind in wants:
                    collector.observe(kind, event.data)
        finally:
            if collector.response is None and not self.record.finished:
                self.close(status=502, code="stream_truncated")
        final = collector.final()
        if final is None:
            raise GatewayError(502, "The upstream ended without a final response.",
                               code="stream_truncated")
        self.close()
        return final

    # -- the end -----------------------------------------------------------
    def close(self, outcome: Outcome | None = None, *, status: int = 200,
              code: str | None = None) -> None:
        """Release the upstream and finish the request record (once)."""
        if self._closed:
            return
        self._closed = True
        if outcome is not None:
            self.outcome = outcome
        elif self.outcome is Outcome.OPEN:
            self.outcome = Outcome.CLIENT_CLOSED
        self._reader.close()
        self.record.finish(status, self.outcome, code or self.error_code, defer=self._defer)

    def discard(self) -> None:
        """Drop this attempt's answer without finishing the record (failover)."""
        self._closed = True
        self._reader.close()
