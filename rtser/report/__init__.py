"""Labels for people: event formats, call summaries, timeline plots, and the one label vocabulary
(negative labels, colours) that all of them and the live page use.

Imports ``rtser.pipeline`` (its events) and ``rtser.errors``."""
