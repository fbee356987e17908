"""``rtser batch``: score an archive of recorded calls into Parquet, on a local process pool or a
Ray cluster, resumably.

Every finished call is committed at once as its own part files (written under a temporary name,
then renamed), so a run killed midway loses only the calls in flight. At the end the parts are
merged into ``events.parquet`` and ``calls.parquet`` (sorted by call and event order, so a local
and a Ray run write the same content). A call is done when ``calls.parquet`` or a part holds its
key: the sha256 of its audio, its call id, the bundle's manifest and the analysis settings."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from .bundle import file_hash
from .errors import RtserError, require

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au"}


@dataclass(frozen=True)
class Job:
    """One call to score: its audio, its id in the output, its language (None: the run's)."""

    path: str
    call_id: str
    lang: str | None


@dataclass(frozen=True)
class Settings:
    """The analysis settings of a run (part of every call's key)."""

    lang: str | None
    split: bool
    vad: str
    bundle: str | None


@dataclass(frozen=True)
class Scored:
    """A worker's answer for one call: its rows, or one line saying why it failed."""

    key: str
    events: list[dict] | None = None
    call: dict | None = None
    error: str | None = None


def _pa():
    pa = require("pyarrow", "batch", "rtser batch writes Parquet")
    return pa, require("pyarrow.parquet", "batch", "rtser batch writes Parquet")


def collect(inputs: list[str]) -> list[Job]:
    """Files, folders (searched recursively for audio) and CSV manifests (``path`` and optional
    ``lang`` and ``call_id``; relative paths are read from the CSV's folder)."""
    jobs: list[Job] = []
    for item in map(Path, inputs):
        if item.is_dir():
            for p in sorted(
                p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
            ):
                jobs.append(Job(str(p), str(p.relative_to(item)), None))
        elif item.suffix.lower() == ".csv":
            jobs += _manifest(item)
        elif item.exists():
            jobs.append(Job(str(item), item.name, None))
        else:
            raise RtserError(
                f"{item}: no such file or folder; give audio files, folders or a CSV manifest"
            )
    ids = [j.call_id for j in jobs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RtserError(
            f"call_id {dupes[0]!r} names more than one input; give each call its own id"
        )
    if not jobs:
        raise RtserError("no audio found in the inputs")
    return jobs


def _manifest(path: Path) -> list[Job]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or "path" not in rows[0]:
        raise RtserError(
            f"{path}: a manifest needs a 'path' column (and optionally 'lang', 'call_id')"
        )
    return [
        Job(str(path.parent / r["path"]), r.get("call_id") or r["path"], r.get("lang") or None)
        for r in rows
    ]


def call_key(job: Job, settings: Settings, bundle_hash: str) -> str:
    """What makes a call done: its audio, id and language, the settings and the bundle."""
    h = file_hash(Path(job.path))
    h.update(
        json.dumps(
            [job.call_id, job.lang or settings.lang, settings.split, settings.vad, bundle_hash]
        ).encode()
    )
    return h.hexdigest()[:32]


class Scorer:
    """One worker's models, loaded once (per language), and the scoring of one call."""

    def __init__(self, settings: Settings):
        from .pipeline.sessions import one_blas_thread

        one_blas_thread()  # a worker is one stream at a time: more workers, not more threads
        self.settings = settings
        self.recognizers: dict = {}

    def recognizer(self, lang):
        from .pipeline.recognizer import Recognizer
        from .pipeline.vad import VadConfig

        if lang not in self.recognizers:
            self.recognizers[lang] = Recognizer(
                lang, bundle=self.settings.bundle, vad=VadConfig.named(self.settings.vad)
            )
        return self.recognizers[lang]

    def score(self, job: Job, key: str) -> Scored:
        from .report.summary import CALL_CUES, conversation, summarize

        try:
            rec = self.recognizer(job.lang or self.settings.lang)
            events, info = rec.file(job.path, split=self.settings.split)
            events = list(events)
        except RtserError as e:
            return Scored(key, error=str(e))
        except Exception as e:  # one bad file never stops the batch
            return Scored(key, error=f"{type(e).__name__}: {e}")
        rows = [
            {"call_id": job.call_id, "path": job.path, "channel": e.channel, **e.to_dict()}
            for e in events
        ]
        summary, cues = summarize(events), conversation(events)
        segments = [e for e in events if e.type == "segment"]
        call = {
            "call_id": job.call_id,
            "path": job.path,
            "key": key,
            "lang": rec.lang,
            "duration_s": round(info.duration, 3),
            "channels": info.channels if self.settings.split else 1,
            "segments": len(segments),
            "speech_s": round(sum(e.end - e.start for e in segments), 3),
            "turns": sum(e.final for e in events),
            "summary": json.dumps({str(k): v for k, v in summary.items()}, allow_nan=False),
            **{k: cues[k] for k in CALL_CUES},
        }
        return Scored(key, rows, call)


_worker: Scorer | None = None


def _init_worker(settings: Settings) -> None:
    global _worker
    _worker = Scorer(settings)


def _score(job: Job, key: str) -> Scored:
    return _worker.score(job, key)


class Output:
    """The output folder: part files committed one call at a time, merged at the end."""

    def __init__(self, out: Path):
        self.out, self.parts = out, out / "parts"
        self.parts.mkdir(parents=True, exist_ok=True)

    def done_keys(self) -> set[str]:
        pa, pq = _pa()
        keys = set()
        if (self.out / "calls.parquet").exists():
            keys |= set(
                pq.read_table(self.out / "calls.parquet", columns=["key"]).column("key").to_pylist()
            )
        keys |= {p.name.split(".")[0] for p in self.parts.glob("*.calls.parquet")}
        return keys

    def commit(self, result: Scored) -> None:
        pa, pq = _pa()
        key = result.key
        events = pa.Table.from_pylist(result.events, schema=event_schema(pa))
        calls = pa.Table.from_pylist([result.call], schema=call_schema(pa))
        for name, table in (
            ("events", events),
            ("calls", calls),
        ):  # calls last: it marks the call done
            tmp = self.parts / f".{key}.{name}.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, self.parts / f"{key}.{name}.parquet")

    def pending(self) -> bool:
        """Whether parts wait to be merged (this run's, or those a killed run left)."""
        return any(self.parts.glob("*.parquet"))

    def merge(self) -> dict:
        """Fold the parts into events.parquet and calls.parquet (atomically); remove the parts."""
        pa, pq = _pa()
        import pyarrow.compute as pc

        counts = {}
        for name, schema, order in (
            ("events", event_schema(pa), [("call_id", "ascending"), ("seq", "ascending")]),
            ("calls", call_schema(pa), [("call_id", "ascending")]),
        ):
            parts = sorted(self.parts.glob(f"*.{name}.parquet"))
            tables = [pq.read_table(p, schema=schema) for p in parts]
            if (self.out / f"{name}.parquet").exists():
                # a run killed after writing the merged files, before removing the parts, merges
                # those
                # parts again: their calls' rows replace the merged ones instead of doubling them
                merged = pq.read_table(self.out / f"{name}.parquet", schema=schema)
                again = pa.array(
                    {c for t in tables for c in t.column("call_id").to_pylist()}, pa.string()
                )
                tables.insert(
                    0, merged.filter(pc.invert(pc.is_in(merged["call_id"], value_set=again)))
                )
            table = pa.concat_tables(tables) if tables else schema.empty_table()
            table = table.sort_by(order)
            tmp = self.out / f".{name}.parquet.tmp"
            pq.write_table(table, tmp)
            os.replace(tmp, self.out / f"{name}.parquet")
            counts[name] = table.num_rows
        for p in self.parts.glob("*.parquet"):
            p.unlink()
        return counts


# The Parquet columns in order, as name:type (pyarrow's type names; map: label -> probability).
EVENT_COLUMNS = (
    "call_id:string path:string channel:int32 seq:int64 type:string turn:int64 final:bool_ "
    "start:float64 end:float64 lang:string label:string arousal:float64 probs:map"
)
CALL_COLUMNS = (
    "call_id:string path:string key:string lang:string duration_s:float64 channels:int32 "
    "segments:int32 turns:int32 speech_s:float64 summary:string overlap_s:float64 "
    "interruptions:int32 longest_silence_s:float64 silences_over_5s:int32"
)


def _schema(pa, columns: str):
    def kind(name: str):
        return pa.map_(pa.string(), pa.float64()) if name == "map" else getattr(pa, name)()

    return pa.schema([(n, kind(t)) for n, t in (c.split(":") for c in columns.split())])


def event_schema(pa):
    return _schema(pa, EVENT_COLUMNS)


def call_schema(pa):
    return _schema(pa, CALL_COLUMNS)


def _local(todo, settings: Settings, workers: int) -> Iterator[Scored]:
    import multiprocessing

    ctx = multiprocessing.get_context(
        "spawn"
    )  # a clean interpreter per worker: no forked ONNX state
    with ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(settings,)
    ) as pool:
        futures = [pool.submit(_score, job, key) for job, key in todo]
        for f in as_completed(futures):
            yield f.result()


def _ray(todo, settings: Settings, workers: int, address: str) -> Iterator[Scored]:
    ray = require("ray", "ray", "--ray needs Ray")
    from ray.util import ActorPool

    if address == "auto":
        try:
            ray.init(address="auto", log_to_driver=False)
        except (ConnectionError, RuntimeError):  # no cluster running: start a local one
            ray.init(num_cpus=workers, log_to_driver=False, include_dashboard=False)
    else:
        ray.init(address=address, log_to_driver=False)
    actor = ray.remote(num_cpus=1)(Scorer)
    size = max(1, min(workers, int(ray.cluster_resources().get("CPU", 1))))
    pool = ActorPool([actor.remote(settings) for _ in range(size)])
    try:
        yield from pool.map_unordered(lambda a, item: a.score.remote(*item), list(todo))
    finally:
        ray.shutdown()


def run(
    inputs: list[str],
    out: str | Path,
    settings: Settings,
    workers: int | None = None,
    ray: str | None = None,
    progress: Callable[[dict], None] | None = None,
    argv: list[str] | None = None,
) -> dict:
    """Score every input call not yet in ``out``; returns the run's record (also ``run.json``)."""
    from . import __version__
    from .bundle import Bundle

    _pa()
    t0 = time.time()
    jobs = collect(inputs)
    bundle = Bundle(settings.bundle)
    for lang in {settings.lang, *(job.lang for job in jobs)} - {None}:
        if bundle.code(lang) is None:
            known = ", ".join(bundle.languages)
            raise RtserError(f"language {lang!r} is not in the bundle; choose one of {known}")
    bundle_hash = hashlib.sha256((bundle.path / "manifest.json").read_bytes()).hexdigest()
    output = Output(Path(out))
    done = output.done_keys()
    errors, todo = [], []
    for job in jobs:
        try:
            key = call_key(job, settings, bundle_hash)
        except OSError as e:
            errors.append(
                {"path": job.path, "call_id": job.call_id, "error": f"{job.path}: {e.strerror}"}
            )
            continue
        if key not in done:
            todo.append((job, key))
    workers = workers or os.cpu_count() or 1
    by_key = {key: job for job, key in todo}
    audio_s, scored, skipped = 0.0, 0, len(jobs) - len(todo) - len(errors)
    if progress and len(jobs) > len(todo):
        progress({"audio_s": 0.0, "calls": len(jobs) - len(todo)})  # already done, or unreadable
    results = _ray(todo, settings, workers, ray) if ray else _local(todo, settings, workers)
    for result in results:
        job = by_key[result.key]
        if result.error is not None:
            errors.append({"path": job.path, "call_id": job.call_id, "error": result.error})
        else:
            output.commit(result)
            audio_s += result.call["duration_s"]
            scored += 1
        if progress:
            progress({"audio_s": audio_s, "calls": 1})
    # the merged files are rewritten only when a call was scored (or a killed run left parts)
    counts = output.merge() if output.pending() else None
    import onnxruntime
    import pyarrow

    record = {
        "rtser": __version__,
        "onnxruntime": onnxruntime.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
        "bundle": str(bundle.path),
        "bundle_sha256": bundle_hash,
        "settings": asdict(settings),
        "inputs": inputs,
        "argv": argv,
        "workers": workers,
        "ray": ray,
        "calls": len(jobs),
        "skipped": skipped,
        "scored": scored,
        "failed": len(errors),
        "audio_s": round(audio_s, 1),
        "seconds": round(time.time() - t0, 1),
        "rows": counts,
    }
    if todo or errors:  # a run that found everything done writes nothing
        with open(Path(out) / "errors.csv", "w", newline="") as f:
            w = csv.DictWriter(f, ["path", "call_id", "error"])
            w.writeheader()
            w.writerows(errors)
        (Path(out) / "run.json").write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return record
