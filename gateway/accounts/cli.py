"""gateway.accounts.cli
~~~~~~~~~~~~~~~~~~~~~~~~
``codex-gateway login [--device]`` and ``codex-gateway accounts
import | list | remove | add-key``.

Secrets are read from files, stdin or an environment variable, never from
argv (which other users can see in ``ps``), and never printed.

Every command works on the configured state store (:mod:`gateway.state`): the
state dir's files, or Redis, where every instance sees the change at once. An
unreachable Redis is an error that says so, never a silently empty list.
"""
from __future__ import annotations

import getpass
import json
import os
import secrets
import sys
import time
import webbrowser
from functools import wraps

from .. import state as state_mod
from ..state import StateUnavailable
from ..upstream import catalog
from ..usage import quota
from . import oauth
from .pool import AccountPool
from ..state.records import StoreError, codex_record, from_codex_auth, openai_record, safe_id


def open_browser(url: str) -> None:
    """Open a graphical browser if there is one: on a headless host webbrowser
    would start a console browser that takes over the terminal. (Tests
    replace this with a client that follows the redirect.)"""
    if sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        webbrowser.open(url)


SHARED_LOGIN_WARNING = """\
Warning: this login is now shared by Codex CLI and the gateway. Refresh tokens
rotate on every refresh, so whichever of the two refreshes second is refused
with `refresh_token_reused` and must log in again. Give the gateway its own
login with `codex-gateway login` (or `login --device`), or stop using this
login in Codex CLI."""


