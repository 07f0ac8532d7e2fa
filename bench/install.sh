#!/bin/sh
# What `make bench` / `make soak` need beyond the test extra, when missing:
# hey and nginx (Debian packages) and, in the given Python environment,
# matplotlib (the plots) and gevent (measured beside gthread). Idempotent.
# Usage: sh bench/install.sh [python]
set -e
PY=${1:-python3}
need_apt=""
command -v hey >/dev/null 2>&1 || need_apt="$need_apt hey"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then need_apt="$need_apt nginx-light"; fi
if [ -n "$need_apt" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: installing$need_apt from Debian packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt >/dev/null
  else
    echo "bench: please install$need_apt (apt-get install$need_apt)" >&2
    exit 1
  fi
fi
for mod in matplotlib gevent; do
  if ! "$PY" -c "import $mod" >/dev/null 2>&1; then
    echo "bench: installing $mod into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip --disable-pip-version-check -q install "$mod"
  fi
done
