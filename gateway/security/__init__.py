"""gateway.security
~~~~~~~~~~~~~~~~~~~
What keeps the gateway safe to share and to put on a network (docs/security.md):

* :mod:`.limits`: per-key ceilings on open WebSockets and requests in progress,
  and the threads no key may take;
* :mod:`.wslimits`: a client WebSocket's frame and message sizes counted on the
  wire, before any decoding;
* :mod:`.scrub`: the one place text from outside (upstream errors, client-named
  models) is made safe to show, log or count;
* :mod:`.access_log`: gunicorn's access log without secrets a client put in a URL.

Nothing is imported here, so a module that needs one of them pulls in no other
(``access_log`` imports gunicorn).
"""
