"""gateway.app
~~~~~~~~~~~~~
``create_app(config)``: the Flask application factory.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import config as config_mod
from .accounts.pool import AccountPool
from .api import chat
from .api import common
from .api import meta
from .api import responses
from .api import websocket
from .auth import ClientKeys
from .errors import GatewayError
from .executor import Executor

log = logging.getLogger("gateway")


@dataclass
class State:
    """What the endpoints share, built once per worker."""

    config: config_mod.Config
    keys: ClientKeys
    pool: AccountPool
    executor: Executor

    @property
    def keepalive(self) -> float:
        return self.config.server.keepalive_seconds


def create_app(config: config_mod.Config | None = None, pool=None) -> Flask:
    cfg = config or config_mod.load()
    _configure_logging(cfg.server.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = cfg.server.max_body_bytes
    keys_file = cfg.auth.keys_file or str(cfg.state_dir / "client_keys")
    pool = pool or AccountPool(cfg)
    app.extensions["gateway"] = State(cfg, ClientKeys(cfg.auth.client_keys, keys_file), pool,
                                      Executor(cfg, pool))
    app.register_blueprint(responses.bp)
    app.register_blueprint(websocket.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(meta.bp)
    _register_errors(app)
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(GatewayError)
    def _gateway_error(err: GatewayError):
        return common.error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        messages = {
            404: "Unknown route: this gateway serves /v1/responses, /v1/chat/completions, "
                 "/v1/models and /healthz.",
            405: "Method not allowed for this route.",
            413: "The request body is larger than the gateway's limit "
                 f"({app.config['MAX_CONTENT_LENGTH']} bytes; server.max_body_bytes).",
        }
        err = GatewayError(status, messages.get(status, exc.description or exc.name),
                           code={404: "not_found", 405: "method_not_allowed",
                                 413: "request_too_large"}.get(status))
        return common.error_response(err)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return common.error_response(GatewayError(500, "Internal gateway error.",
                                                  code="internal_error"))


def _configure_logging(level: str) -> None:
    """One line per request on stderr (gunicorn's error log), unless the host set logging up."""
    logger = logging.getLogger("gateway")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
