"""gateway.dialects.responses
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The Responses API dialect; here, what its WebSocket transport needs on top of HTTP.
"""
