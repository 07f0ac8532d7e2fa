"""gateway.app
~~~~~~~~~~~~~
``create_app(config)``: the Flask application factory.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from flask import Flask
from flask import g
from flask import request
from werkzeug.exceptions import HTTPException

from . import config as config_mod
from .accounts.pool import AccountPool
from .api import admin
from .api import chat
from .api import images
from .api import common
from .api import gemini
from .api import key_usage
from .api import messages
from .api import meta
from .api import responses
from .api import stored_responses
from .api import websocket
from .auth import AdminKeys, ClientKeys
from .security.limits import Ceilings, Released, Shape
from .dialects.chat import errors as chat_errors
from .dialects.gemini import errors as gemini_errors
from .dialects.messages import errors as messages_errors
from .dialects.responses import errors as responses_errors
from .errors import GatewayError
from .executor import Executor
from .policy.gate import open_gate
from .record import Outcome, log_sink
from .responses_store import Keeper, open_keeper
from .usage.service import UsageService

# Each dialect's error shape; routes outside a dialect answer OpenAI's.
ERROR_BODIES = {
    "responses": responses_errors.error_body,
    "chat": chat_errors.error_body,
    "messages": messages_errors.error_body,
    "gemini": gemini_errors.error_body,
}
ERROR_STATUS = {"messages": messages_errors.error_status}


def dialect_of(path: str) -> str | None:
    """The dialect a route belongs to, for errors raised before its blueprint ran."""
    if path.startswith("/v1/messages"):
        return "messages"
    if path.startswith("/v1/chat/"):
        return "chat"
    if path.startswith(("/v1beta/", "/v1/models/")):
        return "gemini"
    return None

log = logging.getLogger("gateway")


@dataclass
class State:
    """What the endpoints share, built once per worker."""

    config: config_mod.Config
    keys: ClientKeys
    pool: AccountPool
    executor: Executor
    usage: UsageService | None = None
    admin_keys: AdminKeys | None = None
    ceilings: Ceilings | None = None  # per-key slots in this worker (gateway.security.limits)
    responses_store: Keeper | None = None  # None: responses.store = false

    @property
    def keepalive(self) -> float:
        return self.config.server.keepalive_seconds


def create_app(config: config_mod.Config | None = None) -> Flask:
    cfg = config or config_mod.load()
    _configure_logging(cfg.server.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.server.max_body_bytes
    pool = AccountPool(cfg)
    keys = ClientKeys(cfg.auth.client_keys, cfg.keys_file, fail_closed=True,
                      required=not config_mod.is_loopback_bind(cfg.server.bind))
    usage = UsageService(cfg, pool)  # usage rows, metrics, quota polls (gateway.usage)
    gate = open_gate(cfg, pool.state.link)  # per-key policy (gateway.policy)
    app.extensions["gateway"] = State(
        cfg, keys, pool, Executor(cfg, pool, sinks=(log_sink, *usage.sinks), gate=gate), usage,
        AdminKeys(ClientKeys(cfg.auth.admin_keys, cfg.admin_keys_file), keys),
        Ceilings(Shape.of(cfg.server)), open_keeper(cfg, getattr(pool, "state", None)))
    app.register_blueprint(responses.bp)
    app.register_blueprint(stored_responses.bp)
    app.register_blueprint(websocket.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(messages.bp)
    app.register_blueprint(images.bp)
    app.register_blueprint(gemini.bp)
    app.register_blueprint(meta.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(key_usage.bp)
    app.wsgi_app = Released(usage.wrap(app.wsgi_app))  # gauges; per-key slots given back
    _register_errors(app)
    return app


def close(app: Flask) -> None:
    """Stop what *app* runs beside its requests, for a host that drops an app and
    goes on (tests build hundreds): the usage writer (its queued rows written) and
    with it the quota polls, the response store's queue written, the account pool's
    state watch. A worker never calls it: its threads end with the process."""
    state = app.extensions.get("gateway")
    if state is None:
        return
    if state.usage is not None:
        state.usage.close()
    if state.responses_store is not None:
        state.responses_store.flush()
    state.pool.close()


def _routes(app: Flask) -> str:
    """The routes the app serves, read from its URL map so the 404 message
    cannot fall behind a new blueprint (Codex CLI's ``/backend-api/codex/``
    aliases are left out: no one types them)."""
    rules = dict.fromkeys(re.sub(r"<[^>]*>", "*", r.rule) for r in app.url_map.iter_rules()
                          if r.endpoint != "static" and not r.rule.startswith("/backend-api/"))
    return ", ".join(rules)


def _register_errors(app: Flask) -> None:
    def render(err: GatewayError):
        record = g.get("record")
        if record is not None:
            record.finish(err.status, Outcome.REJECTED, err.code)
        dialect = g.get("dialect") or dialect_of(request.path)
        body = ERROR_BODIES.get(dialect, responses_errors.error_body)(err)
        status = ERROR_STATUS.get(dialect, lambda e: e.status)(err)
        return common.json_response(body, status, err.headers())

    @app.errorhandler(GatewayError)
    def _gateway_error(err: GatewayError):
        return render(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        messages = {
            404: f"Unknown route: this gateway serves {_routes(app)}.",
            405: "Method not allowed for this route.",
            413: "The request body is larger than the gateway's limit "
                 f"({app.config['MAX_CONTENT_LENGTH']} bytes; server.max_body_bytes).",
        }
        err = GatewayError(status, messages.get(status, exc.description or exc.name),
                           code={404: "not_found", 405: "method_not_allowed",
                                 413: "request_too_large"}.get(status))
        return render(err)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return render(GatewayError(500, "Internal gateway error.", code="internal_error"))


def _configure_logging(level: str) -> None:
    """One line per request on stderr (gunicorn's error log), unless the host set logging up."""
    logger = logging.getLogger("gateway")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
