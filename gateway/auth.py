"""gateway.auth
~~~~~~~~~~~~~~
Client API keys: constant-time checks, a non-secret id per key, and a keys
file that holds digests, never keys.

The id (``key-<12 hex of sha256>``) is what continuity scopes on and what logs
show; the raw key never leaves this module, and is never written anywhere.

The keys file has one ``<name> sha256:<64 hex>`` line per key. An unsalted
SHA-256 is enough, and a slow or salted hash would buy nothing: ``keys
create`` makes 256-bit random keys, which no dictionary or rainbow table
covers, so a digest copied with the state directory cannot be turned back
into a key; and one fast hash per request lets every request compare against
every stored digest with ``hmac.compare_digest`` (constant time, whichever
key matches). A pepper would have to live somewhere outside the state
directory and buys nothing against such keys either.

Fail closed: once a keys file has held a key, a marker file beside it
(``<keys file>.required``) remembers that, and an empty or missing keys file
then refuses every request (401 ``client_keys_missing``, one log line) until
keys exist again; a public bind always needs keys. Delete the marker to serve
keyless local clients again on purpose.

A file written by an older version (``<key>`` or ``<name> <key>`` per line) is
rewritten hashed on first read, atomically, 0600.
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import GatewayError
from .statefiles import FILE_MODE, atomic_write, private_dir

log = logging.getLogger("gateway.auth")

DIGEST_PREFIX = "sha256:"
_DIGEST_RE = re.compile(r"sha256:([0-9a-fA-F]{64})")


def key_id(key: str) -> str:
    return _id(_digest(key))


def config_key_id(value: str) -> str:
    """The id of a config key, given as the key or as its ``sha256:<hex>``."""
    return _id(_config_digest(value))


def new_key() -> str:
    return "cgw-" + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key: ``sha256:<hex>``."""
    return DIGEST_PREFIX + _digest(key).hex()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _id(digest: bytes) -> str:
    return "key-" + digest.hex()[:12]


@dataclass(frozen=True)
class KeyEntry:
    """One accepted key, as its digest."""

    name: str
    digest: bytes

    @property
    def id(self) -> str:
        return _id(self.digest)


def _stored_digest(text: str) -> bytes | None:
    """The digest in a ``sha256:<hex>`` token, or None for anything else."""
    m = _DIGEST_RE.fullmatch(text)
    return bytes.fromhex(m.group(1)) if m else None


def _config_digest(value: str) -> bytes:
    return _stored_digest(value) or _digest(value)


def parse_keys(text: str) -> tuple[list[KeyEntry], bool]:
    """The entries of a keys file, and whether any line still holds a plain key."""
    entries, plain = [], False
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        name = " ".join(parts[:-1]) or "-"
        digest = _stored_digest(parts[-1])
        if digest is None:
            plain = True
            digest = _digest(parts[-1])
        entries.append(KeyEntry(name, digest))
    return entries, plain


