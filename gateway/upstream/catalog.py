"""gateway.upstream.catalog
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The backend's own model catalog, so the gateway follows the backend instead of
a table that ages.

Each account's catalog is fetched from its upstream (the Codex backend's
``GET …/models?client_version=V`` with that account's credentials and the
gateway's current client identity; the API's ``GET /v1/models`` for API-key
accounts) at start, every ``upstream.catalog_refresh_seconds``, and again when
an answer's ``X-Models-Etag`` names a catalog the gateway has not fetched. The
result lives in the shared state (a file in the state dir, or one Redis key), so
every worker and instance places on the same list.

The effective :class:`~gateway.models.Catalog` is the backend's models merged
with the gateway's aliases, globs and effort suffixes (those stay). The built-in
table is only the fallback for account kinds whose catalog could not be fetched;
``source`` says which one is in use (``/healthz``, the log, ``accounts list``).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from pathlib import Path

from ..models import Catalog, Model, parse_version

log = logging.getLogger("gateway.catalog")

RELOAD_SECONDS = 5.0     # how often a worker looks at the shared copy
RETRY_SECONDS = 60.0     # a fetch that failed is tried again after this
FETCH_TIMEOUT = (5.0, 15.0)
STORE_KEY = "catalog"


# -- the shared copy ---------------------------------------------------------------

class CatalogStore:
    """The fetched catalogs, ``{"fetched_at", "accounts": {id: {kind, etag, models}}}``,
    in ``<state_dir>/catalog.json`` or, with Redis, under ``<prefix>catalog``."""

    def __init__(self, path: Path, link=None, prefix: str = ""):
        self.path = path
        self.link = link
        self.key = prefix + STORE_KEY

    def load(self) -> dict:
        try:
            if self.link is not None:
                raw = self.link.run(lambda r: r.get(self.key))
            else:
                raw = self.path.read_bytes()
        except Exception:  # noqa: BLE001 - no shared copy: the table serves
            return {}
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict) -> None:
        text = json.dumps(data, sort_keys=True)
        if self.link is not None:
            self.link.run(lambda r: r.set(self.key, text))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def store_for(config, state) -> CatalogStore:
    """The shared copy of *config*'s deployment (*state*: the pool's state backend)."""
    return CatalogStore(config.state_dir / "catalog.json", getattr(state, "link", None),
                        config.state.key_prefix)


def describe(data: dict) -> str:
    """One line for people: which catalog is in use and since when."""
    accounts = data.get("accounts") or {}
    if accounts:
        count = len({str(m.get("slug") or m.get("id")) for a in accounts.values()
                     for m in a.get("models") or ()})
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("fetched_at") or 0))
        return (f"Model catalog: the backend's ({count} models from {len(accounts)} accounts, "
                f"fetched {when}).")
    reason = data.get("error") or "not fetched yet"
    return f"Model catalog: the built-in table ({reason})."


# -- merging (pure) ----------------------------------------------------------------

def model_of(entry: dict, kind: str) -> Model | None:
    """A catalog entry of the backend (Codex ``ModelInfo`` or an API model) as a Model."""
    slug = entry.get("slug") or entry.get("id")
    if not isinstance(slug, str) or not slug.strip():
        return None
    levels = entry.get("supported_reasoning_levels") or []
    efforts = tuple(lv["effort"] for lv in levels if isinstance(lv, dict)
                    and isinstance(lv.get("effort"), str))
    ctx = entry.get("context_window")
    default = entry.get("default_reasoning_level")
    return Model(
        slug=slug.strip(), display_name=str(entry.get("display_name") or slug),
        context={kind: ctx if isinstance(ctx, int) else 0}, efforts=efforts,
        default_effort=default if default in efforts else None,
        description=str(entry.get("description") or ""),
        hidden=entry.get("visibility", "list") != "list",
        codex_instructions=str(entry.get("base_instructions") or ""),
        codex_min_version=parse_version(entry.get("minimal_client_version")),
        codex=dict(entry) if kind == "codex" else {})


def merge(static: Catalog, fetched: dict) -> Catalog:
    """*static* with its models replaced, for every kind that has a fetched catalog,
    by the models the accounts of that kind list (aliases, globs, suffixes stay)."""
    by_slug: dict[str, Model] = {}
    kinds_fetched = set()
    for acct in (fetched.get("accounts") or {}).values():
        kind = acct.get("kind")
        kinds_fetched.add(kind)
        for entry in acct.get("models") or ():
            m = model_of(entry, kind) if isinstance(entry, dict) else None
            if m is None:
                continue
            seen = by_slug.get(m.slug.lower())
            if seen is None:
                by_slug[m.slug.lower()] = m
            elif kind not in seen.context:
                by_slug[m.slug.lower()] = dataclasses.replace(
                    seen, context={**seen.context, **m.context})
    if not kinds_fetched:
        return static
    models = list(by_slug.values())
    for m in static.models:  # the table still speaks for kinds nobody fetched
        if m.slug.lower() in by_slug:
            continue
        rest = {k: v for k, v in m.context.items() if k not in kinds_fetched}
        if rest:
            models.append(dataclasses.replace(m, context=rest))
    return dataclasses.replace(static, models=tuple(models))


# -- the worker's view ---------------------------------------------------------------

class BackendCatalog:
    """This worker's effective catalog, kept current from the shared copy; fetches
    when the shared copy is older than the refresh interval (any worker may)."""

    def __init__(self, config, pool, profiles, identity, static: Catalog, get=None):
        self.static = static
        self.pool = pool
        self.profiles = profiles
        self.identity = identity
        self.interval = config.upstream.catalog_refresh_seconds
        self.store = store_for(config, pool.state)
        self._get = get or _http_get
        self._data: dict = {}
        self._catalog = static
        self._loaded = 0.0
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._asked_etags: set[str] = set()

    # -- reads (per request: cheap) -----------------------------------------------
    def current(self) -> Catalog:
        if time.monotonic() - self._loaded > RELOAD_SECONDS:
            self._reload()
        return self._catalog

    @property
    def source(self) -> str:
        self.current()
        return "backend" if self._data.get("accounts") else "table"

    def status(self) -> dict:
        """What /healthz says about the catalog in use (no secrets)."""
        self.current()
        accounts = self._data.get("accounts") or {}
        out = {"source": "backend" if accounts else "table",
               "models": len([m for m in self._catalog.models if not m.hidden])}
        if accounts:
            out["fetched_at"] = self._data.get("fetched_at")
        elif self._data.get("error"):
            out["error"] = self._data["error"]
        return out

    def accounts_listing(self, model: str) -> set[str] | None:
        """The accounts whose fetched catalog lists *model*; None when no account has
        one (nothing to restrict). Accounts without a fetched catalog are not named:
        the caller keeps them."""
        self.current()
        accounts = self._data.get("accounts") or {}
        if not accounts:
            return None
        name = model.lower()
        return {aid for aid, acct in accounts.items()
                if any(str(e.get("slug") or e.get("id") or "").lower() == name
                       for e in acct.get("models") or ())}

    def fetched_accounts(self) -> set[str]:
        self.current()
        return set((self._data.get("accounts") or {}))

    def codex_entries(self, client_version: str | None) -> list[dict]:
        """The backend's own entries for Codex CLI (base instructions included), each
        offered only to clients of at least its ``minimal_client_version``."""
        self.current()
        version = parse_version(client_version)
        out, seen = [], set()
        for acct in (self._data.get("accounts") or {}).values():
            if acct.get("kind") != "codex":
                continue
            for entry in acct.get("models") or ():
                slug = entry.get("slug")
                need = parse_version(entry.get("minimal_client_version"))
                if not slug or slug in seen or (need and (version is None or version < need)):
                    continue
                seen.add(slug)
                # Already applied here; its type changed between Codex versions, and a
                # field an older client cannot read fails its whole list.
                out.append({k: v for k, v in entry.items() if k != "minimal_client_version"})
        return out

    def _reload(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded <= RELOAD_SECONDS:
                return
            data = self.store.load()
            if data != self._data:
                self._data = data
                self._catalog = merge(self.static, data)
            self._loaded = time.monotonic()
        now = time.time()
        if (self.interval > 0 and now - float(data.get("fetched_at") or 0) > self.interval
                and now - float(data.get("failed_at") or 0) > RETRY_SECONDS):
            self.refresh_soon()

    # -- fetching (off the request path) -------------------------------------------
    def note_models_etag(self, etag: str | None) -> None:
        """An answer's ``X-Models-Etag``: fetch again if no stored catalog has it."""
        if not etag or self.interval <= 0 or etag in self._asked_etags:
            return
        if any(a.get("etag") == etag for a in (self._data.get("accounts") or {}).values()):
            return
        self._asked_etags.add(etag)
        self.refresh_soon()

    def refresh_soon(self) -> None:
        """Fetch on a thread of its own unless a fetch is running in this worker."""
        if not self._fetching.acquire(blocking=False):
            return
        threading.Thread(target=self._refresh_locked, name="catalog-fetch", daemon=True).start()

    def _refresh_locked(self) -> None:
        try:
            self.refresh()
        finally:
            self._fetching.release()

    def refresh(self) -> dict:
        """Fetch every account's catalog now (ETags kept) and share the result."""
        previous = self.store.load().get("accounts") or {}
        accounts, errors = {}, []
        for account in self.pool.accounts():
            try:
                got = self._fetch(account, previous.get(account.id))
            except Exception as exc:  # noqa: BLE001 - one account's catalog is not a request
                errors.append(f"{account.id}: {exc}")
                got = previous.get(account.id)  # the last good one stays
            if got is not None:
                accounts[account.id] = got
        now = time.time()
        data = {"accounts": accounts, "client_version": self.identity.version()}
        if errors:
            data["failed_at"] = now
            data["fetched_at"] = self.store.load().get("fetched_at") or 0
            data["error"] = "backend catalog unreachable (" + "; ".join(errors[:5]) + ")"
        else:
            data["fetched_at"] = now
        try:
            self.store.save(data)
        except Exception:  # noqa: BLE001 - the state store is down: next time
            log.warning("model catalog: could not share the fetched catalog")
        with self._lock:
            self._data, self._catalog = data, merge(self.static, data)
            self._loaded = time.monotonic()
        if accounts:
            log.info("model catalog: backend (%d models from %d accounts)",
                     len(self._catalog.models), len(accounts))
        else:
            log.warning("model catalog: built-in table (%s)", data.get("error") or "no account")
        return data

    def _fetch(self, account, previous: dict | None) -> dict | None:
        profile = self.profiles[account.kind]
        creds = self.pool.stored_credentials(account)
        if creds is None or not creds.token:
            return previous
        headers = {"Authorization": f"Bearer {creds.token}", "Accept": "application/json"}
        base = (account.base_url or profile.base_url).rstrip("/")
        if account.kind == "codex":
            headers.update(self.identity.headers())
            if creds.account_id:
                headers["chatgpt-account-id"] = creds.account_id
            url = f"{base}/models?client_version={self.identity.version()}"
        else:
            url = f"{base}/models"
        if previous and previous.get("etag"):
            headers["If-None-Match"] = previous["etag"]
        try:
            status, etag, payload = self._get(url, headers, FETCH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the boundary: named, never a traceback
            raise CatalogUnavailable(exc.__class__.__name__) from None
        if status == 304 and previous:
            return previous
        if status != 200 or not isinstance(payload, dict):
            raise CatalogUnavailable(f"HTTP {status}")
        models = payload.get("models") if account.kind == "codex" else payload.get("data")
        if not isinstance(models, list):
            raise CatalogUnavailable("no model list")
        return {"kind": account.kind, "etag": etag,
                "models": [m for m in models if isinstance(m, dict)]}


class CatalogUnavailable(Exception):
    """The upstream did not answer a usable catalog."""


def _http_get(url: str, headers: dict, timeout) -> tuple[int, str | None, object]:
    """GET *url*: ``(status, ETag, parsed JSON or None)``."""
    import requests

    resp = requests.get(url, headers=headers, timeout=timeout, allow_redirects=False)
    try:
        payload = resp.json() if resp.status_code == 200 else None
    except ValueError:
        payload = None
    return resp.status_code, resp.headers.get("ETag"), payload
