"""gateway.state.errors
~~~~~~~~~~~~~~~~~~~~~~~
The one exception a shared state store raises.
"""
from __future__ import annotations


class StateUnavailable(Exception):
    """The shared state store cannot be reached now (and nothing is cached to
    serve instead). The message names the store and the reason, never a
    password. The link logs each outage once per instance, so others do not."""

    shared_outage = True
