"""gateway.clientws
~~~~~~~~~~~~~~~~~~~~
The client WebSocket on ``/v1/responses`` (Codex CLI's transport):
:mod:`.connection` frames the socket gunicorn hands over, :mod:`.session`
serves one connection's ``response.create`` frames through the executor. The
upgrade itself is the thin view in :mod:`gateway.api.websocket`; the frames'
meaning (pure) is :mod:`gateway.dialects.responses.ws_frames` and ``ws_memory``.
"""
