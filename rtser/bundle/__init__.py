"""The model bundle: the shipped encoders, heads and VAD (the files beside this one), and the loader
that reads any bundle folder's ``manifest.json`` and verifies its files by sha256.

Imports only ``rtser.errors``."""

from .loader import DEFAULT, FORMAT, Bundle, EnrolmentPrior, HeadFormat, Language, file_hash, sha256

__all__ = [
    "DEFAULT",
    "FORMAT",
    "Bundle",
    "EnrolmentPrior",
    "HeadFormat",
    "Language",
    "file_hash",
    "sha256",
]
