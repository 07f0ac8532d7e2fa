# gunicorn configuration for codex-gateway: `gunicorn -c deploy/gunicorn.conf.py gateway.wsgi:app`.
# The values and the reasons for them live in gateway/gunicorn_conf.py, so the
# installed package (`codex-gateway serve`) and this file never disagree.
from gateway.gunicorn_conf import *  # noqa: F401,F403
