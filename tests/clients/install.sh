#!/bin/sh
# Installs what the deployment and client tests need, when it is missing:
# Debian packages (nginx, redis-server, openssl, curl, systemd-analyze, strace, the util-linux,
# iproute2 and passwd tools the VPS simulation uses, git, node + npm, chromium for
# the headless-browser test of /status) and
# the pinned npm clients (package.json + package-lock.json). Idempotent, and fast
# (a few stat calls) when everything is present: it runs on every `make test`.
# As root (CI) a failed install fails; otherwise it says what is missing and the
# tests that need it skip (outside CI only).
set -e
here=$(cd "$(dirname "$0")" && pwd)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=""
have nginx || missing="$missing nginx-light"
have redis-server || missing="$missing redis-server"
have openssl || missing="$missing openssl"
have curl || missing="$missing curl"
have systemd-analyze || missing="$missing systemd"
have strace || missing="$missing strace"
have unshare && have runuser && have setpriv || missing="$missing util-linux"
have ip || missing="$missing iproute2"
have useradd || missing="$missing passwd"
have git || missing="$missing git"
have node && have npm || missing="$missing nodejs npm"
have chromium || have chromium-browser || missing="$missing chromium"

if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "installing Debian packages:$missing"
    apt-get update -qq >/dev/null
    # nginx-light is nginx on Debian 12 (a transitional name); plain nginx elsewhere.
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
        >/dev/null 2>&1 \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           $(echo "$missing" | sed 's/nginx-light/nginx/') >/dev/null
  else
    echo "missing:$missing; install them (apt-get install$missing) to run the deployment" \
         "and client tests" >&2
  fi
fi

# Codex CLI 0.169.0 and 0.171.0 side by side under npm aliases (codex-0169, codex-0171):
# both ship a `codex` bin, so the tests run each one's bin/codex.js by path.
# Claude Code's package asks for node >= 22 (an EBADENGINE warning on Debian 12's node 20),
# but only its postinstall runs on node: it copies the native binary of the platform
# package over bin/claude.exe, and `claude` then runs without node.
# `npm install` (not `npm ci`): opencode-ai lists platform packages that the registry
# does not serve for 1.18.33, so the lock cannot name them and `npm ci` refuses it.
if [ -f "$here/package.json" ] && have npm; then
  stamp="$here/node_modules/.installed"
  if [ ! -f "$stamp" ] || [ "$here/package.json" -nt "$stamp" ] \
     || [ "$here/package-lock.json" -nt "$stamp" ] \
     || [ ! -x "$here/node_modules/codex-0169/bin/codex.js" ] \
     || [ ! -x "$here/node_modules/codex-0171/bin/codex.js" ] \
     || [ ! -x "$here/node_modules/.bin/opencode" ] || [ ! -x "$here/node_modules/.bin/claude" ] \
     || [ ! -x "$here/node_modules/.bin/gemini" ]; then
    echo "installing pinned npm clients (tests/clients/package-lock.json)"
    (cd "$here" && npm install --no-audit --no-fund --loglevel=error >/dev/null && touch "$stamp")
  fi
fi
