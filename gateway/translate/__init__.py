"""gateway.translate
~~~~~~~~~~~~~~~~~~~~
Pure (I/O-free) translation between client dialects and the Responses API.
"""
