"""gateway.policy.keys_cli
~~~~~~~~~~~~~~~~~~~~~~~~~~
The policy half of ``codex-gateway keys``: the flags of ``keys create`` and
``keys update``, ``keys revoke``, and the usage columns of ``keys list``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .. import config as config_mod
from .. import models
from ..auth import config_key_id, read_keys_file
from ..errors import GatewayError
from .counters import open_counters
from .model import Policy, format_time, parse_expires, parse_limit
from .report import key_reports
from .store import open_policies

_LIMIT_FLAGS = ("tokens_per_day", "tokens_per_week", "requests_per_minute", "concurrency")


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="comma-separated models this key may use (catalog "
                        "names, aliases and suffixes resolved); 'all' lifts the list")
    parser.add_argument("--tokens-per-day", help="input + output tokens per UTC day ('none')")
    parser.add_argument("--tokens-per-week", help="input + output tokens per ISO week, "
                        "Monday 00:00 UTC ('none')")
    parser.add_argument("--requests-per-minute", help="requests in any 60 s ('none')")
    parser.add_argument("--concurrency", help="answers in flight at once ('none')")
    parser.add_argument("--expires", help="30d, 12h, 2w or a UTC date 2027-01-31 "
                        "(valid through that day); 'never'")
    quota = parser.add_mutually_exclusive_group()
    quota.add_argument("--show-quota", dest="show_quota", action="store_true", default=None,
                       help="this key sees the serving account's quota (x-codex-* headers, "
                       "codex.rate_limits events): for the owner's own tools")
    quota.add_argument("--hide-quota", dest="show_quota", action="store_false",
                       help="this key sees no account quota (the default)")


def policy_from_args(cfg, args, base: Policy) -> Policy:
    """*base* with the flags given; ValueError (or GatewayError for a model the
    catalog does not know) says what is wrong."""
    changes: dict = {}
    if args.models is not None:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        if names == ["all"]:
            changes["models"] = ()
        else:
            catalog = config_mod.catalog(cfg)
            changes["models"] = tuple(dict.fromkeys(models.resolve(n, catalog).model
                                                    for n in names))
    for name in _LIMIT_FLAGS:
        value = getattr(args, name)
        if value is not None:
            changes[name] = parse_limit(value, name)
    if args.expires is not None:
        changes["expires_at"] = parse_expires(args.expires)
    if args.show_quota is not None:
        changes["show_quota"] = args.show_quota
    return base.replace(**changes)


def store_policy(cfg, key_id: str, policy: Policy) -> None:
    open_policies(cfg).put(key_id, policy)


def known_keys(cfg) -> list[tuple[str, str]]:
    """``(id, name)`` of every client key: the keys file's, then the config's."""
    rows = [(e.id, e.name) for e in read_keys_file(cfg.keys_file)]
    return rows + [(config_key_id(k), "config") for k in cfg.auth.client_keys]


def find_key(cfg, name: str) -> str | None:
    """The id of the key called *name* (or with that id); None after an error."""
    keys = known_keys(cfg)
    found = [i for i, n in keys if i == name] or [i for i, n in keys if n == name]
    if len(set(found)) == 1:
        return found[0]
    why = "no client key" if not found else f"{len(found)} keys"
    print(f"codex-gateway: {why} named {name!r}; `codex-gateway keys list` shows names and "
          "ids (an id works too)", file=sys.stderr)
    return None


def cmd_update(cfg, args) -> int:
    key_id = find_key(cfg, args.key)
    if key_id is None:
        return 2
    store = open_policies(cfg)
    policy = _checked(lambda: policy_from_args(cfg, args, store.get(key_id)))
    if policy is None:
        return 2
    store.put(key_id, policy)
    print(f"{args.key} ({key_id}): {describe(policy)}; holds from the next request")
    return 0


def cmd_revoke(cfg, args) -> int:
    key_id = find_key(cfg, args.key)
    if key_id is None:
        return 2
    store = open_policies(cfg)
    store.put(key_id, store.get(key_id).replace(revoked=not args.undo))
    state = "restored" if args.undo else "revoked: its requests get 401 from now on"
    print(f"{args.key} ({key_id}) {state}")
    return 0


def describe(policy: Policy) -> str:
    if policy.empty:
        return "no limits"
    parts = []
    if policy.revoked:
        parts.append("REVOKED")
    if policy.expires_at is not None:
        parts.append(f"expires {format_time(policy.expires_at)}")
    if policy.models:
        parts.append("models " + ",".join(policy.models))
    for name in _LIMIT_FLAGS:
        value = getattr(policy, name)
        if value is not None:
            parts.append(f"{name.replace('_', ' ')} {value}")
    if policy.show_quota:
        parts.append("shows quota")
    return "; ".join(parts)


def list_keys(cfg, as_json: bool) -> int:
    """``keys list``: each client key with its limits and its use today and this week."""
    from ..usage.store import open_usage

    now = time.time()
    policies = open_policies(cfg)
    reports = key_reports(known_keys(cfg), policies, open_counters(cfg), open_usage(cfg), now)
    if as_json:
        print(json.dumps(reports, indent=1))
        return 0
    for r in reports:
        policy = policies.get(r["id"])
        used = [f"today {r['today']['requests']} req {r['today']['tokens']} tok",
                f"week {r['week']['tokens']} tok"]
        for name, lim in r["limits"].items():
            if "remaining" in lim:
                used.append(f"{name.replace('_', ' ')} {lim['used']}/{lim['limit']}")
        print(f"{r['name']}\t{r['id']}\t{r['status']}\t{describe(policy)}\t{', '.join(used)}")
    return 0


def policy_from_args_or_exit(cfg, args) -> Policy | None:
    """The flags checked before a key is created (None after an error, printed)."""
    return _checked(lambda: policy_from_args(cfg, args, Policy()))


def _checked(make) -> Policy | None:
    try:
        return make()
    except (ValueError, GatewayError) as exc:
        print(f"codex-gateway: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return None


def any_policy(cfg) -> bool:
    try:
        return bool(open_policies(cfg).all())
    except Exception:  # noqa: BLE001 - plain listing still works
        return False
