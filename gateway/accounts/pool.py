"""gateway.accounts.pool
~~~~~~~~~~~~~~~~~~~~~~~~~
The executor's only view of accounts: which ones may serve a request
(:meth:`AccountPool.select`, a :class:`Selection`), their credentials
(``credentials``, ``refresh``), and what happened when they were used
(``record_success``, ``record_failure``). ``rows()`` is what `accounts list`,
/status and /metrics show; ``accounts()``, ``records()`` and
``served_models()`` what exists.

Accounts come from the state store (:mod:`gateway.state`: the state dir's
files, or Redis; re-read at most once a second) and the config shortcuts;
health (cooldowns, needs-login) is shared by every worker (and, with Redis,
every instance) through the health store; a refresh is single-flight across
processes under the store's lock.

With Redis unreachable the pool serves what this process last read, and a
token is only refreshed under the lock: a request whose token has expired
waits ``state.outage_wait_seconds`` for Redis, then gets a 503 that says why.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..security import scrub
from .. import state as state_mod
from ..background import weak_loop
from ..errors import GatewayError
from ..state import StateUnavailable
from ..state import tokens
from ..state.records import openai_record
from . import oauth, placement

log = logging.getLogger("gateway.accounts")

WATCH_INTERVAL = 1.0   # Redis mode: a worker re-reads the shared state this often, even idle
PROBE_INTERVAL = 900.0  # a long (quota) cooldown is re-tried by one request this often (s)
REFRESH_RETRY = 30.0   # after an issuer hiccup, proactive refresh waits this long (s)
BOOKKEEPING_INTERVAL = 5.0  # last_used / rate-limit headers are written at most this often (s)
COOLDOWN_429 = 30.0    # a 429 that names no reset time
COOLDOWN_403 = 600.0   # may be a WAF or region block, not the account: long, not permanent
COOLDOWN_REFRESH = 60.0  # a 401 while the issuer could not be reached
TRANSIENT_BASE, TRANSIENT_CAP = 5.0, 60.0  # 5xx/408/timeouts: 5, 10, 20, 40, 60, 60 … s
STATE_RETRY_AFTER = 5  # Retry-After of the 503 while the state store is unreachable

NEEDS_LOGIN_MESSAGE = (
    "Every configured upstream account needs a new login or is disabled. Run "
    "`codex-gateway accounts list` to see why, then `codex-gateway login` on the gateway host."
)
NO_ACCOUNT_MESSAGE = (
    "No upstream account is configured. Run `codex-gateway accounts import ~/.codex/auth.json`, "
    "`codex-gateway login` or `codex-gateway accounts add-key` on the gateway host."
)
STATE_UNAVAILABLE_MESSAGE = (
    "The gateway's state store (Redis) is unreachable, so {what}. Retry shortly; if it "
    "persists, check that Redis is running and reachable from every gateway host "
    "(`codex-gateway accounts list` on a gateway host shows whether it answers)."
)


@dataclass(frozen=True)
class Account:
    id: str
    kind: str  # "codex" (ChatGPT login) or "openai" (API key)
    label: str = ""
    weight: float = 1.0
    base_url: str | None = None
    models: tuple[str, ...] = ()  # empty: every model
    plan: str | None = None


@dataclass(frozen=True)
class Credentials:
    token: str = field(repr=False)
    account_id: str | None = None  # the chatgpt-account-id header (codex only)

    def __post_init__(self) -> None:
        scrub.remember(self.token, self.account_id)  # never shown to a client, whatever echoes it


class Selection:
    """The accounts that may serve one request, best first, each with the reason
    placement gives it, and the cooldowns met while going through them (what the
    client is told if none serves)."""

    def __init__(self, pool: AccountPool, choices: tuple[placement.Choice, ...],
                 snap: dict | None = None):
        self.choices = choices
        self.accounts = tuple(c.account for c in choices)  # cooling ones included
        self.cooling: list[tuple[float, str | None]] = []  # (until, reason)
        self.reason: str | None = None  # why the account last yielded was chosen
        self._pool = pool
        self._snap = snap  # the health read the order was placed on (for the first account)

    def __iter__(self):
        """The accounts to try, in order. One at 100 % of a quota window is skipped
        without a request until its reset; a cooling one is skipped too; each
        keeps its ``(until, reason)`` in :attr:`cooling`, unless this request wins
        the right to probe it (:meth:`AccountPool.cooldown_or_claim_probe`):
        checked only when the request gets that far."""
        for choice in self.choices:
            # The first account is checked on the health read it was placed on, a moment
            # ago; an account reached after a failure on a fresh one.
            snap, self._snap = self._snap, None
            if choice.until and choice.until > time.time():
                self.cooling.append((choice.until, "usage_limit_reached"))
                continue
            wait = self._pool.cooldown_or_claim_probe(choice.account, snap)
            if wait:
                self.cooling.append(wait)
                continue
            self.reason = choice.reason
            yield choice.account

    def ready(self) -> list[Account]:
        """The accounts usable now, without claiming anything (/healthz, prewarm)."""
        return [c.account for c in self.choices
                if not (c.until and c.until > time.time()) and self._pool.usable(c.account)]


def backoff(status: int, failures: int) -> float:
    """Seconds to cool an account after a failure with no announced reset."""
    if status == 429:
        return COOLDOWN_429
    if status == 403:
        return COOLDOWN_403
    return min(TRANSIENT_BASE * 2 ** max(failures, 0), TRANSIENT_CAP)


class AccountPool:
    def __init__(self, config, health=None, store=None, backend=None, watch=None):
        self._cfg = config
        if watch is None:  # a serving pool opens its own backend; the CLI passes one
            watch = backend is None and store is None and health is None
        if backend is None and (store is None or health is None):
            backend = state_mod.open_state(config)
        self.state = backend or state_mod.Backend("custom", store, health)
        self.store = store or self.state.store
        self.health = health or self.state.health
        self._state_missing = False  # the store never answered this process
        key = config.accounts.openai_api_key
        self._key_rec = dict(openai_record(key), label="openai_api_key") if key else None
        self._knobs = placement.Knobs.of(config.placement)
        self._accounts: tuple[object, list[Account]] | None = None  # (store version, accounts)
        self._standings: tuple | None = None  # (health snapshot, second, standings)
        self._locks: dict[str, threading.Lock] = {}
        self._mutex = threading.Lock()
        self._issuer_failed: dict[str, float] = {}  # id -> monotonic time of a transient failure
        self._booked: dict[str, float] = {}  # id -> monotonic time of the last bookkeeping write
        # Observers (metrics): on_failure(account_id, status, reason) for every upstream
        # failure the pool is told about; on_refresh(account_id, result) with result
        # "refreshed", "failed" (issuer unreachable) or "refused" (needs a new login).
        self.on_failure: list = []
        self.on_refresh: list = []
        self.closed = False  # close(): the state watch ends at its next tick
        if self.state.name == "redis":
            # Read the shared state at start, so a worker knows the accounts even if
            # Redis goes away before its first request (an outage serves from memory).
            self.records()
            self.health.snapshot()
            if watch:
                _watch(self)

    def close(self) -> None:
        """Stop the state watch (an app that is dropped: ``gateway.app.close``)."""
        self.closed = True

    # -- what exists ---------------------------------------------------------
    def records(self) -> list[dict]:
        """Every account record (files or Redis, auth_file, openai_api_key), disabled
        too. A store that never answered this process gives none (see ranked)."""
        try:
            recs = self.store.records()
            self._state_missing = False
        except StateUnavailable:
            recs, self._state_missing = [], True
        if self._key_rec and all(r["id"] != self._key_rec["id"] for r in recs):
            recs.append(self._key_rec)
        return recs

    def rows(self) -> list[dict]:
        """What `accounts list`, /status and /metrics show of each account:
        identity and health, never a token or key."""
        snap = self.health.snapshot()
        now = time.time()
        placed = self.placement_view()
        rows = []
        for rec in self.records():
            h = snap.get(rec["id"]) or {}
            until = h.get("cooldown_until") if (h.get("cooldown_until") or 0) > now else None
            state = ("needs_login" if h.get("needs_login") else "disabled" if rec.get("disabled")
                     else "cooling" if until else "ok")
            refreshed = [t for t in (rec.get("last_refresh"), h.get("last_refresh")) if t]
            rows.append({"id": rec["id"], "kind": rec["kind"], "label": rec.get("label") or "",
                         "plan": rec.get("plan"), "email": rec.get("email"), "state": state,
                         "reason": h.get("login_reason") if h.get("needs_login") else
                         (h.get("reason") if until else None),
                         "cooldown_until": until, "last_refresh": max(refreshed, default=None),
                         "last_used": h.get("last_used"),
                         "rate_limits": h.get("rate_limits") or {},
                         "weight": rec.get("weight", 1.0), "models": rec.get("models") or [],
                         "base_url": rec.get("base_url"), "placement": placed.get(rec["id"])})
        return rows

    def accounts(self) -> list[Account]:
        """The enabled accounts as the store has them now. Checked on every call
        (Redis: one GET of the change counter; files: a stat of the directory),
        never cached for a while: every worker of every instance places on the
        same account set from the first request after a change (docs/placement.md)."""
        version = getattr(self.store, "version", None)
        version = version() if version else None
        cached = self._accounts
        if version is not None and cached and cached[0] == version:
            return cached[1]
        recs = [r for r in self.records() if not r.get("disabled")]
        self._lift_needs_login(recs)
        out = [_account(r) for r in recs]
        self._accounts = (version, out)
        return out

    def _lift_needs_login(self, recs: list[dict]) -> None:
        """An account marked needs-login whose credentials have since changed
        (``codex login`` rewrote the auth_file, say) is usable again."""
        snap = self.health.snapshot()
        for rec in recs:
            row = snap.get(rec["id"]) or {}
            if row.get("needs_login") and row.get("login_credential") not in (
                    None, "", fingerprint(rec)):
                log.info("account %s: new credentials, needs-login lifted", rec["id"])
                self.health.clear(rec["id"], login=True)

    def served_models(self, accounts: list[Account] | None = None) -> tuple[str, ...]:
        """Every model some account's ``--models`` list names (*accounts*: what
        :meth:`accounts` gave this request already)."""
        accounts = self.accounts() if accounts is None else accounts
        return tuple(dict.fromkeys(m for a in accounts for m in a.models))

    def select(self, key: str, model: str | None = None,
               kinds: frozenset[str] | None = None,
               serves: Callable[[Account], bool] | None = None, new: bool = False,
               accounts: list[Account] | None = None) -> Selection:
        """The accounts that may serve *model* (None: any) for continuity key
        *key*, best first; *kinds* keeps only accounts of those kinds (the
        catalog's upstreams for the model), *serves* only those it accepts (the
        backend's own model lists). A GatewayError when none may: 404 when
        accounts exist but none of them passes, else :meth:`unavailable_error`
        (or a 503 while the state store has never answered). *new*: the request
        opens a conversation (the placement reason says ``headroom``, not ``sticky``);
        *accounts*: what :meth:`accounts` gave this request already (one store check
        per request)."""
        if accounts is None:
            accounts = self.accounts()  # first: it may lift a needs-login mark
        snap = self.health.snapshot()
        ranked = self.placed(key, model, new, accounts, snap)
        accounts = [c for c in ranked if (kinds is None or c.account.kind in kinds)
                    and (serves is None or serves(c.account))]
        if ranked and not accounts:
            need = f" (it needs an account of kind {' or '.join(sorted(kinds))})" if kinds else ""
            raise GatewayError(
                404, f"The model '{model}' is not served by any configured account{need}.",
                code="model_not_found", param="model")
        if not accounts:
            raise self.unavailable_error()
        return Selection(self, tuple(accounts), snap)

    def unavailable_error(self) -> GatewayError:
        """Why no account can serve: all need a login (or are disabled), or none exists."""
        if self.records():
            return GatewayError(503, NEEDS_LOGIN_MESSAGE, code="accounts_need_login")
        return GatewayError(503, NO_ACCOUNT_MESSAGE, code="no_upstream_account")

    def ranked(self, key: str, model: str | None) -> list[Account]:
        """Accounts for *key*, best first (cooling ones stay: a Selection skips them)."""
        return [c.account for c in self.placed(key, model)]

    def placed(self, key: str, model: str | None, new: bool = False,
               accounts: list[Account] | None = None,
               snap: dict | None = None) -> list[placement.Choice]:
        """The placement order for *key* over the accounts that can serve *model*
        and need no login, each with its reason (:mod:`.placement`); *new*: the
        request opens a conversation. *accounts* and *snap*: this request's reads of
        :meth:`accounts` and of the health store, when it has them."""
        if accounts is None:
            accounts = self.accounts()  # first: it may lift a needs-login mark
        if not accounts and self._state_missing:
            raise self._state_error("it does not know any upstream account yet")
        snap = self.health.snapshot() if snap is None else snap
        usable = [a for a in accounts if (not a.models or model is None or model in a.models)
                  and not (snap.get(a.id) or {}).get("needs_login")]
        return placement.place(key, usable, self.standings(snap), self._knobs, new=new)

    def standings(self, snap: dict | None = None) -> dict[str, placement.Standing]:
        """Every account's quota standing, from the shared health store."""
        snap = self.health.snapshot() if snap is None else snap
        now = time.time()
        memo = self._standings  # the health snapshot is one object until it changes
        if memo and memo[0] is snap and memo[1] == int(now):
            return memo[2]
        out = {aid: placement.assess(row.get("rate_limits"), now, self._knobs)
               for aid, row in snap.items()}
        self._standings = (snap, int(now), out)
        return out

    def placement_view(self) -> dict[str, dict]:
        """Per account: its standing (open, draining, exhausted, unknown), headroom
        factor and share of new conversations now (``accounts list``, /status)."""
        snap = self.health.snapshot()
        standings = self.standings(snap)
        usable = [a for a in self.accounts() if not (snap.get(a.id) or {}).get("needs_login")]
        shares = placement.shares(usable, standings, self._knobs)
        out = {}
        for account in usable:
            st = standings.get(account.id) or placement.Standing()
            out[account.id] = {
                "standing": "unknown" if st.used is None else st.state,
                "headroom": round(st.factor(self._knobs), 2),
                "share": round(shares.get(account.id, 0.0), 4)}
        return out

    # -- credentials ---------------------------------------------------------
    def credentials(self, account: Account) -> Credentials:
        """Current credentials; a codex token close to ``exp`` is refreshed first."""
        rec = self._record(account.id)
        if rec is None:
            return Credentials("")
        if rec["kind"] == "openai":
            return Credentials(rec.get("api_key", ""))
        token = rec.get("access_token") or ""
        if (tokens.expires_within(token, self._cfg.accounts.refresh_margin_seconds)
                and not self._issuer_failed_recently(account.id)):
            # A token that still works is used as it is while the store is unreachable
            # (a proactive refresh can wait); an expired one waits for the lock.
            expired = tokens.expires_within(token, 0)
            if (expired or self.state.reachable()) and self._refresh_or_503(account.id, token,
                                                                             strict=expired):
                rec = self._record(account.id) or rec
        return Credentials(rec.get("access_token") or "", rec.get("account_id"))

    def stored_credentials(self, account: Account) -> Credentials | None:
        """The stored credentials as they are, or None when a codex token is
        missing or about to expire: for background reads (the quota poller),
        which must never be the reason a refresh token rotates."""
        rec = self._record(account.id)
        if rec is None:
            return None
        if rec["kind"] == "openai":
            return Credentials(rec.get("api_key", ""))
        token = rec.get("access_token") or ""
        if not token or tokens.expires_within(token, self._cfg.accounts.refresh_margin_seconds):
            return None
        return Credentials(token, rec.get("account_id"))

    def refresh(self, account: Account, stale_token: str) -> bool:
        """After a 401: True when credentials other than *stale_token* are now
        stored (refreshed here or by another worker), False when impossible.
        Raises a 503 GatewayError when the state store cannot give the lock."""
        return self._refresh_or_503(account.id, stale_token, strict=True)

    def _refresh_or_503(self, account_id: str, stale: str, strict: bool) -> bool:
        try:
            return self._refresh(account_id, stale)
        except StateUnavailable:
            if strict:
                raise self._state_error("it cannot take the lock it needs to refresh this "
                                        "account's expired token (refreshing without it "
                                        "could lose the login to refresh_token_reused)") from None
            return False

    def _state_error(self, what: str) -> GatewayError:
        return GatewayError(503, STATE_UNAVAILABLE_MESSAGE.format(what=what),
                            code="state_store_unavailable", retry_after=STATE_RETRY_AFTER)

    def state_status(self) -> dict:
        """The state store for /healthz: backend and whether it answers."""
        return self.state.status()

    def _refresh(self, account_id: str, stale: str) -> bool:
        """Single-flight refresh; raises StateUnavailable when the lock cannot be had."""
        with self._mutex:
            tlock = self._locks.setdefault(account_id, threading.Lock())
        try:
            with tlock, self.store.lock(account_id):
                done = self._refresh_locked(account_id, stale)
        except (TimeoutError, OSError) as exc:  # a stuck lock, a file we cannot write
            log.error("account %s: refresh failed: %s", account_id, exc)
            _notify(self.on_refresh, account_id, "failed")
            return False
        if done == "refreshed":
            self.health.record_refresh(account_id)
            log.info("account %s: token refreshed", account_id)
        if done in ("refreshed", "failed", "refused"):
            _notify(self.on_refresh, account_id, done)
        return done in ("refreshed", "changed")

    def _refresh_locked(self, account_id: str, stale: str) -> str | None:
        """Under the account's lock: "refreshed", "changed" (another process
        did it), "refused" (needs a new login), "failed" (the issuer could not
        be reached), or None (nothing to refresh)."""
        rec = self.store.load(account_id)
        if rec is None or rec.get("kind") != "codex":
            return None
        if rec.get("access_token") != stale:
            return "changed"  # another worker (or a new login) got there first
        row = self.health.snapshot().get(account_id) or {}
        if row.get("needs_login") or not rec.get("refresh_token"):
            return None
        try:
            toks = oauth.refresh(self._cfg, rec["refresh_token"])
        except oauth.OAuthError as exc:
            if exc.permanent:
                log.warning("account %s: refresh refused (%s); it needs a new login "
                            "(`codex-gateway login`)", account_id, exc.code)
                self.health.mark_needs_login(account_id, exc.code or "refresh_refused",
                                             fingerprint(rec))
                return "refused"
            log.warning("account %s: %s", account_id, exc)
            self._issuer_failed[account_id] = time.monotonic()
            return "failed"
        try:
            self.store.save(_refreshed(rec, toks))
        except StateUnavailable as exc:  # kept in this process's memory by the store
            log.error("account %s: refreshed, but the new tokens could not be stored (%s); "
                      "this worker uses them, others will need them stored", account_id, exc)
        self._issuer_failed.pop(account_id, None)
        return "refreshed"

    # -- health --------------------------------------------------------------
    def cooldown_or_claim_probe(self, account: Account,
                                snap: dict | None = None) -> tuple[float, str | None] | None:
        """``(until, reason)`` while the account cools down, None when it may be
        used now. Writes: one request (across workers) per PROBE_INTERVAL claims
        the right to try an account in a long cooldown, so a quota that resets
        early is noticed; that request gets None. *snap*: a health snapshot just
        read (else it is read now)."""
        row = self.health.state(account.id) if snap is None else snap.get(account.id)
        until = row and row.get("cooldown_until")
        now = time.time()
        if not until or until <= now:
            return None
        if (until - now > PROBE_INTERVAL and now - (row.get("probe_at") or now) >= PROBE_INTERVAL
                and self.health.claim_probe(account.id, now - PROBE_INTERVAL)):
            log.info("account %s: probing for an early quota reset", account.id)
            return None
        return until, row.get("reason")

    def usable(self, account: Account) -> bool:
        """Neither cooling down nor waiting for a new login (for /healthz)."""
        row = self.health.state(account.id) or {}
        return not row.get("needs_login") and not ((row.get("cooldown_until") or 0) > time.time())

    def record_success(self, account: Account, limits: dict | None = None,
                       sent_at: float | None = None) -> None:
        """The account served; *limits* are the quota windows its answer reported."""
        row = self.health.state(account.id)
        if row and (row.get("cooldown_until") or row.get("failures")):
            self.health.clear(account.id, before=sent_at)  # also a quota that reset early
        # last_used and the rate-limit headers are only shown by `accounts list`: a
        # commit per request would cost more than the rest of the pool path and make
        # every other worker re-read its health snapshot.
        # A reading that changes the account's placement standing is written at once.
        now = time.monotonic()
        if limits:
            # When and from where: the quota poller asks the usage endpoint only
            # for accounts whose headers are stale (gateway.usage.quota).
            limits = self._with_memo(account.id, dict(limits, observed_at=time.time(),
                                                      source="headers"), row)
            stored = (row or {}).get("rate_limits") or {}
            if (now - self._booked.get(account.id, -BOOKKEEPING_INTERVAL) < BOOKKEEPING_INTERVAL
                    and stored.get("placement") == limits["placement"]):
                return
            self._booked[account.id] = now
            self.health.record_rate_limits(account.id, limits)
        elif now - self._booked.get(account.id, -BOOKKEEPING_INTERVAL) >= BOOKKEEPING_INTERVAL:
            self._booked[account.id] = now
            self.health.record_used(account.id)

    def record_limits(self, account_id: str, limits: dict) -> None:
        """Quota windows read from the usage endpoint (not a request's answer)."""
        limits = self._with_memo(account_id, limits, self.health.state(account_id))
        self.health.record_rate_limits(account_id, limits, used=False)

    def _with_memo(self, account_id: str, limits: dict, row: dict | None) -> dict:
        """*limits* with the placement standing they give, read against the stored
        one (so a step or the mark is only left past the hysteresis margin)."""
        stored = ((row or {}).get("rate_limits") or {}).get("placement")
        reading = dict(limits, placement=stored) if stored else limits
        memo = placement.assess(reading, time.time(), self._knobs).memo()
        return dict(limits, placement=memo)

    def record_failure(self, account: Account, status: int, code: str | None,
                       retry_at: float | None) -> None:
        now = time.time()
        reason = code or f"http_{status}"
        _notify(self.on_failure, account.id, status, reason)
        if status == 401:  # the executor already tried one refresh
            if self._issuer_failed_recently(account.id):
                self.health.set_cooldown(account.id, now + COOLDOWN_REFRESH, "refresh_failed")
            else:
                self.health.mark_needs_login(account.id, reason,
                                             fingerprint(self._record(account.id) or {}))
            return
        row = self.health.state(account.id) or {}
        until = now + backoff(status, row.get("failures") or 0)
        if retry_at and (status == 429 or retry_at > until):
            until = retry_at
        self.health.set_cooldown(account.id, until, reason)
        log.info("account %s: cooling for %d s (%s)", account.id, until - now, reason)

    # -- helpers -------------------------------------------------------------
    def _issuer_failed_recently(self, account_id: str) -> bool:
        failed = self._issuer_failed.get(account_id)
        return failed is not None and time.monotonic() - failed < REFRESH_RETRY

    def _record(self, account_id: str) -> dict | None:
        if self._key_rec and account_id == self._key_rec["id"]:
            return self.store.load(account_id) or self._key_rec
        return self.store.load(account_id)


def _watch(pool: AccountPool) -> None:
    """Keep a serving worker's copy of the shared state at most WATCH_INTERVAL old,
    even while it serves no request: an outage is served from that copy, so a
    worker idle since an account was imported must still know it. One GET of
    each change counter per interval; the thread ends with its pool."""
    def tick(current: AccountPool) -> bool:
        if current.closed:
            return False
        current.records()
        current.health.snapshot()
        return True

    weak_loop(pool, WATCH_INTERVAL, tick, "state-watch").start()


def _notify(hooks, *args) -> None:
    """Tell the observers; an observer's failure never reaches a request."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:  # noqa: BLE001
            log.exception("account pool observer failed")


def fingerprint(rec: dict) -> str:
    """A short hash of an account's long-lived secret (never the secret itself)."""
    secret = rec.get("refresh_token") or rec.get("api_key") or rec.get("access_token") or ""
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""


def _account(rec: dict) -> Account:
    try:
        weight = float(rec.get("weight") or 1.0)
    except (TypeError, ValueError):
        weight = 1.0
    return Account(id=rec["id"], kind=rec["kind"], label=rec.get("label") or "",
                   weight=weight if weight > 0 else 1.0, base_url=rec.get("base_url"),
                   models=tuple(rec.get("models") or ()), plan=rec.get("plan"))


def _refreshed(rec: dict, toks: dict) -> dict:
    """*rec* with the issuer's new tokens (the refresh token is kept if none came)."""
    new = dict(rec)
    new["access_token"] = toks["access_token"]
    new["refresh_token"] = toks.get("refresh_token") or rec.get("refresh_token")
    if toks.get("id_token"):
        new["id_token"] = toks["id_token"]
        who = tokens.identity(toks["id_token"])
        new.update({k: v for k, v in who.items() if v})
    new["expires_at"] = tokens.expiry(new["access_token"])
    new["last_refresh"] = time.time()
    return new
