"""rtser: real-time multilingual speech emotion recognition on the edge (numpy + onnxruntime)."""
from .errors import RtserError
from .events import Event, Prediction
from .recognizer import Recognizer
from .vad import VadConfig

__version__ = "0.1.0"
__all__ = ["Recognizer", "Prediction", "Event", "VadConfig", "RtserError", "__version__"]
