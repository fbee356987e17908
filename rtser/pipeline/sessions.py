"""How rtser runs ONNX graphs (encoders, heads, the VAD) and numpy's BLAS: the thread settings
measured fastest on a small box."""

from __future__ import annotations

import functools
from pathlib import Path

import onnxruntime as ort


def one_blas_thread() -> None:
    """numpy's BLAS (the front end's mel matrix products) on one thread in this process. Its
    default, a thread per core, doubled the CPU of a stream for no speed (``bench/batch.py``);
    throughput comes from more streams. Called by the CLI and by batch workers, not by the
    library."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def session(path: Path, threads: int = 1, spinning: bool = False) -> ort.InferenceSession:
    """The inference session of a graph file. Idle worker threads do not spin by default: between
    two small runs the spinning threads take the cores that the VAD, resampler and front end need
    (``bench/stream.py`` measures it: with 2 threads on 2 cores, spinning made ``rtser file`` slower
    than 1 thread).

    A process opens each file once per setting: the languages of a bundle share its encoders and
    its VAD (onnxruntime runs one session from many threads), so a server that labels calls in six
    languages does not hold six copies of them. A file rewritten in place is opened again."""
    path = Path(path).resolve()
    return _open(path, path.stat().st_mtime_ns, threads, spinning)


@functools.lru_cache(maxsize=64)
def _open(path: Path, mtime_ns: int, threads: int, spinning: bool) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