def register(subparsers) -> None:
    login = subparsers.add_parser("login", help="log a ChatGPT account in for the gateway")
    login.add_argument("--device", action="store_true",
                       help="device-code login: enter a code on any browser, no callback")
    login.add_argument("--no-browser", action="store_true", help="only print the URL")
    login.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")
    _account_options(login)
    login.set_defaults(func=_guard(cmd_login))

    accounts = subparsers.add_parser("accounts", help="upstream accounts")
    sub = accounts.add_subparsers(dest="accounts_command", required=True)
    imp = sub.add_parser("import", help="copy a Codex CLI auth.json into the gateway")
    imp.add_argument("path")
    _account_options(imp)
    imp.set_defaults(func=_guard(cmd_import))
    lst = sub.add_parser("list", help="accounts and their health (never tokens)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_guard(cmd_list))
    clr = sub.add_parser("clear", help="end an account's cooldown now (after a limit that "
                                       "reset, or a fault that is fixed)")
    clr.add_argument("id", nargs="?", help="the account (see `accounts list`)")
    clr.add_argument("--all", action="store_true", help="every cooling account")
    clr.set_defaults(func=_guard(cmd_clear))
    rm = sub.add_parser("remove", help="delete an account")
    rm.add_argument("id")
    rm.set_defaults(func=_guard(cmd_remove))
    add = sub.add_parser("add-key", help="add an OpenAI API key (read from stdin)")
    add.add_argument("--key-env", metavar="VAR", help="read the key from this variable")
    add.add_argument("--base-url", help="an OpenAI-compatible base URL (default api.openai.com)")
    _account_options(add)
    add.set_defaults(func=_guard(cmd_add_key))


def _account_options(parser) -> None:
    parser.add_argument("--label", help="a name for the account")
    parser.add_argument("--weight", type=float, help="share of conversations (default 1)")
    parser.add_argument("--models", help="comma-separated models it serves (default all)")


def _extras(args) -> dict:
    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    return {"label": args.label, "weight": args.weight, "models": models or None}


def _guard(cmd):
    """Run *cmd*, turning an unreachable state store into one clear error."""
    @wraps(cmd)
    def run(cfg, args) -> int:
        try:
            return cmd(cfg, args)
        except StateUnavailable as exc:
            print(f"codex-gateway: {exc}", file=sys.stderr)
            return 1
    return run


def _pool(cfg) -> AccountPool:
    """The pool on the configured state store, which must answer now."""
    backend = state_mod.open_state(cfg)
    backend.check()
    return AccountPool(cfg, backend=backend)


def save_login(cfg, toks: dict, args) -> dict:
    """Store a login's tokens (keeping an existing account's label, weight,
    models) and lift any needs-login mark, for every worker at once."""
    rec = codex_record(toks, **_extras(args))
    pool = _pool(cfg)
    store = pool.store
    old = store.load(rec["id"]) or {}
    if old.get("source"):  # the auth_file shortcut: a login makes a file of its own
        old = {}
    for key in ("label", "weight", "models", "disabled"):
        if key not in rec and key in old:
            rec[key] = old[key]
    store.save(rec)
    pool.health.clear(rec["id"], login=True)
    read_quota(cfg, pool, rec["id"])
    return rec


def read_quota(cfg, pool: AccountPool, account_id: str) -> None:
    """Read a new login's quota windows now (one GET of the usage endpoint, if it
    answers), so placement knows its headroom from its first request instead of
    counting it neutral until its first answer (docs/placement.md)."""
    if cfg.usage.quota_poll_seconds <= 0:
        return
    for account in pool.accounts():
        if account.id == account_id:
            quota.QuotaPoller(cfg, pool).poll(account)


def cmd_login(cfg, args) -> int:
    try:
        rec = _device_login(cfg, args) if args.device else _browser_login(cfg, args)
    except (oauth.OAuthError, StoreError, OSError, StateUnavailable) as exc:
        print(f"codex-gateway: login failed: {exc}", file=sys.stderr)
        return 1
    print(f"Logged in {rec['id']} ({rec.get('email') or 'no email'}, "
          f"plan {rec.get('plan') or 'unknown'}).")
    return 0


def _browser_login(cfg, args) -> dict:
    port = cfg.oauth.callback_port
    redirect = f"http://localhost:{port}/auth/callback"
    verifier, challenge = oauth.pkce()
    state = secrets.token_urlsafe(24)
    try:
        server = oauth.CallbackServer(port, state, lambda code: save_login(
            cfg, oauth.exchange_code(cfg, code, redirect, verifier), args))
    except OSError as exc:
        raise oauth.OAuthError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); is "
                               "another login running? `login --device` needs no port") from None
    url = oauth.authorize_url(cfg, redirect, challenge, state)
    print(f"Open this URL in a browser and log in:\n\n  {url}\n\n"
          f"The browser is then sent to {redirect}, which must reach this machine.\n"
          f"On a headless server (a VPS), forward the port from your desktop first:\n"
          f"  ssh -L {port}:localhost:{port} user@your-vps\n"
          "and open the URL in your desktop browser, or use `codex-gateway login --device`.\n"
          f"Waiting up to {int(args.timeout)} s for the login…", flush=True)
    if not args.no_browser:
        open_browser(url)
    return server.wait(args.timeout)


def _device_login(cfg, args) -> dict:
    device = oauth.device_start(cfg)
    print(f"Open {device['verification_url']} in any browser, log in, and enter the code:\n\n"
          f"  {device['user_code']}\n\nWaiting up to {int(args.timeout)} s…", flush=True)
    return save_login(cfg, oauth.device_finish(cfg, device, args.timeout), args)


