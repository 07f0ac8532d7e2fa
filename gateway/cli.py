"""gateway.cli
~~~~~~~~~~~~~
``codex-gateway serve | keys | accounts | login | usage | state | responses | check``.

Account commands live in :mod:`gateway.accounts.cli`; this module only wires
the sub-commands together and runs the server.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path

from . import config as config_mod
from .accounts import cli as accounts_cli
from .responses_store import cli as responses_cli
from .auth import add_key, config_key_id, hash_key, new_key, read_keys_file
from .policy import keys_cli
from .usage import report
from .state import StateUnavailable
from .usage.store import open_usage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codex-gateway", description="OpenAI-compatible gateway to the ChatGPT Codex backend")
    parser.add_argument("--config", help="TOML config file (or CODEX_GATEWAY_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway under gunicorn")
    serve.add_argument("gunicorn_args", nargs=argparse.REMAINDER,
                       help="extra gunicorn arguments (after --)")
    serve.set_defaults(func=cmd_serve)

    keys = sub.add_parser("keys", help="client API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a client key and print it once")
    create.add_argument("--name", default="client")
    create.add_argument("--admin", action="store_true",
                        help="an admin key: /metrics and /status only, not the API")
    keys_cli.add_flags(create)
    create.set_defaults(func=cmd_keys_create)
    update = ksub.add_parser("update", help="change a client key's policy (docs/sharing.md)")
    update.add_argument("key", help="the key's name or id")
    keys_cli.add_flags(update)
    update.set_defaults(func=keys_cli.cmd_update)
    revoke = ksub.add_parser("revoke", help="refuse a client key from its next request (401)")
    revoke.add_argument("key", help="the key's name or id")
    revoke.add_argument("--undo", action="store_true", help="accept the key again")
    revoke.set_defaults(func=keys_cli.cmd_revoke)
    klist = ksub.add_parser("list", help="list key names, ids, limits and usage "
                            "(never the keys)")
    klist.add_argument("--admin", action="store_true", help="list the admin keys instead")
    klist.add_argument("--json", action="store_true", help="a JSON list: each key's policy, "
                       "usage today and this week, and use of each limit")
    klist.set_defaults(func=cmd_keys_list)

    usage = sub.add_parser("usage", help="requests, tokens and cache hits per key, account, "
                           "model or day")
    usage.add_argument("--by", choices=report.BY_CHOICES, default="key")
    usage.add_argument("--since", default="7d",
                       help="a duration (7d, 24h, 30m) or a UTC date (2026-11-01); default 7d")
    usage.add_argument("--json", action="store_true", help="a JSON list of rows")
    usage.set_defaults(func=cmd_usage)

    check = sub.add_parser("check", help="validate the configuration and exit")
    check.set_defaults(func=cmd_check)

    state = sub.add_parser("state", help="the shared state store ([state] backend)")
    ssub = state.add_subparsers(dest="state_command", required=True)
    migrate = ssub.add_parser("migrate", help="copy the embedded state (state dir) into Redis")
    migrate.add_argument("--to", choices=["redis"], required=True)
    migrate.add_argument("--overwrite", action="store_true",
                         help="replace accounts that are already in Redis")
    migrate.set_defaults(func=cmd_state_migrate)

    accounts_cli.register(sub)
    responses_cli.register(sub)

    args = parser.parse_args(argv)
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        print(f"codex-gateway: {exc}", file=sys.stderr)
        return 2
    return args.func(cfg, args) or 0


def cmd_serve(cfg, args) -> int:
    extra = [a for a in args.gunicorn_args if a != "--"]
    # A file path, not "python:module": gunicorn re-executes a file on every HUP, so a
    # reload picks up changed [server] settings.
    conf = str(Path(__file__).with_name("gunicorn_conf.py"))
    argv = ["gunicorn", "-c", conf, *extra, "gateway.wsgi:app"]
    env = dict(os.environ)  # the workers load the config again: tell them which file
    if args.config:
        env[config_mod.ENV_PREFIX + "CONFIG"] = args.config
    os.execvpe(sys.executable, [sys.executable, "-m", *argv], env)
    return 0  # pragma: no cover


def cmd_keys_create(cfg, args) -> int:
    key = new_key()
    path = cfg.admin_keys_file if args.admin else cfg.keys_file
    policy = None if args.admin else keys_cli.policy_from_args_or_exit(cfg, args)
    if policy is None and not args.admin:
        return 2
    entry = add_key(path, args.name, key)
    if policy is not None and not policy.empty:
        keys_cli.store_policy(cfg, entry.id, policy)
        print(f"# policy: {keys_cli.describe(policy)}", file=sys.stderr)
    print(key)
    kind = "admin key (for /metrics and /status)" if args.admin else "client key"
    print(f"# {kind} saved to {path} as {entry.name} ({entry.id}), as its digest "
          f"{hash_key(key)}:\n# the key itself is stored nowhere and shown only this once.",
          file=sys.stderr)
    if cfg.state.kind == "redis":
        print("# [state] backend = redis: client keys stay per instance "
              "(docs/deploy/several-instances.md).\n"
              f"# Add the line `{entry.name} {hash_key(key)}` to every instance's keys file,\n"
              "# or its digest to auth.client_keys in every instance's config.\n"
              "# Its policy (docs/sharing.md) is in Redis: every instance applies it.",
              file=sys.stderr)
    return 0


def cmd_keys_list(cfg, args) -> int:
    # Client keys only by default: the systemd unit refuses to start on an empty list,
    # and an admin key does not open the API.
    if not args.admin and (args.json or keys_cli.any_policy(cfg)):
        return keys_cli.list_keys(cfg, args.json)
    path, configured = ((cfg.admin_keys_file, cfg.auth.admin_keys) if args.admin
                        else (cfg.keys_file, cfg.auth.client_keys))
    rows = [(e.name, e.id) for e in read_keys_file(path)]
    rows += [("config", config_key_id(k)) for k in configured]
    for name, ident in rows:
        print(f"{name}\t{ident}")
    return 0


def cmd_usage(cfg, args) -> int:
    now = time.time()
    try:
        since = report.parse_since(args.since, now)
    except ValueError as exc:
        print(f"codex-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        rows = open_usage(cfg).query(since, args.by)
    except (sqlite3.Error, StateUnavailable) as exc:
        where = "Redis" if cfg.state.kind == "redis" else cfg.usage_path
        print(f"codex-gateway: cannot read the usage store ({where}): {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(report.to_json(rows, args.by))
    elif not rows:
        print(f"No usage since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(since))} "
              f"in {cfg.usage_path}.")
    else:
        print(report.table(rows, args.by))
    return 0


def cmd_check(cfg, args) -> int:
    state = cfg.state.kind
    if state == "redis":
        state += f" at {config_mod.redacted_url(cfg.state.redis_url)}"
    print(f"config ok: bind {cfg.server.bind}, state dir {cfg.state_dir}, state {state}, "
          f"continuity chain {', '.join(cfg.continuity.chain)}")
    return 0


def cmd_state_migrate(cfg, args) -> int:
    from .state import StateUnavailable, migrate

    if not cfg.state.redis_url:
        print("codex-gateway: set state.redis_url (or CODEX_GATEWAY_STATE_REDIS_URL) to the "
              "Redis to copy into", file=sys.stderr)
        return 2
    try:
        report = migrate.to_redis(cfg, overwrite=args.overwrite)
    except StateUnavailable as exc:
        print(f"codex-gateway: {exc}", file=sys.stderr)
        return 1
    where = config_mod.redacted_url(cfg.state.redis_url)
    for ident in report.copied:
        print(f"copied {ident}" + (" (with its health)" if ident in report.health else ""))
    for ident in report.kept:
        print(f"kept {ident}: already in Redis (--overwrite replaces it)")
    print(f"{len(report.copied)} account(s) copied to {where}. Client keys stay in each "
          "instance's keys file. Set [state] backend = \"redis\" (and unset "
          "accounts.auth_file) on every instance, then start them.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