def hash_lines(text: str) -> str:
    """*text* with every plain key replaced by its digest; comments, blank lines
    and names are kept as they are."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#") and _stored_digest(parts[-1]) is None:
            line = f"{' '.join(parts[:-1]) or '-'} {hash_key(parts[-1])}"
        out.append(line)
    return "".join(f"{line}\n" for line in out)


def safe_name(name: str) -> str:
    """A key name that stays one token on its line and never starts a comment."""
    return re.sub(r"\s+", "-", name.strip()).lstrip("#") or "client"


@contextlib.contextmanager
def _locked(path: Path, create: bool = False):
    """Exclusive ``flock`` on the keys file itself, so ``keys create`` and a
    migrating worker never lose each other's lines. The file is replaced, not
    rewritten, so the lock is retaken until it is held on the current file."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    while True:
        fd = os.open(path, flags, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                yield
                return
        finally:
            os.close(fd)


def read_keys_file(path: str | Path) -> list[KeyEntry]:
    """The entries of the keys file (none when it is missing), hashing a
    plain-text file in place first. When the file cannot be rewritten (a
    read-only location), its keys still work and a warning says why."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    entries, plain = parse_keys(text)
    if plain:
        try:
            with _locked(path):
                text = path.read_text()
                if parse_keys(text)[1]:
                    atomic_write(path, hash_lines(text))
        except OSError as exc:
            log.warning("keys file %s holds plain-text keys and cannot be rewritten hashed: %s",
                        path, exc.strerror or exc.__class__.__name__)
        else:
            log.info("keys file %s: plain-text keys replaced by their sha256 digests", path)
            entries = parse_keys(path.read_text())[0]
    return entries


def add_key(path: str | Path, name: str, key: str) -> KeyEntry:
    """Add a key to the keys file (as its digest; the file 0600, its directory 0700)."""
    path = Path(path)
    private_dir(path.parent)
    entry = KeyEntry(safe_name(name), _digest(key))
    with _locked(path, create=True):
        text = hash_lines(path.read_text())
        atomic_write(path, f"{text}{entry.name} {hash_key(key)}\n")
    _mark_required(path)
    return entry


def required_marker(path: str | Path) -> Path:
    """The file that says this keys file has held keys (so it must keep some)."""
    return Path(f"{path}.required")


def _mark_required(path: Path) -> None:
    marker = required_marker(path)
    if not marker.exists():
        try:
            atomic_write(marker, "client keys were configured here: an empty or missing keys "
                         "file refuses every request (delete this file to allow that)\n")
        except OSError as exc:
            log.warning("cannot write %s: %s", marker, exc.strerror or exc.__class__.__name__)


class ClientKeys:
    """The accepted keys: from config plus a keys file that is re-read when it changes.

    A config key may be given as its ``sha256:<hex>`` digest (``codex-gateway
    keys create`` prints it), so a config file need not hold the key either."""

    def __init__(self, keys: tuple[str, ...] = (), keys_file: str | Path | None = None, *,
                 required: bool = False, fail_closed: bool = False):
        self._static = [_config_digest(k) for k in keys if k]
        self._file = Path(keys_file) if keys_file else None
        self._sig: tuple | None = None
        self._digests: list[tuple[bytes, str]] = [(d, _id(d)) for d in self._static]
        self._required = required  # a public bind: never serve without a key
        self._fail_closed = fail_closed and self._file is not None  # see the module docstring
        self._had_keys = False
        self._refusing = False

    def _refresh(self) -> None:
        if self._file is None:
            return
        try:
            st = self._file.stat()
            sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            sig = None
        if sig == self._sig:
            return
        entries = read_keys_file(self._file) if sig else []
        try:  # after a migration the file is a new one: remember that one
            st = self._file.stat()
            self._sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            self._sig = None
        self._digests = [(d, _id(d)) for d in self._static] + \
            [(e.digest, e.id) for e in entries]
        if entries and self._fail_closed and not self._had_keys:
            self._had_keys = True
            _mark_required(self._file)

    def _must_have_keys(self) -> bool:
        return self._required or (self._fail_closed and (
            self._had_keys or required_marker(self._file).exists()))

    @property
    def enabled(self) -> bool:
        self._refresh()
        return bool(self._digests)

    def check(self, authorization: str | None, forwarded: bool = False) -> str | None:
        """Return the principal id for a request, or None when keys are off.

        Raises a 401 GatewayError when keys are on and the header is missing or
        wrong. Every stored digest is compared, so timing does not reveal which.
        """
        self._refresh()
        if not self._digests and self._must_have_keys():
            if not self._refusing:
                self._refusing = True
                log.error("no client keys (keys file %s empty or missing): refusing every "
                          "request until keys exist again", self._file)
            raise GatewayError(
                401, "This gateway requires client keys and has none right now (its keys file "
                "is empty or missing): every request is refused until its operator restores "
                "the keys.", code="client_keys_missing")
        if self._refusing and self._digests:
            self._refusing = False
            log.warning("client keys are back (keys file %s): serving again", self._file)
        if not self._digests:
            if forwarded:
                raise GatewayError(
                    401, "This gateway has no client keys, so it only serves clients on its own "
                    "host, and this request came through a proxy. Create a key with "
                    "`codex-gateway keys create` and send it as 'Authorization: Bearer <key>'.",
                    code="client_keys_required")
            return None
        if not authorization:
            raise GatewayError(401, "Missing API key: send 'Authorization: Bearer <key>'.",
                               code="missing_api_key")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GatewayError(401, "Malformed Authorization header: expected 'Bearer <key>'.",
                               code="invalid_api_key")
        found = self._match(token.strip())
        if found is None:
            raise GatewayError(401, "Incorrect API key provided.", code="invalid_api_key")
        return found

    def match(self, key: str) -> str | None:
        """The id of *key* if it is one of these keys (every digest compared)."""
        self._refresh()
        return self._match(key)

    def _match(self, key: str) -> str | None:
        digest = _digest(key)
        found = None
        for stored, ident in self._digests:
            if hmac.compare_digest(stored, digest):
                found = ident
        return found


ADMIN_REALM = 'Basic realm="codex-gateway admin", charset="UTF-8"'


def presented_key(authorization: str | None) -> str | None:
    """The key in ``Bearer <key>`` or in HTTP Basic's password (the user name is
    ignored: browsers ask for one). None when there is none."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


class AdminKeys:
    """Who may read /metrics and /status: admin keys only.

    No key (or an unreadable header) is 401, a client key is 403 (it is a valid
    key, just not for this), an unknown key 401. Admin keys are not client
    keys: they do not open the API endpoints."""

    def __init__(self, admin: ClientKeys, clients: ClientKeys):
        self.admin = admin
        self.clients = clients

    def check(self, authorization: str | None) -> str:
        key = presented_key(authorization)
        if key is None:
            hint = "" if self.admin.enabled else (
                " No admin key exists yet: create one with `codex-gateway keys create --admin`.")
            raise GatewayError(401, "Admin key required: send 'Authorization: Bearer <admin key>' "
                               "(or HTTP Basic with the admin key as the password)." + hint,
                               code="missing_api_key")
        found = self.admin.match(key)
        if found is not None:
            return found
        if self.clients.match(key) is not None:
            raise GatewayError(403, "This is a client key; /metrics and /status need an admin key "
                               "(`codex-gateway keys create --admin`, or auth.admin_keys).",
                               code="admin_key_required")
        raise GatewayError(401, "Incorrect admin key provided.", code="invalid_api_key")
