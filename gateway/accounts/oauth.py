"""gateway.accounts.oauth
~~~~~~~~~~~~~~~~~~~~~~~~~~
Talking to the OAuth issuer (``auth.openai.com`` or a fake from ``cfg.oauth``):
token refresh, the browser (PKCE) login and the device-code login.

Every call has a timeout. Errors carry the HTTP status and the issuer's error
code only, never a token, so they are safe to log and to print.
"""
from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

TIMEOUT = (5.0, 30.0)  # (connect, read) seconds for every issuer call
SCOPE = "openid profile email offline_access"
# The refresh token is dead: only a new login helps (Codex CLI treats these alike).
PERMANENT = frozenset({"refresh_token_reused", "refresh_token_expired",
                       "refresh_token_invalidated", "invalid_grant"})


class OAuthError(Exception):
    """An issuer call that failed; ``permanent`` means "log in again"."""

    def __init__(self, message: str, code: str | None = None, permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


# -- token endpoint ----------------------------------------------------------
def refresh(cfg, refresh_token: str) -> dict:
    """Trade a refresh token for ``{access_token, refresh_token?, id_token?}`` (C.7: JSON)."""
    body = {"client_id": cfg.oauth.client_id, "grant_type": "refresh_token",
            "refresh_token": refresh_token}
    return _token_call(cfg, "refresh", json=body)


def exchange_code(cfg, code: str, redirect_uri: str, verifier: str) -> dict:
    """Trade an authorization code (+ PKCE verifier) for tokens (form-encoded)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": cfg.oauth.client_id, "code_verifier": verifier}
    return _token_call(cfg, "code exchange", data=form)


def _token_call(cfg, what: str, **body) -> dict:
    try:
        resp = requests.post(cfg.oauth.token_url, timeout=TIMEOUT,
                             headers={"Accept": "application/json"}, **body)
    except requests.RequestException as exc:
        raise OAuthError(f"token {what} failed: {exc.__class__.__name__}") from None
    data = _json(resp)
    if resp.status_code == 200 and isinstance(data.get("access_token"), str):
        return data
    code = error_code(data)
    raise OAuthError(f"token {what} refused: HTTP {resp.status_code} {code or ''}".rstrip(),
                     code, permanent=code in PERMANENT)


def error_code(data: dict) -> str | None:
    """The issuer's error code: ``{"error": {"code"}}`` or ``{"error": "<code>"}``."""
    err = data.get("error")
    if isinstance(err, dict):
        err = err.get("code") or err.get("type")
    return err if isinstance(err, str) else None


def _json(resp) -> dict:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# -- browser login (PKCE) ----------------------------------------------------
def pkce() -> tuple[str, str]:
    """A PKCE ``(verifier, S256 challenge)`` pair."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(cfg, redirect_uri: str, challenge: str, state: str) -> str:
    query = {"response_type": "code", "client_id": cfg.oauth.client_id,
             "redirect_uri": redirect_uri, "scope": SCOPE, "code_challenge": challenge,
             "code_challenge_method": "S256", "id_token_add_organizations": "true",
             "codex_cli_simplified_flow": "true", "state": state,
             "originator": cfg.upstream.originator}
    return f"{cfg.oauth.issuer.rstrip('/')}/oauth/authorize?{urlencode(query)}"


class CallbackServer:
    """The local ``/auth/callback`` endpoint the issuer redirects the browser to.

    ``on_code(code)`` runs in the request (exchange and save), so the browser
    page can say whether the login worked; it raises OAuthError, ValueError or
    OSError on failure."""

    def __init__(self, port: int, state: str, on_code):
        self.result: dict | None = None
        self.error: str | None = None
        self.done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # the query holds the code: keep it out of logs
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                if url.path != "/auth/callback":
                    return self._page(404, "Not found.")
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if query.get("state") != state:
                    return self._page(400, "State mismatch: start the login again.")
                if "code" not in query:
                    outer._finish(error=f"the issuer answered {query.get('error', 'no code')}")
                    return self._page(400, f"Login failed: {outer.error}.")
                try:
                    outer._finish(result=on_code(query["code"]))
                except (OAuthError, ValueError, OSError) as exc:  # shown in the terminal too
                    outer._finish(error=str(exc))
                    return self._page(500, f"Login failed: {exc}")
                self._page(200, "Login complete. You can close this tab.")

            def _page(self, status: int, text: str):
                body = f"<!doctype html><title>codex-gateway</title><p>{html.escape(text)}</p>"
                body = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def _finish(self, result=None, error=None):
        self.result, self.error = result, error
        self.done.set()

    def wait(self, timeout: float):
        """The ``on_code`` result; raises OAuthError on failure or timeout."""
        try:
            if not self.done.wait(timeout):
                raise OAuthError(f"no login callback within {int(timeout)} s")
            if self.error:
                raise OAuthError(self.error)
            return self.result
        finally:
            self.server.shutdown()
            self.server.server_close()


# -- device-code login (C.8) -------------------------------------------------
def device_start(cfg) -> dict:
    """Ask for a user code: ``{device_auth_id, user_code, interval, verification_url}``."""
    issuer = cfg.oauth.issuer.rstrip("/")
    try:
        resp = requests.post(f"{issuer}/api/accounts/deviceauth/usercode", timeout=TIMEOUT,
                             json={"client_id": cfg.oauth.client_id})
    except requests.RequestException as exc:
        raise OAuthError(f"device login failed: {exc.__class__.__name__}") from None
    data = _json(resp)
    if resp.status_code == 404:
        raise OAuthError("the issuer has no device login; use `codex-gateway login` instead")
    user_code = data.get("user_code") or data.get("usercode")
    if resp.status_code != 200 or not data.get("device_auth_id") or not user_code:
        raise OAuthError(f"device login refused: HTTP {resp.status_code}", error_code(data))
    try:
        interval = max(1.0, float(data.get("interval") or 5))
    except (TypeError, ValueError):
        interval = 5.0
    return {"device_auth_id": data["device_auth_id"], "user_code": user_code,
            "interval": interval, "verification_url": f"{issuer}/codex/device"}


def device_finish(cfg, device: dict, timeout: float = 900.0) -> dict:
    """Poll until the user approves, then exchange the code for tokens."""
    issuer = cfg.oauth.issuer.rstrip("/")
    body = {"device_auth_id": device["device_auth_id"], "user_code": device["user_code"]}
    deadline = time.monotonic() + timeout
    while True:
        try:
            resp = requests.post(f"{issuer}/api/accounts/deviceauth/token", json=body,
                                 timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise OAuthError(f"device login failed: {exc.__class__.__name__}") from None
        data = _json(resp)
        if resp.status_code == 200 and data.get("authorization_code"):
            return exchange_code(cfg, data["authorization_code"],
                                 f"{issuer}/deviceauth/callback", data.get("code_verifier", ""))
        if resp.status_code not in (403, 404):  # 403/404: not approved yet
            raise OAuthError(f"device login refused: HTTP {resp.status_code}", error_code(data))
        if time.monotonic() + device["interval"] > deadline:
            raise OAuthError(f"the code was not approved within {int(timeout)} s")
        time.sleep(device["interval"])
