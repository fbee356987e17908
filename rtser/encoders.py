"""Pretrained encoders as ONNX sessions: 16 kHz audio -> every Whisper hidden state / GE2E embedding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from .frontend import HOP, SAMPLE_RATE, log_mel, mel_power

MAX_SECONDS = 30.0  # Whisper's position table covers 30 s
MIN_SAMPLES = 4 * HOP


def one_blas_thread() -> None:
    """numpy's BLAS (the front end's mel matrix products) on one thread in this process. Its default,
    a thread per core, doubled the CPU of a stream for no speed (``bench/batch.py``); throughput
    comes from more streams. Called by the CLI and by batch workers, not by the library."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1, user_api="blas")


def session(path: Path, threads: int = 1, spinning: bool = False) -> ort.InferenceSession:
    """One inference session. Idle worker threads do not spin by default: between two small runs the
    spinning threads take the cores that the VAD, resampler and front end need (``bench/stream.py``
    measures it: with 2 threads on 2 cores, spinning made ``rtser file`` slower than 1 thread)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class Encoders:
    """``{name: onnx path}`` -> callable giving ``{name: (L+1, T', D) hidden states or (256,)}``.
    Names starting with ``ge2e`` take the 40-band power mel; all others Whisper's log-mel."""

    def __init__(self, paths: dict[str, Path], threads: int = 1, spinning: bool = False):
        self.sessions = {name: session(p, threads, spinning) for name, p in paths.items()}

    def __call__(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        audio = np.asarray(audio, np.float32)[: int(MAX_SECONDS * SAMPLE_RATE)]
        if len(audio) < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))
        out, mel = {}, None
        for name, sess in self.sessions.items():
            if name.startswith("ge2e"):
                out[name] = sess.run(None, {"mels": mel_power(audio)[None]})[0][0]
            else:
                mel = log_mel(audio) if mel is None else mel
                out[name] = sess.run(None, {"mel": mel[None]})[0][:, 0]
        return out
