"""rtser: real-time multilingual speech emotion recognition on the edge (numpy + onnxruntime).

The package, from the bottom up (each floor imports only the floors below it):

- ``errors``: what users are told;
- ``audio``: decoding, G.711, resampling to 16 kHz;
- ``bundle``: the shipped models and the loader of any bundle;
- ``pipeline``: VAD, features, heads, smoothing, streams, ``Recognizer``;
- ``report``: labels for people: formats, summaries, plots, the label vocabulary;
- ``serve``: the contact-center server (AudioHook, Twilio, AudioSocket, the live view);
- the applications: ``cli``, ``listen``, ``batch``, ``enroll``.
"""

from .errors import RtserError
from .pipeline.events import Event, Prediction
from .pipeline.recognizer import Recognizer
from .pipeline.vad import VadConfig

__version__ = "0.1.0"
__all__ = ["Recognizer", "Prediction", "Event", "VadConfig", "RtserError", "__version__"]
