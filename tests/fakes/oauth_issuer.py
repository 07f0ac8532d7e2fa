"""tests.fakes.oauth_issuer
~~~~~~~~~~~~~~~~~~~~~~~~~
A fake of ``auth.openai.com`` as the Codex CLI uses it: refresh-token
rotation at ``/oauth/token``, the PKCE authorization-code login and the
device-code login.

Refresh tokens rotate like the real ones: each use issues a new one and marks
the presented one ``used``, so a second use answers 401
``refresh_token_reused`` — the failure two uncoordinated processes sharing an
``auth.json`` run into. An optional ``delay`` per token call widens the race
window for tests of refresh locking.

Run standalone with ``python -m tests.fakes.oauth_issuer --port 18002``.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import secrets
import time
from urllib.parse import urlencode

from tests.fakes.jwt import codex_claims, make_jwt
from tests.fakes.server import BadRequest, FakeServer

REFRESH_STATES = ("current", "used", "expired", "invalidated")
SCOPE = "openid profile email offline_access"
CONFIG_KEYS = ("access_ttl", "delay", "auto_approve", "device_interval", "login_account")
_REFRESH_ERRORS = {
    "used": ("refresh_token_reused", "Your refresh token has already been used to generate a "
             "new access token. Please try signing in again."),
    "expired": ("refresh_token_expired", "Your refresh token has expired. "
                "Please try signing in again."),
    "invalidated": ("refresh_token_invalidated", "Your refresh token has been invalidated. "
                    "Please try signing in again."),
}


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of *verifier* (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _refresh_error(code: str, message: str) -> tuple[int, dict]:
    return 401, {"error": {"message": message, "type": "invalid_request_error", "param": None,
                           "code": code}}


def _grant_error(error: str, description: str) -> tuple[int, dict]:
    return 400, {"error": error, "error_description": description}


class FakeOAuthIssuer(FakeServer):
    """Fake OAuth issuer with rotating refresh tokens, PKCE and device flow.

    ``access_ttl``: lifetime of issued access tokens (s). ``delay``: sleep per
    ``/oauth/token`` call (s). ``auto_approve``: device codes are approved at
    once. ``device_interval``: polling interval announced to device clients.
    """

    description = "Fake OAuth issuer (auth.openai.com)"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *, access_ttl: int = 3600,
                 delay: float = 0.0, auto_approve: bool = False, device_interval: int = 1):
        super().__init__(port, host)
        self._serial = itertools.count(1)  # survives reset(): tokens never repeat
        self._config = {"access_ttl": 3600, "delay": 0.0, "auto_approve": False,
                        "device_interval": 1, "login_account": None}
        self.configure(access_ttl=access_ttl, delay=delay, auto_approve=auto_approve,
                       device_interval=device_interval)
        self._reset_state()
        self.routes.update({
            ("POST", "/oauth/token"): self._token,
            ("GET", "/oauth/authorize"): self._authorize,
            ("POST", "/api/accounts/deviceauth/usercode"): self._device_usercode,
            ("POST", "/api/accounts/deviceauth/token"): self._device_token,
            ("POST", "/_fake/accounts"): self.control(lambda p: self.add_account(**p)),
            ("GET", "/_fake/calls"): self.control(lambda _: self.calls),
            ("GET", "/_fake/refresh_token"): self.control(lambda p: {
                "refresh_token": self.current_refresh_token(p["account_id"])}),
            ("POST", "/_fake/refresh_tokens"): self.control(lambda p: self.set_refresh_state(
                p["refresh_token"], p["state"])),
            ("POST", "/_fake/device/approve"): self.control(lambda p: self.approve_device(**p)),
            ("GET", "/_fake/config"): self.control(lambda _: self.config),
            ("POST", "/_fake/config"): self.control(lambda p: self.configure(**p)),
            ("POST", "/_fake/reset"): self.control(lambda _: self.reset() or {"ok": True}),
        })

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    # -- Python control API (the /_fake/ routes call these) -------------------

    def _reset_state(self):
        self._accounts: dict[str, dict] = {}
        self._refresh: dict[str, dict] = {}  # token -> {"account", "state"}
        self._codes: dict[str, dict] = {}
        self._devices: dict[str, dict] = {}
        self._calls: list[dict] = []

    def reset(self):
        """Forget accounts, tokens, codes, device logins and recorded calls."""
        with self.lock:
            self._reset_state()

    @property
    def config(self) -> dict:
        with self.lock:
            return dict(self._config)

    def configure(self, **changes) -> dict:
        """Change any of ``CONFIG_KEYS``; returns the new configuration."""
        unknown = set(changes) - set(CONFIG_KEYS)
        if unknown:
            raise KeyError(f"unknown config keys: {sorted(unknown)}")
        with self.lock:
            self._config.update(changes)
        return self.config

    @property
    def calls(self) -> list[dict]:
        """A snapshot of every ``/oauth/token`` call, in arrival order."""
        with self.lock:
            return copy.deepcopy(self._calls)

    def add_account(self, account_id: str, plan: str = "plus", email: str | None = None,
                    expired: bool = False) -> dict:
        """Create (or update) an account and issue it a fresh token set.

        With *expired*, the access token's ``exp`` is already in the past, so
        the gateway must refresh before (or after) its first upstream call.
        """
        with self.lock:
            self._accounts[account_id] = {"plan": plan,
                                          "email": email or f"{account_id}@example.test"}
            return {"account_id": account_id, **self._issue(account_id, expired)}

    def current_refresh_token(self, account_id: str) -> str | None:
        """The newest refresh token of *account_id* that is still usable."""
        with self.lock:
            current = [t for t, e in self._refresh.items()
                       if e["account"] == account_id and e["state"] == "current"]
        return current[-1] if current else None

    def set_refresh_state(self, refresh_token: str, state: str) -> dict:
        """Mark a refresh token ``current``/``used``/``expired``/``invalidated``."""
        if state not in REFRESH_STATES:
            raise ValueError(f"state must be one of {REFRESH_STATES}")
        with self.lock:
            self._refresh[refresh_token]["state"] = state
        return {"refresh_token": refresh_token, "state": state}

    def approve_device(self, user_code: str | None = None, device_auth_id: str | None = None,
                       account_id: str | None = None) -> dict:
        """Approve a pending device login, as the user would in the browser."""
        with self.lock:
            device = next((d for i, d in self._devices.items()
                           if i == device_auth_id or d["user_code"] == user_code), None)
            if device is None:
                raise KeyError(f"no device login {device_auth_id or user_code!r}")
            device["approved"] = True
            if account_id:
                device["account"] = account_id
            return {"device_auth_id": device["id"], "account_id": device["account"]}

    # -- tokens ---------------------------------------------------------------

    def _issue(self, account_id: str, expired: bool = False) -> dict:
        """A new access/id/refresh token set for an account (lock held)."""
        account = self._accounts.setdefault(
            account_id, {"plan": "plus", "email": f"{account_id}@example.test"})
        n = next(self._serial)
        now = time.time()
        ttl = int(self._config["access_ttl"])
        claims = dict(plan=account["plan"], email=account["email"])
        access = make_jwt(codex_claims(account_id, exp=now - 60 if expired else now + ttl,
                                       jti=f"at-{n}", scp=SCOPE.split(), **claims))
        id_token = make_jwt(codex_claims(account_id, jti=f"id-{n}", **claims))
        refresh = f"rt_{account_id}_{n:04d}"
        self._refresh[refresh] = {"account": account_id, "state": "current"}
        return {"access_token": access, "id_token": id_token, "refresh_token": refresh,
                "token_type": "Bearer", "expires_in": ttl, "scope": SCOPE}

    def _login_account(self, requested: str | None) -> str:
        """Who logs in: the requested account, the configured one, the first, or a new one."""
        return (requested or self._config["login_account"]
                or next(iter(self._accounts), None) or "acct_login")

    def _token(self, req):
        error = None
        try:
            form = req.form_or_json()
        except BadRequest as exc:
            form, error = {}, _grant_error("invalid_request", str(exc))
        call = {"id": None, "grant_type": form.get("grant_type"),
                "refresh_token": form.get("refresh_token"), "code": form.get("code"),
                "client_id": form.get("client_id"), "content_type": req.headers.get("Content-Type"),
                "account": None, "status": None, "error": None,
                "started_at": time.time(), "finished_at": None}
        with self.lock:
            call["id"] = len(self._calls) + 1
            self._calls.append(call)
            delay = float(self._config["delay"])
        if delay:
            self.stopping.wait(delay)
        status, body = error or self._grant(form, call)
        with self.lock:
            call.update(status=status, finished_at=time.time(),
                        error=body.get("error") if status != 200 else None)
        req.send_json(status, body, {"Cache-Control": "no-store"})

    def _grant(self, form: dict, call: dict) -> tuple[int, dict]:
        """Check the grant and issue tokens, atomically (so races resolve cleanly)."""
        grant = form.get("grant_type")
        with self.lock:
            if grant == "refresh_token":
                entry = self._refresh.get(form.get("refresh_token"))
                if entry is None:
                    return _refresh_error("refresh_token_invalidated", "Unknown refresh token.")
                call["account"] = entry["account"]
                if entry["state"] != "current":
                    return _refresh_error(*_REFRESH_ERRORS[entry["state"]])
                entry["state"] = "used"
                return 200, self._issue(entry["account"])
            if grant == "authorization_code":
                code = self._codes.get(form.get("code"))
                if code is None or code["used"]:
                    return _grant_error("invalid_grant", "Unknown or already used code.")
                if code["redirect_uri"] != form.get("redirect_uri"):
                    return _grant_error("invalid_grant", "redirect_uri does not match.")
                if not self._pkce_ok(code, form.get("code_verifier")):
                    return _grant_error("invalid_grant", "code_verifier does not match.")
                code["used"] = True
                call["account"] = code["account"]
                return 200, self._issue(code["account"])
        return _grant_error("unsupported_grant_type", f"Unsupported grant_type: {grant!r}")

    @staticmethod
    def _pkce_ok(code: dict, verifier: str | None) -> bool:
        if not code["challenge"]:
            return True
        if not verifier:
            return False
        if code["method"] == "S256":
            return pkce_challenge(verifier) == code["challenge"]
        return verifier == code["challenge"]

    def _new_code(self, account: str, redirect_uri: str, challenge: str | None,
                  method: str = "S256") -> str:
        code = f"code_{next(self._serial):04d}"
        self._codes[code] = {"account": account, "redirect_uri": redirect_uri,
                             "challenge": challenge, "method": method, "used": False}
        return code

    # -- browser login (PKCE) -------------------------------------------------

    def _authorize(self, req):
        """Log in at once and redirect back with ``code`` and ``state``.

        A non-standard ``account_id`` query parameter picks who logs in.
        """
        query = req.query
        redirect_uri = query.get("redirect_uri")
        if query.get("response_type") != "code" or not redirect_uri:
            req.send_json(*_grant_error("invalid_request",
                                        "response_type=code and redirect_uri are required"))
            return
        with self.lock:
            account = self._login_account(query.get("account_id"))
            code = self._new_code(account, redirect_uri, query.get("code_challenge"),
                                  query.get("code_challenge_method", "plain"))
        params = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        separator = "&" if "?" in redirect_uri else "?"
        req.send_redirect(f"{redirect_uri}{separator}{urlencode(params)}")

    # -- device login ---------------------------------------------------------

    def _device_usercode(self, req):
        with self.lock:
            n = next(self._serial)
            device = {"id": f"deviceauth_{n:04d}", "user_code": f"FAKE-{n:04d}",
                      "account": self._login_account(None),
                      "approved": bool(self._config["auto_approve"]), "result": None}
            self._devices[device["id"]] = device
            interval = str(self._config["device_interval"])
        # The real endpoint sends the interval as a string.
        req.send_json(200, {"device_auth_id": device["id"], "user_code": device["user_code"],
                            "interval": interval})

    def _device_token(self, req):
        """Poll: 403 ``authorization_pending`` until approved, then a code + verifier."""
        try:
            form = req.form_or_json()
        except BadRequest as exc:
            req.send_json(*_grant_error("invalid_request", str(exc)))
            return
        with self.lock:
            device = self._devices.get(form.get("device_auth_id"))
            if device is None or form.get("user_code", device["user_code"]) != device["user_code"]:
                req.send_json(*_grant_error("invalid_request", "Unknown device_auth_id/user_code."))
                return
            if not device["approved"]:
                req.send_json(403, {"error": "authorization_pending"})
                return
            if device["result"] is None:
                verifier = secrets.token_urlsafe(48)
                challenge = pkce_challenge(verifier)
                code = self._new_code(device["account"], f"{self.base_url}/deviceauth/callback",
                                      challenge)
                device["result"] = {"authorization_code": code, "code_challenge": challenge,
                                    "code_verifier": verifier}
            req.send_json(200, device["result"])

    # -- command line -----------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--access-ttl", type=int, default=3600)
        parser.add_argument("--delay", type=float, default=0.0)
        parser.add_argument("--auto-approve", action="store_true")

    @classmethod
    def from_args(cls, args):
        return cls(port=args.port, host=args.host, access_ttl=args.access_ttl,
                   delay=args.delay, auto_approve=args.auto_approve)


if __name__ == "__main__":
    FakeOAuthIssuer.main()
