"""gateway.dialects
~~~~~~~~~~~~~~~~~~~
Pure logic of the client dialects the gateway speaks (no web framework, no I/O).
"""
