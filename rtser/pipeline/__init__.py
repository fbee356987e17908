"""The analysis, protocol- and terminal-free: audio -> 16 kHz frames -> VAD -> segments -> chunk
features (encoders) -> pooled windows -> head -> smoothing -> events. ``Recognizer`` is its API.

Imports ``rtser.audio``, ``rtser.bundle`` and ``rtser.errors``; never a server, a terminal or
torch."""
