"""``rtser serve``: live calls from contact-center platforms in, emotion events out. ``app`` (HTTP
and WebSocket routes), ``hub`` (calls and where their events go), one module per protocol
(``audiohook``, ``twilio``, ``audiosocket``), ``web/`` (the supervisor's live view).

Imports ``rtser.pipeline``, ``rtser.report``, ``rtser.audio``, ``rtser.bundle``, ``rtser.errors``
and the ``websockets`` library (the ``serve`` extra)."""
