"""gateway.executor
~~~~~~~~~~~~~~~~~~~~
The request's story, shared by every dialect and transport.

``open(call)`` resolves continuity, ranks the accounts for that key, sends to
the first usable one and fails over — on an HTTP failure, a transport failure
or a failure event that arrives before the answer starts — until one serves.
It returns an open :class:`~gateway.stream.UpstreamStream`; dialects render it.
Every outcome is written into the call's :class:`~gateway.record.RequestRecord`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from . import config as config_mod
from . import continuity, failures, models
from .security import scrub
from .errors import GatewayError, TransportError
from .failures import UpstreamFailure
from .accounts import placement
from .client_headers import ClientHeaders
from .headers import header_list
from .policy import quota
from .prefix.store import open_store
from .prefix.watch import PrefixWatch
from .record import Outcome, RequestRecord, log_sink
from .stream import UpstreamStream
from .upstream import profiles_for
from .upstream.catalog import BackendCatalog
from .upstream.wire import Wire

TRANSPORT_COOLDOWN = 5.0  # seconds an unreachable account is skipped
# How long a streaming client may wait for the answer to start while the executor
# can still fail over on an early failure event (keep-alives take over after it).
FIRST_EVENT_WAIT = 1.0


@dataclass
class Call:
    """A normalised Responses request plus who sent it and how."""

    body: dict
    headers: Mapping
    principal: str | None
    endpoint: str = "responses"            # the dialect
    param_aliases: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)  # already dropped by the dialect
    session: str | None = None             # a dialect's own session signal (continuity)
    record: RequestRecord | None = None
    stream: bool = False                   # the client reads events as they come
    keepalive: float = 0.0                 # > 0: it wants keep-alive ticks while silent
    policy: object = None                  # the key's policy, once the gate has read it
    on_output: Callable | None = None      # keeps the answer's items (gateway.prefix)

    def __post_init__(self) -> None:
        self.headers = ClientHeaders.of(self.headers)  # read once, looked up many times


class _Failover(Exception):
    """This account cannot serve the call now; try the next one."""

    def __init__(self, failure: UpstreamFailure):
        super().__init__(failure.message)
        self.failure = failure


class Executor:
    def __init__(self, config, pool, sinks=(log_sink,), gate=None):
        self.config = config
        self.pool = pool
        self.gate = gate  # per-key policy (gateway.policy.gate.Gate); None: none
        self.profiles = profiles_for(config)
        self.catalogs = BackendCatalog(config, pool, self.profiles,
                                       self.profiles["codex"].identity, config_mod.catalog(config))
        self.sinks = tuple(sinks)
        self.wire = Wire(config.upstream, config.state_dir,
                         max(config.upstream.pool_maxsize, config.server.threads))
        self.unreadable = placement.Unreadable()  # conversations that moved by a step
        self.prefix = PrefixWatch(config.prefix, open_store(config, getattr(pool, "state", None)))

    @property
    def catalog(self):
        """The model catalog in use: the backend's when fetched, else the built-in table."""
        return self.catalogs.current()

    def record_for(self, dialect: str, principal: str | None, transport_name: str = "http",
                   model: str | None = None) -> RequestRecord:
        """A new request record that reports to this executor's sinks."""
        return RequestRecord(dialect=dialect, transport=transport_name, key_id=principal,
                             model_asked=model, sinks=self.sinks)

    def open(self, call: Call) -> UpstreamStream:
        """Send the call upstream; raise GatewayError if no account can serve it."""
        rec = call.record = call.record or self.record_for(call.endpoint, call.principal)
        rec.model_asked = rec.model_asked or call.body.get("model")
        try:
            cont, selection = self._candidates(call)
        except GatewayError as err:
            raise self._fail(rec, err) from None
        first = selection.accounts[0].id if selection.accounts else None
        key = cont.key or (first and continuity.bind_account(
            cont, first, call.principal, self.config.continuity).key)
        call.on_output = self.prefix.before(call.body, key, rec, first)
        last: UpstreamFailure | None = None
        new = placement.is_new_conversation(call.body)
        for account in selection:
            rec.placement = selection.reason
            if (placement.moved(selection.reason) and not new) or (cont.key, account.id) in \
                    self.unreadable:
                # Reasoning encrypted by the account it comes from cannot be read here.
                call.body = placement.without_foreign_reasoning(call.body) or call.body
            try:
                return self._attempt(call, account, cont)
            except _Failover as fo:
                last = fo.failure
                if last.status == 429 and last.retry_at:
                    selection.cooling.append((last.retry_at, last.code))
            except GatewayError as err:
                rec.account = account.id
                raise self._fail(rec, err) from None
        raise self._fail(rec, self._exhausted(len(selection.accounts), last, selection.cooling))

    def _candidates(self, call: Call, count: bool = True) -> tuple:
        """The call's continuity and the pool's selection of accounts for it; a
        GatewayError (not yet in the record) when there are none, or when the
        key's policy refuses the call (*count*: it counts against the key's limits)."""
        accounts = self.pool.accounts()  # once per request: a store check each time
        model = self._resolve_model(call, accounts)
        if self.gate is not None:
            call.policy = self.gate.admit(call.principal, model, call.body, call.record, count)
        cont = continuity.resolve(call.body, call.headers, call.principal,
                                  self.config.continuity, session=call.session)
        call.record.continuity_source = cont.source
        call.record.continuity_hash = cont.short_hash
        serves = None
        listing = self.catalogs.accounts_listing(model)
        if listing is not None:  # routed to the accounts whose backend lists the model
            fetched = self.catalogs.fetched_accounts()
            serves = lambda a: a.id in listing or a.id not in fetched or model in a.models  # noqa: E731
        return cont, self.pool.select(cont.key or "", model, self.catalog.kinds_for(model),
                                      serves, new=placement.is_new_conversation(call.body),
                                      accounts=accounts)

    def prewarm(self, call: Call) -> UpstreamStream | None:
        """Forward a prewarm (Codex's ``generate: false``) on the conversation's
        upstream socket; None: answer it locally.

        On the backend's WebSocket a prewarm generates nothing and costs nothing,
        but the backend then holds its input (and warms its prompt cache), so the
        next turn is ``previous_response_id`` plus the new items on that socket.
        Over HTTP there is no prewarm (it would be a real, billed request), so
        whenever this account is reached over HTTP (``codex_transport = "http"``,
        a fallback mark, an OpenAI API account), and whenever forwarding fails
        before an answer (a refused upgrade, a broken socket, an error frame),
        the answer is None. A prewarm never fails over, refreshes or cools an
        account: it must never fail, and the real turn that follows does those.
        """
        rec = call.record = call.record or self.record_for(call.endpoint, call.principal)
        rec.model_asked = rec.model_asked or call.body.get("model")
        try:
            cont, selection = self._candidates(call, count=False)
        except GatewayError:
            return None
        account = next(iter(selection.ready()), None)
        if account is None:
            return None
        cfg = self.config
        profile = self.profiles[account.kind]
        cont = continuity.bind_account(cont, account.id, call.principal, cfg.continuity)
        rec.continuity_hash = cont.short_hash
        body, dropped = profile.prepare(call.body, cont)
        try:
            creds = self.pool.credentials(account)
        except GatewayError:
            return None
        headers = profile.headers(creds, call.headers, cont)
        rec.attempts += 1
        try:
            answer = self.wire.send(account, profile, (call.principal, cont.key), body, headers,
                                    (cfg.upstream.connect_timeout, cfg.upstream.read_timeout),
                                    prewarm=True)
        except TransportError:
            return None
        if answer is None or not answer.ok:
            return None
        rec.account, rec.model_sent, rec.upstream_transport = account.id, body.get("model"), \
            answer.transport
        return UpstreamStream(
            answer.reader, rec, read_timeout=cfg.upstream.read_timeout, keepalive=call.keepalive,
            timed=True,
            headers=self._client_headers(call, cont, dropped, profile, answer.headers, creds),
            hidden=self._hidden(call))

    def _resolve_model(self, call: Call, accounts=None) -> str:
        """Catalog, aliases and effort suffixes: the model the upstream is sent.

        Before continuity, so every spelling of one model (``gpt-5.5-high``,
        ``claude-opus-…``) keeps the conversation on one key."""
        res = models.resolve(call.body.get("model"), self.catalog,
                             explicit_effort=models.request_effort(call.body),
                             served=self.pool.served_models(accounts))
        models.apply(call.body, res)
        call.record.model_sent = res.model
        return res.model

    @staticmethod
    def _exhausted(candidates: int, last: UpstreamFailure | None,
                   cooling: list[tuple[float, str | None]]) -> GatewayError:
        """What the client is told when no account served.

        One account: its own answer (the upstream's code, message and reset), or
        why it is cooling. Several, all limited: the generic cooling error with
        the earliest reset. Otherwise the last failure.
        """
        if candidates == 1:
            if last is not None:
                return failures.client_error(last)
            return failures.cooling(*cooling[0])
        if last is None or (last.status == 429 and cooling):
            return failures.all_cooling([until for until, _ in cooling])
        return failures.client_error(last)

    def _fail(self, rec: RequestRecord, err: GatewayError) -> GatewayError:
        outcome = Outcome.REJECTED if rec.attempts == 0 else Outcome.UPSTREAM_ERROR
        rec.finish(err.status, outcome, err.code)
        return err

    def _attempt(self, call: Call, account, base_cont) -> UpstreamStream:
        cfg = self.config
        rec = call.record
        profile = self.profiles[account.kind]
        cont = continuity.bind_account(base_cont, account.id, call.principal, cfg.continuity)
        rec.continuity_hash = cont.short_hash
        timeout = (cfg.upstream.connect_timeout, cfg.upstream.read_timeout)
        # retried_same: a connection that broke before the answer started, or a server
        # error (HTTP 500/502/503, an early response.failed server_error), says this
        # attempt was unlucky, not that the account is bad: it is tried once more on the
        # same account (a new connection) before the account cools and the request fails
        # over, so the conversation keeps its account and its prompt cache
        # (failures.UpstreamFailure.retried_on_same_account says which).
        refreshed = retried_param = retried_same = retried_reasoning = False
        while True:
            body, dropped = profile.prepare(call.body, cont)
            creds = self.pool.credentials(account)
            headers = profile.headers(creds, call.headers, cont)
            sent_at = time.time()
            rec.attempts += 1
            try:
                answer = self.wire.send(account, profile, (call.principal, cont.key), body,
                                        headers, timeout)
            except TransportError as exc:
                failure = failures.transport_failure(exc)
                if failure.retried_on_same_account and not retried_same:
                    retried_same = True
                    continue  # a connection that broke: once more, same account, new connection
                self.pool.record_failure(account, failure.status, failure.code,
                                         time.time() + TRANSPORT_COOLDOWN)
                raise _Failover(failure) from None
            if answer.ok:
                stream = UpstreamStream(
                    answer.reader, rec, read_timeout=cfg.upstream.read_timeout,
                    keepalive=call.keepalive, timed=call.stream,
                    headers=self._client_headers(call, cont, dropped, profile, answer.headers,
                                                 creds),
                    on_failure=lambda f: self._cool(account, f), hidden=self._hidden(call),
                    on_output=call.on_output and (lambda out: call.on_output(out, account.id)))
                failure = stream.prime(min(call.keepalive or FIRST_EVENT_WAIT, FIRST_EVENT_WAIT))
                if failure is not None and not retried_reasoning and self._unreadable(
                        call, account, base_cont, failure):
                    stream.discard()
                    retried_reasoning = True
                    continue
                if failure is not None and failure.fails_over:
                    stream.discard()
                    if self.wire.falls_back(answer, account, failure):
                        continue  # the socket broke before the answer started: HTTP serves it
                    if failure.retried_on_same_account and not retried_same:
                        retried_same = True
                        continue  # failed before the answer started: once more, same account
                    raise self._classify(account, failure)
                limits = profile.rate_limits(answer.headers)
                self.pool.record_success(account, limits, sent_at)
                self.catalogs.note_models_etag(answer.headers.get("X-Models-Etag"))
                if rec.transport == "websocket" and not self._hidden(call):
                    stream.announce(quota.rate_limits_event(limits))
                rec.account, rec.model_sent = account.id, body.get("model")
                rec.upstream_transport = answer.transport
                return stream
            failure = failures.from_http(answer.status, answer.body, answer.headers)
            if not retried_reasoning and self._unreadable(call, account, base_cont, failure):
                retried_reasoning = True
                continue
            if failure.status == 401 and not refreshed:
                refreshed = True
                if self.pool.refresh(account, creds.token):
                    continue
            if (failure.unsupported_param and not retried_param
                    and failure.unsupported_param in call.body
                    and failure.unsupported_param != "model"):
                retried_param = True
                profile.learn_unsupported(failure.unsupported_param)
                continue
            if failure.retried_on_same_account and not retried_same:
                retried_same = True
                continue  # a server error: once more on the same account before it cools
            raise self._classify(account, failure)

    def _unreadable(self, call: Call, account, cont, failure: UpstreamFailure) -> bool:
        """The upstream refused reasoning another account encrypted (a conversation
        that moved): *call* loses its encrypted reasoning, to be sent again, and
        this conversation's later turns on *account* leave it out at once; False
        when the failure is another or there is no such reasoning to leave out."""
        if failure.code != "invalid_encrypted_content":
            return False
        stripped = placement.without_foreign_reasoning(call.body)
        if stripped is None:
            return False
        call.body = stripped
        self.unreadable.add(cont.key, account.id)
        return True

    def _classify(self, account, failure: UpstreamFailure) -> Exception:
        """Fail over to the next account, or answer the client now."""
        if failure.fails_over:
            self._cool(account, failure)
            return _Failover(failure)
        return failures.client_error(failure)

    def _cool(self, account, failure: UpstreamFailure) -> None:
        self.pool.record_failure(account, failure.status, failure.code or failure.type,
                                 failure.cool_until)

    def _client_headers(self, call: Call, cont, dropped, profile, answer_headers,
                        creds=None) -> dict:
        """Headers the gateway adds to its own answer."""
        headers = {"x-gateway-continuity": cont.source,
                   "x-gateway-model": call.body.get("model", "")}
        names = list(dict.fromkeys(call.dropped + [call.param_aliases.get(p, p)
                                                   for p in dropped]))
        if names:
            headers["x-gateway-dropped-params"] = header_list(names)
        if call.record is not None and call.record.repaired:
            headers["x-gateway-repaired"] = str(call.record.repaired)
        upstream = profile.relayed(answer_headers, creds)
        if self._shows_quota(call):
            upstream.update(profile.quota_headers(answer_headers))
        headers.update({name: scrub.without_known(value) for name, value in upstream.items()})
        return headers

    @staticmethod
    def _shows_quota(call: Call) -> bool:
        return getattr(call.policy, "show_quota", False)

    def _hidden(self, call: Call) -> frozenset:
        """Upstream events the caller must not see: the account's quota, unless
        its key may (``--show-quota``)."""
        return frozenset() if self._shows_quota(call) else quota.HIDDEN_EVENTS
