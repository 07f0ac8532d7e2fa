"""gateway.dialects.images
~~~~~~~~~~~~~~~~~~~~~~~~~~~~
OpenAI's Images API (``/v1/images/generations``, ``/v1/images/edits``) over a
Responses request that carries the ``image_generation`` tool: ``request``
builds that request from the client's fields and files, ``events`` turns the
answer (or its partial-image events) back into the Images API's shapes. Pure:
no Flask, no I/O.
"""