def cmd_import(cfg, args) -> int:
    try:
        if args.path == "-":  # e.g. `ssh laptop cat ~/.codex/auth.json | codex-gateway accounts import -`
            data = json.load(sys.stdin)
        else:
            with open(os.path.expanduser(args.path)) as fh:
                data = json.load(fh)
        rec = save_login(cfg, from_codex_auth(data if isinstance(data, dict) else {}), args)
    except OSError as exc:
        print(f"codex-gateway: cannot read {args.path}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError as exc:  # StoreError too; the message names no token
        print(f"codex-gateway: cannot import {args.path}: {exc}", file=sys.stderr)
        return 1
    print(f"Imported {rec['id']} ({rec.get('email') or 'no email'}, "
          f"plan {rec.get('plan') or 'unknown'}).")
    print(SHARED_LOGIN_WARNING, file=sys.stderr)
    return 0


def cmd_add_key(cfg, args) -> int:
    if args.key_env:
        key = os.environ.get(args.key_env, "").strip()
    elif sys.stdin.isatty():
        key = getpass.getpass("OpenAI API key: ").strip()
    else:
        key = sys.stdin.readline().strip()
    if not key:
        print("codex-gateway: no API key given (pipe it on stdin or use --key-env VAR)",
              file=sys.stderr)
        return 1
    extras = {k: v for k, v in _extras(args).items() if v is not None}
    rec = openai_record(key, base_url=args.base_url, **extras)
    pool = _pool(cfg)
    pool.store.save(rec)
    pool.health.clear(rec["id"], login=True)
    print(f"Added {rec['id']}.")
    return 0


def cmd_remove(cfg, args) -> int:
    if safe_id(args.id) != args.id:  # the store would act on the normalised id: only exact ids
        print(f"codex-gateway: no account {args.id!r}: give the exact id "
              "(`codex-gateway accounts list`)", file=sys.stderr)
        return 1
    pool = _pool(cfg)
    if not pool.store.remove(args.id):
        known = {r["id"]: r for r in pool.records()}
        hint = (" (it comes from the config: unset accounts.auth_file / accounts.openai_api_key)"
                if args.id in known else "")
        where = "in Redis" if pool.state.name == "redis" else "file"
        print(f"codex-gateway: no account {where} for {args.id}{hint}", file=sys.stderr)
        return 1
    pool.health.forget(args.id)
    print(f"Removed {args.id}.")
    return 0


def cmd_clear(cfg, args) -> int:
    """End cooldowns in the shared health store: every worker (and every instance
    on one Redis) sends to the account again on its next request. A needs-login
    mark stays: only a new login lifts it."""
    pool = _pool(cfg)
    rows = {r["id"]: r for r in pool.rows()}
    if args.all == bool(args.id):
        print("codex-gateway: name one account, or --all", file=sys.stderr)
        return 2
    if args.id and args.id not in rows:
        print(f"codex-gateway: no account {args.id} (see `codex-gateway accounts list`)",
              file=sys.stderr)
        return 1
    targets = [args.id] if args.id else [i for i, r in rows.items() if r["state"] == "cooling"]
    for account_id in targets:
        was = rows[account_id]
        pool.health.clear(account_id)
        if was["state"] == "cooling":
            print(f"Cleared {account_id} (was cooling: {was['reason'] or 'no reason recorded'}).")
        elif was["state"] == "needs_login":
            print(f"{account_id} is not cooling; it needs a login (`codex-gateway login`).")
        else:
            print(f"{account_id} was not cooling.")
    if not targets:
        print("No account is cooling.")
    return 0


def cmd_list(cfg, args) -> int:
    pool = _pool(cfg)
    rows = pool.rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("No accounts. Add one with `codex-gateway login`, `accounts import` or "
              "`accounts add-key`.")
        return 0
    now = time.time()
    head = ("ID", "KIND", "LABEL", "PLAN", "STATE", "COOLDOWN UNTIL", "LAST REFRESH",
            "LAST USED", "PRIMARY WINDOW", "SECONDARY WINDOW", "NEW CONVERSATIONS")
    table = [head] + [(r["id"], r["kind"], r["label"], r["plan"] or "-",
                       r["state"] + (f" ({r['reason']})" if r["reason"] else ""),
                       _when(r["cooldown_until"]), _when(r["last_refresh"]),
                       _when(r["last_used"]),
                       *(quota.format_window(r["rate_limits"].get(w), w, now)
                         for w in quota.WINDOWS), quota.placement_text(r["placement"]))
                      for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print(catalog.describe(catalog.store_for(cfg, pool.state).load()))
    return 0


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"
