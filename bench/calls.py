"""Calls benchmark -> docs/benchmarks.md (section "calls").

    python bench/calls.py [--utterances 30] [--seed 12345] [--corpora emodb emovo ravdess urdu]

Per corpus, calls of ``--utterances`` clips of the speakers that fold 0 of
``train.data.fold_indices`` holds out, under each line condition (``sim/calls.py``); plus a
call of non-speech only (tones, DTMF, hold music, hum, noise). Each call goes through
``Recognizer.stream`` in 20 ms pushes, once with the old webrtcvad path and once with the default
Silero VAD. Measured per condition and VAD:

- utterances separated one to one: a segment covers >= 50 % of the utterance's speech and <= 30 %
  of any other utterance's; also among the utterances without a silent pause of ``PAUSE_S`` inside
  (``linesim.longest_pause``), which a VAD that must close within 0.3 s cannot bridge;
- boundary error of those segments against the utterance's speech (energy within 30 dB of its
  peak), start and end pooled, p50 / p95;
- latency, end of speech -> its segment event, at real-time pace: a simulated clock where audio
  arrives in real time and each push takes the compute time it really took here;
- label agreement: the segment's label equals ``Recognizer.predict`` on the clip alone (cut from
  the same call, so with the same line condition);
- false segments per minute of non-speech, at 16 kHz and through 8 kHz μ-law, synthetic and
  Asterisk's own hold music (``REAL_MUSIC``, also without the bundle's speech gate); RTF
  (compute / audio) of the stream;
- voices lost: every held-out clip labelled alone (``predict``), clean and through μ-law, with
  Silero alone and with the second opinion on loud voiced frames (``VadConfig.second_opinion``);
- RTF against rtser at commit 9c9618f (``rtser/`` of commit ``BASELINE_COMMIT``, with its
  bundle: webrtcvad, every rolling window encoded whole): the same call files, each runtime in
  its own process on 1 thread, 20 ms pushes, model loading excluded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import timing  # noqa: E402
from rtser import Recognizer, VadConfig  # noqa: E402
from rtser.audio import load  # noqa: E402
from rtser.bundle import DEFAULT  # noqa: E402
from rtser.pipeline.turns import TURN_GAP_S, VAD_TAIL_S  # noqa: E402
from rtser.pipeline.vad import LOUD_RUN, LOUD_WINDOW, RUN_FLOOR, SILERO_FLOOR  # noqa: E402
from rtser.report.summary import INTERRUPTION_S, conversation, summarize  # noqa: E402
from sim import calls as linesim  # noqa: E402
from train import augment, data  # noqa: E402
from train.markdown import machine, write_section  # noqa: E402
from train.packages import unpacked  # noqa: E402

LANG = {"emodb": "de", "emovo": "it", "ravdess": "en", "urdu": "ur"}
VADS = {
    "webrtc, 500 ms close": VadConfig(kind="webrtc", min_silence_ms=500),
    "silero (default)": VadConfig(),
    "silero without the line floor": VadConfig(floor_db=0),
}
CONDITIONS = [
    "16 kHz, 0.3–2 s gaps",
    "8 kHz μ-law",
    "white noise 20 dB",
    "white noise 10 dB",
    "brown noise 20 dB",
    "brown noise 10 dB",
    "mains hum 20 dB",
    "mains hum 10 dB",
    "stereo, echo −20 dB, overlaps",
]
PUSH = 0.02
OVERLAP_SHARE = 0.3  # of the stereo calls' turns start over the other side; half interrupt it
PAUSE_S = (
    0.4  # an utterance with a silent pause this long inside is two to a VAD that must close fast
)
SWEEP_MS = (128, 256, 384, 512)  # closing silences tried on the clean calls
SWEEP_THRESHOLD = (0.5, 0.6, 0.7)  # Silero thresholds tried ...
SWEEP_NOISE = (
    "white noise 20 dB",
    "white noise 10 dB",
)  # ... on the calls where segments close late
BASELINE_COMMIT = "9c9618f"  # rtser at commit 9c9618f: webrtcvad, rolling windows encoded whole
# A call file streamed in PUSH blocks, timed in its own process (bench.timing.timed).
STREAM_TIMER = """
import soundfile as sf
from rtser import Recognizer
audio, sr = sf.read(path, dtype="float32", always_2d=True)
session = Recognizer({lang!r}).stream(sr, channels=audio.shape[1], split=audio.shape[1] > 1)
step = int({push} * sr)
t = time.perf_counter()
for i in range(0, len(audio), step):
    session.push(audio[i:i + step])
session.close()
wall = time.perf_counter() - t
"""


def held_out_clips(corpus: str, n: int, rng) -> list[tuple[np.ndarray, str]]:
    items = data.clips(corpus)
    _, test = data.fold_indices([c.speaker for c in items])[0]
    pick = rng.choice(test, min(n, len(test)), replace=False)
    return [(load(items[i].path), items[i].label) for i in pick]


def make_call(condition: str, clips, rng) -> tuple[np.ndarray, int, list[list[linesim.Utterance]]]:
    """Audio ``(frames, channels)``, its rate, and the utterances of each channel."""
    if condition.startswith("stereo"):
        audio, utts = linesim.build_stereo(clips, rng, overlap_share=OVERLAP_SHARE)
        return audio, linesim.SR, utts
    call, utts = linesim.build_call(clips, rng)
    if condition == "8 kHz μ-law":
        narrow, sr = augment.g711(call)
        return narrow[:, None], sr, [utts]
    if "noise" in condition or "hum" in condition:
        kind = {"white": "white", "brown": "brown", "mains": "hum"}[condition.split()[0]]
        speech = np.concatenate(
            [call[int(u.speech[0] * 16000) : int(u.speech[1] * 16000)] for u in utts]
        )
        call = augment.add_noise(
            call, augment.dbfs(speech), kind, float(condition.split()[-2]), rng
        )
    return call[:, None], linesim.SR, [utts]


def run_stream(rec: Recognizer, audio: np.ndarray, sr: int) -> tuple[list, list[float], float]:
    """Events, each event's arrival on the simulated real-time clock, and total compute seconds."""
    channels = audio.shape[1]
    session = rec.stream(sr, channels=channels, split=channels > 1)
    step, clock, compute, events, arrivals = int(PUSH * sr), 0.0, 0.0, [], []
    for i in range(0, len(audio), step):
        t = time.perf_counter()
        new = session.push(audio[i : i + step])
        spent = time.perf_counter() - t
        compute += spent
        clock = max(clock, (i + step) / sr) + spent
        events += new
        arrivals += [clock] * len(new)
    t = time.perf_counter()
    new = session.close()
    spent = time.perf_counter() - t
    compute += spent
    events += new
    arrivals += [max(clock, len(audio) / sr) + spent] * len(new)
    return events, arrivals, compute


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def score_channel(rec, audio, sr, ch, utts, segs) -> list[dict]:
    """One row per utterance: separated?, boundary errors, latency, label agreement."""
    rows = []
    for k, u in enumerate(utts):
        span = u.speech[1] - u.speech[0]
        best = None
        for e, arrived in segs:
            cover = overlap((e.start, e.end), u.speech) / span
            others = max(
                (
                    overlap((e.start, e.end), v.speech) / (v.speech[1] - v.speech[0])
                    for j, v in enumerate(utts)
                    if j != k
                ),
                default=0.0,
            )
            if cover >= 0.5 and others <= 0.3 and (best is None or cover > best[0]):
                best = (cover, e, arrived)
        gaps = [u.speech[0] - utts[k - 1].speech[1]] if k else []
        gaps += [utts[k + 1].speech[0] - u.speech[1]] if k + 1 < len(utts) else []
        row = {
            "overlapped": u.overlapped,
            "separated": best is not None,
            "paused": u.pause >= PAUSE_S,
            "pause": u.pause,
            "apart": min(gaps, default=TURN_GAP_S) >= TURN_GAP_S,  # a turn of its own
        }
        if best:
            _, e, arrived = best
            clip = audio[int(u.start * sr) : int(u.end * sr), ch]
            row.update(
                errors=[abs(e.start - u.speech[0]), abs(e.end - u.speech[1])],
                tail=e.end - u.speech[1],
                latency=arrived - u.speech[1],
                agrees=e.label == rec.predict(clip, sr).label,
            )
        rows.append(row)
    return rows


def summarise_finals(rows: list[dict]) -> dict:
    """The final turns: separated 1:1 among utterances a turn gap apart from their neighbours,
    latency, agreement with predict on the clip."""
    apart = [r for r in rows if r["apart"] and not r["overlapped"]]
    found = [r for r in rows if r["separated"]]
    latency = [r["latency"] for r in found]
    pct = lambda xs, q: 1000 * float(np.percentile(xs, q)) if xs else float("nan")
    return {
        "final_separated": float(np.mean([r["separated"] for r in apart]))
        if apart
        else float("nan"),
        "final_n": len(apart),
        "final_latency_p50": pct(latency, 50),
        "final_latency_p95": pct(latency, 95),
        "final_agreement": float(np.mean([r["agrees"] for r in found])) if found else float("nan"),
        "bridged": float(np.mean([r["pause"] < TURN_GAP_S for r in rows])),
        "pause_max": float(max(r["pause"] for r in rows)),
    }


def cue_errors(events: list, utts: list[list[linesim.Utterance]]) -> dict:
    """The call's cues from its events against the same cues of its known utterances (speech
    spans as segments; an utterance within a turn gap of the one before on its side joins that
    turn): talk time error (relative, worst side), interruptions and overlap time (found, true),
    and the longest silence's error in seconds."""
    truth = []
    for ch, channel_utts in enumerate(utts):
        turn = None
        for u in channel_utts:
            a, b = u.speech
            truth.append(
                {"type": "segment", "track": ch, "start": a, "end": b, "label": "", "probs": {}}
            )
            if turn and a - turn["end"] < TURN_GAP_S:
                turn["end"] = b
            else:
                turn = {"type": "turn", "track": ch, "start": a, "end": b, "label": "", "probs": {}}
                truth.append(turn)
    want, got = conversation(truth), conversation(events)
    talk_want, talk_got = summarize(truth), summarize(events)
    return {
        "talk_error": max(
            abs(talk_got.get(ch, {"talk_s": 0})["talk_s"] - t["talk_s"]) / t["talk_s"]
            for ch, t in talk_want.items()
        ),
        "interruptions": (got["interruptions"], want["interruptions"]),
        "by_side": [
            (got["interrupted_by"].get(t, 0), n) for t, n in sorted(want["interrupted_by"].items())
        ],
        "overlap": (got["overlap_s"], want["overlap_s"]),
        "silence_error": got["longest_silence_s"] - want["longest_silence_s"],
    }


def summarise(rows: list[dict], audio_s: float, compute: float) -> dict:
    plain = [r for r in rows if not r["overlapped"]]
    fluent = [r["separated"] for r in plain if not r["paused"]]
    found = [r for r in rows if r["separated"]]
    errors = [x for r in found for x in r["errors"]]
    latency = [r["latency"] for r in found]
    pct = lambda xs, q: 1000 * float(np.percentile(xs, q)) if xs else float("nan")
    return {
        "separated": float(np.mean([r["separated"] for r in plain])) if plain else float("nan"),
        "n": len(plain),
        "overlapped": len(rows) - len(plain),
        "separated_fluent": float(np.mean(fluent)) if fluent else float("nan"),
        "paused": len(plain) - len(fluent),
        "boundary_p50": pct(errors, 50),
        "boundary_p95": pct(errors, 95),
        "tail_p50": pct([r["tail"] for r in found], 50),
        "latency_p50": pct(latency, 50),
        "latency_p95": pct(latency, 95),
        "agreement": float(np.mean([r["agrees"] for r in found])) if found else float("nan"),
        "rtf": compute / audio_s,
    }


def baseline_rtf(audio: np.ndarray, sr: int, lang: str, baseline_runtime: Path, tmp: Path) -> dict:
    """RTF of this checkout's default and of rtser 9c9618f on one call, each in its own
    process."""
    wav = tmp / "call.wav"
    sf.write(wav, audio, sr, subtype="FLOAT")
    code = STREAM_TIMER.format(lang=lang, push=PUSH)
    seconds = len(audio) / sr
    return {
        "now": timing.timed(code, wav)["wall"] / seconds,
        "baseline": timing.timed(code, wav, baseline_runtime)["wall"] / seconds,
    }


# The two lines non-speech and single clips go through: audio -> (audio, rate)
LINES = {"16 kHz": lambda x: (x, linesim.SR), "8 kHz μ-law": augment.g711}


def non_speech_run(recs: dict, rng) -> dict:
    """Per VAD and line (16 kHz, 8 kHz μ-law): the segments and events that non-speech gives."""
    stretches = linesim.non_speech(rng)
    call = np.concatenate([x for _, x in stretches])
    call = call + linesim.at_level(linesim.white(len(call), rng), -60)
    minutes = len(call) / linesim.SR / 60
    out = {}
    for name, rec in recs.items():
        for line, channel in LINES.items():
            audio, sr = channel(call)
            events, _, compute = run_stream(rec, audio[:, None], sr)
            segs = [e for e in events if e.type == "segment"]
            out[(name, line)] = {
                "per_minute": len(segs) / minutes,
                "events": len(events),
                "minutes": minutes,
                "predict_none": sum(rec.predict(*channel(x)).label is None for _, x in stretches),
                "stretches": len(stretches),
            }
            print(name, line, out[(name, line)], flush=True)
    return out


REAL_MUSIC = "asterisk-moh-opsound-wav"  # the hold music Asterisk plays (Debian's package)


def ungated(tmp: Path) -> Path:
    """A copy of the shipped bundle without its speech gate: what the VAD alone lets through."""
    folder = tmp / "ungated"
    shutil.copytree(DEFAULT, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("speech")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def real_music_run(recs: dict) -> dict:
    """Per VAD and line: the segments that each track of ``REAL_MUSIC`` gives, each a call."""
    folder = unpacked(REAL_MUSIC, ROOT / "bench" / "out" / "calls" / REAL_MUSIC)
    tracks = [load(f) for f in sorted(folder.rglob("*.wav"))]
    out = {}
    for name, rec in recs.items():
        for line, channel in LINES.items():
            segments = 0
            for x in tracks:
                audio, sr = channel(x)
                events, _, _ = run_stream(rec, audio[:, None], sr)
                segments += sum(e.type == "segment" for e in events)
            minutes = sum(len(x) for x in tracks) / linesim.SR / 60
            out[(name, line)] = {"segments": segments, "minutes": minutes, "tracks": len(tracks)}
            print("music", name, line, out[(name, line)], flush=True)
    return out


LOUD_SHARE = 0.25  # the loud clips: the corpus's loudest quarter (corpora record at other levels)


def lost_clips(corpora: list[str]) -> dict:
    """Per corpus, line and VAD: the held-out clips (fold 0) that ``predict`` finds no speech in,
    and how many of them are loud (their speech level, ``augment.speech_dbfs``, among the
    corpus's loudest quarter)."""
    out = {}
    for corpus in corpora:
        items = data.clips(corpus)
        _, test = data.fold_indices([c.speaker for c in items])[0]
        clips = [load(items[i].path) for i in test]
        levels = [augment.speech_dbfs(x) for x in clips]
        loud = [level >= np.quantile(levels, 1 - LOUD_SHARE) for level in levels]
        for second in (False, True):
            rec = Recognizer(LANG[corpus], vad=VadConfig(second_opinion=second))
            for line, channel in LINES.items():
                lost = [rec.predict(*channel(x)).label is None for x in clips]
                out[(corpus, line, second)] = {
                    "clips": len(clips),
                    "loud": int(sum(loud)),
                    "lost": int(sum(lost)),
                    "loud_lost": int(sum(a and b for a, b in zip(lost, loud))),
                }
                print("lost", corpus, line, second, out[(corpus, line, second)], flush=True)
    return out


def measure(args, tmp: Path) -> tuple[dict, dict]:
    """Each corpus's call under each condition through each VAD (summaries by condition and VAD);
    unless only tuning, also the RTF against rtser 9c9618f (by condition)."""
    results: dict[tuple[str, str], list] = {}
    rtfs: dict[str, list[dict]] = {}
    baseline_runtime = (
        None if args.no_write else timing.runtime_at(BASELINE_COMMIT, tmp / "baseline")
    )
    for corpus in args.corpora:
        recs = {name: Recognizer(LANG[corpus], vad=cfg) for name, cfg in VADS.items()}
        clips = held_out_clips(corpus, args.utterances, np.random.default_rng(args.seed))
        for ci, condition in enumerate(args.conditions):
            audio, sr, utts = make_call(condition, clips, np.random.default_rng([args.seed, ci]))
            for name, rec in recs.items():
                events, arrivals, compute = run_stream(rec, audio, sr)
                rows, finals = [], []
                for ch, channel_utts in enumerate(utts):
                    mine = [(e, a) for e, a in zip(events, arrivals) if e.channel == ch]
                    segs = [(e, a) for e, a in mine if e.type == "segment"]
                    turns = [(e, a) for e, a in mine if e.final]
                    rows += score_channel(rec, audio, sr, ch, channel_utts, segs)
                    finals += score_channel(rec, audio, sr, ch, channel_utts, turns)
                s = summarise(rows, len(audio) / sr * audio.shape[1], compute)
                s.update(summarise_finals(finals))
                if len(utts) > 1:
                    s["cues"] = cue_errors(events, utts)
                results.setdefault((condition, name), []).append(s)
                print(corpus, condition, name, s, flush=True)
            if baseline_runtime:
                rtfs.setdefault(condition, []).append(
                    baseline_rtf(audio, sr, LANG[corpus], baseline_runtime, tmp)
                )
                print(corpus, condition, rtfs[condition][-1], flush=True)
    return results, rtfs


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--utterances", type=int, default=30)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--corpora", nargs="+", default=list(LANG))
    ap.add_argument("--conditions", nargs="+", default=CONDITIONS)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument(
        "--silero",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="try VadConfig values on the silero row alone (tuning; implies --no-write)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only (for tuning)")
    args = ap.parse_args()
    if args.silero:  # tuning: the silero row only, with these values
        VADS.clear()
        VADS["silero (tuned)"] = VadConfig(
            **{
                k: type(getattr(VadConfig(), k))(v)
                for k, v in (kv.split("=") for kv in args.silero)
            }
        )
        args.no_write = True
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        results, rtfs = measure(args, Path(tmp))
    nonspeech = non_speech_run(
        {name: Recognizer("en", vad=cfg) for name, cfg in VADS.items()},
        np.random.default_rng(args.seed),
    )
    with tempfile.TemporaryDirectory() as tmp:
        music = real_music_run(
            {
                **{name: Recognizer("en", vad=cfg) for name, cfg in VADS.items()},
                "silero without the second opinion": Recognizer(
                    "en", vad=VadConfig(second_opinion=False)
                ),
                "silero (default) without the speech gate": Recognizer(
                    "en", bundle=ungated(Path(tmp))
                ),
            }
        )
    lost = {} if args.no_write else lost_clips(args.corpora)
    sweeps = (
        {}
        if args.no_write
        else {
            "silence": sweep(
                args, CONDITIONS[0], {ms: VadConfig(min_silence_ms=ms) for ms in SWEEP_MS}
            ),
            **{
                f"threshold {c}": sweep(
                    args, c, {t: VadConfig(threshold=t, neg_threshold=t) for t in SWEEP_THRESHOLD}
                )
                for c in SWEEP_NOISE
            },
        }
    )
    if args.no_write:
        return
    write_section(
        args.out,
        "calls",
        report(results, rtfs, nonspeech, music, lost, sweeps, args, time.time() - t0),
    )


def sweep(args, condition: str, configs: dict) -> dict:
    """Silero with other settings on one condition's calls: per setting, each corpus's summary."""
    ci = CONDITIONS.index(condition)
    out: dict = {}
    for corpus in args.corpora:
        clips = held_out_clips(corpus, args.utterances, np.random.default_rng(args.seed))
        audio, sr, utts = make_call(condition, clips, np.random.default_rng([args.seed, ci]))
        for key, cfg in configs.items():
            rec = Recognizer(LANG[corpus], vad=cfg)
            events, arrivals, compute = run_stream(rec, audio, sr)
            segs = [(e, a) for e, a in zip(events, arrivals) if e.type == "segment"]
            s = summarise(score_channel(rec, audio, sr, 0, utts[0], segs), len(audio) / sr, compute)
            out.setdefault(key, []).append(s)
            print(
                "sweep",
                condition,
                corpus,
                key,
                {k: v for k, v in s.items() if k in ("separated", "latency_p95")},
                flush=True,
            )
    return out


def report(results, rtfs, nonspeech, music, lost, sweeps, args, seconds) -> str:
    def mean(cond, name, key):
        vals = [r[key] for r in results[(cond, name)] if not np.isnan(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    lines = [
        "## Calls: segments on phone lines (`python bench/calls.py`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}. Per corpus ({', '.join(args.corpora)}), "
        f"{args.utterances} clips of the speakers held out by fold 0 (`train.data.fold_indices`), "
        "one call per line condition, pushed in 20 ms blocks; numbers are means over the corpora. "
        "Latency is simulated real time: audio arrives at its pace and every push costs the "
        "compute it took here. Agreement: the segment's label equals "
        f"`predict` on the clip alone (cut from the same call). {seconds / 60:.0f} min to run.",
        "",
        f"| condition | VAD | separated 1:1 | … without a pause ≥ {PAUSE_S} s inside | boundary "
        "error p50 / p95 (ms) "
        "| end of speech → segment p50 / p95 (ms) | label = predict | RTF |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cond in args.conditions:
        for name in VADS:
            lines.append(
                f"| {cond} | {name} | {mean(cond, name, 'separated'):.0%} | "
                f"{mean(cond, name, 'separated_fluent'):.0%} | "
                f"{mean(cond, name, 'boundary_p50'):.0f} / {mean(cond, name, 'boundary_p95'):.0f} "
                f"| {mean(cond, name, 'latency_p50'):.0f} / {mean(cond, name, 'latency_p95'):.0f} "
                f"| {mean(cond, name, 'agreement'):.0%} | {mean(cond, name, 'rtf'):.3f} |"
            )
    silero = "silero (default)"
    lines += [
        "",
        f"**Turns** (Silero; a turn ends after {TURN_GAP_S} s of silence, which the turn tracker "
        f"sees as {TURN_GAP_S - VAD_TAIL_S:.2f} s between segments: a segment ends after its "
        "speech by the median in the last column): the final event of each turn against the "
        "utterances a turn gap apart from their neighbours (closer ones are one turn by design), "
        "its latency after the end of speech, and its label against `predict` on the clip; "
        "beside it, the provisional segment's latency.",
        "",
        "| condition | final turn of its own | utterances a turn gap apart | end of speech → final "
        "p50 / p95 (ms) | final label = predict | end of speech → segment p95 (ms) "
        "| segment end − speech end p50 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for cond in args.conditions:
        n = sum(r["final_n"] for r in results[(cond, silero)])
        lines.append(
            f"| {cond} | {mean(cond, silero, 'final_separated'):.0%} | {n} | "
            f"{mean(cond, silero, 'final_latency_p50'):.0f} / "
            f"{mean(cond, silero, 'final_latency_p95'):.0f} | "
            f"{mean(cond, silero, 'final_agreement'):.0%} | "
            f"{mean(cond, silero, 'latency_p95'):.0f} | {mean(cond, silero, 'tail_p50'):.0f} |"
        )
    pauses = [r for cond in args.conditions for r in results[(cond, silero)]]
    lines += [
        "",
        f"Why {TURN_GAP_S} s: {np.mean([r['bridged'] for r in pauses]):.0%} of these utterances "
        f"hold no silent pause that long inside (the longest: "
        f"{max(r['pause_max'] for r in pauses):.2f} s, EMOVO's acted pauses); a longer gap "
        "bridges a few more of them, but delays every final by as much and joins more of a "
        "speaker's separate sentences into one turn. The provisional segment still comes within "
        "0.3 s."
        " A turn is labelled from its whole span (its segments and the pauses between them) on "
        "one chunk grid, as `predict` labels a clip; a segment that continues a turn is encoded on "
        "that grid too, with the turn's audio before it as context, so a provisional label agrees "
        "with `predict` on the clip alone less often than the final does (the first table's "
        '"label = predict").',
    ]
    stereo = [c for c in args.conditions if any("cues" in r for r in results[(c, silero)])]
    if stereo:
        lines += [
            "",
            "**Conversation cues** on the stereo calls (known utterances on each side, the "
            "same arithmetic, `rtser.report.summary.conversation`), per corpus:",
            "",
            "| condition | corpus | talk time error (worst side) | interruptions found / true "
            "(by the side that interrupts: agent, customer) | overlap found / true (s) "
            "| longest silence error (s) |",
            "|---|---|---|---|---|---|",
        ]
        for cond in stereo:
            for corpus, r in zip(args.corpora, results[(cond, silero)]):
                c = r["cues"]
                lines.append(
                    f"| {cond} | {corpus} | {c['talk_error']:.1%} | {c['interruptions'][0]} / "
                    f"{c['interruptions'][1]} ("
                    + ", ".join(f"{a} / {b}" for a, b in c["by_side"])
                    + f") | {c['overlap'][0]:.1f} / {c['overlap'][1]:.1f} | "
                    f"{c['silence_error']:+.2f} |"
                )
        lines += [
            "",
            "Talk time is a side's turns (a pause inside a turn counts, as a listener hears it), "
            "against each utterance's speech by energy (its first to last 10 ms frame within "
            "30 dB of its peak). That reference also counts a breath or click before a pause at "
            "the start of a clip, and a talk show's room tone before its speech (URDU), which the "
            "VAD leaves out, and the VAD starts late on some soft onsets: all make the measured "
            "talk time short, and the room tone makes the longest silence long. Each side carries "
            "the other's echo, 20 dB down: a frame, or a segment's speech as a whole, within "
            "6 dB of the echo each channel measures (12 dB below the other side until measured; "
            "`rtser/pipeline/crosstalk.py`), each line's noise floor taken out, is that echo and "
            "opens nothing, so an echo never counts as an interruption.",
            "",
            f"In {OVERLAP_SHARE:.0%} of the stereo calls' turns a side starts before the other's "
            "speech ends (`sim/calls.py`): half of them by 0.1–0.3 s, a quick take-over that is "
            f"no interruption, half by 0.7–1.2 s, an interruption ({INTERRUPTION_S} s or more; "
            "none within 0.2 s of that line, where a boundary off by a few frames would decide "
            "the count). Where one is missed, the known speech is off or the turns differ: the "
            "reference counts a clip's room tone or breath before its speech (RAVDESS, URDU: the "
            "interrupting clip's first 0.7 s lie 45–50 dB below full scale, where Silero hears "
            "no speech); the interrupted side's last words, or the interrupter's first, lie "
            "11–17 dB below the other side, within 6 dB of the measured echo (URDU), or 12 dB "
            "below it before the echo is measured, 3 s into the call (EmoDB), so a turn ends "
            "early or starts late; a side's known utterances less than a turn gap apart "
            "fall into two turns, by an acted pause of 0.8 s inside one utterance (EMOVO) or an "
            "onset heard 0.2 s late under the other side's voice, which then counts the side "
            "that resumes as the one that interrupts (URDU: one of the customer's two found is "
            "that one).",
        ]
    lines += [
        "",
        f"RTF against rtser at commit 9c9618f (`rtser/` of commit `{BASELINE_COMMIT}` with its "
        "bundle: webrtcvad, each rolling window encoded whole): the same call files, each runtime "
        "in its own process on 1 thread (numpy's BLAS too), 20 ms pushes, model loading excluded; "
        "mean over the "
        "corpora.",
        "",
        "| condition | RTF this version (silero) | RTF 9c9618f (webrtc) | ratio |",
        "|---|---|---|---|",
    ]
    ratios, extra = [], []
    for cond in args.conditions:
        now, then = (float(np.mean([r[k] for r in rtfs[cond]])) for k in ("now", "baseline"))
        lines.append(f"| {cond} | {now:.4f} | {then:.4f} | {now / then:.2f} |")
        ratios.append(now / then)
        extra.append(
            mean(cond, "silero (default)", "rtf") / mean(cond, "webrtc, 500 ms close", "rtf") - 1
        )
    lines += [
        "",
        f"So the default path costs {min(ratios):.2f}–{max(ratios):.2f} of what rtser at commit "
        f"{BASELINE_COMMIT} cost on the same calls. Within this version, Silero costs more than "
        f"webrtcvad (+{min(extra):.0%} to +{max(extra):.0%} in the RTF column of the first table): "
        "it is a small neural network scored every 32 ms, where webrtcvad is a few filters.",
    ]
    minutes = next(iter(nonspeech.values()))["minutes"]
    lines += [
        "",
        f"Non-speech only, synthetic ({minutes:.1f} min: dial and busy tones, 300 Hz and 1 kHz "
        "tones, DTMF, hold music, mains hum, white and brown noise, quiet line noise):",
        "",
        "| VAD | line | false segments per minute | events | `predict` gives no label |",
        "|---|---|---|---|---|",
    ]
    for (name, line), r in nonspeech.items():
        lines.append(
            f"| {name} | {line} | {r['per_minute']:.1f} | {r['events']} | {r['predict_none']} "
            f"of {r['stretches']} |"
        )
    first = next(iter(music.values()))
    lines += [
        "",
        f"Asterisk's own hold music (Debian `{REAL_MUSIC}`: {first['tracks']} tracks, "
        f"{first['minutes']:.1f} min), each track a call. Music that the VAD takes for speech "
        "and the speech gate hears as music gives no segment (`python -m export.speech`; the "
        "gate never learnt this music):",
        "",
        "| VAD | line | false segments per minute | segments |",
        "|---|---|---|---|",
    ]
    for (name, line), r in music.items():
        lines.append(f"| {name} | {line} | {r['segments'] / r['minutes']:.2f} | {r['segments']} |")
    lines += [
        "",
        "**No voice lost.** Silero scores some shouted and screamed speech low, more so through "
        "G.711: every frame of a clip can stay under its threshold. The second opinion counts a "
        "frame as speech when it is loud (-40 dBFS), periodic at a voice's pitch (70-600 Hz: a "
        "scream's reaches 500-600 Hz) and not a few pure tones, and so was the frame before it "
        f"(`rtser.pipeline.vad.loud_voiced`), if Silero does not rule it out ({SILERO_FLOOR} or "
        f"more) or it ends {LOUD_WINDOW * 32} ms in which {LOUD_RUN} frames or more were such "
        f"frames that Silero scores {RUN_FLOOR} or more (a shout Silero scores near 0 all along, "
        "whose pitch may break for a frame or two). The held-out clips of fold 0 that "
        f"`predict` finds no speech in (loud: the corpus's loudest {LOUD_SHARE:.0%} by speech "
        "level):",
        "",
        "| corpus | line | clips (loud) | lost by Silero alone (loud) | lost with the second "
        "opinion (loud) |",
        "|---|---|---|---|---|",
    ]
    for corpus in args.corpora:
        for line in LINES:
            alone, both = lost[(corpus, line, False)], lost[(corpus, line, True)]
            lines.append(
                f"| {corpus} | {line} | {alone['clips']} ({alone['loud']}) | {alone['lost']} "
                f"({alone['loud_lost']}) | {both['lost']} ({both['loud_lost']}) |"
            )
    overlapped = sum(r["overlapped"] for r in results[(args.conditions[-1], next(iter(VADS)))])
    lines += [
        "",
        f"Separation counts utterances without overlap; the stereo calls also hold {overlapped} "
        "overlapping turns in all (scored for agreement and latency when separated).",
        "",
        "Why the default closes a segment after 128 ms of non-speech: the 16 kHz calls again, "
        "Silero with "
        "longer closing silences (separated 1:1 / latency p95 in ms, per corpus):",
        "",
        "| closing silence | " + " | ".join(args.corpora) + " |",
        "|---|" + "---|" * len(args.corpora),
    ]
    for ms, rows in sweeps["silence"].items():
        lines.append(
            f"| {ms} ms | "
            + " | ".join(f"{r['separated']:.0%} / {r['latency_p95']:.0f}" for r in rows)
            + " |"
        )
    first = results[(args.conditions[0], next(iter(VADS)))]
    paused, n = sum(r["paused"] for r in first), sum(r["n"] for r in first)
    lines += [
        "",
        f"Most misses are utterances with a silent pause inside: {paused} of the {n} utterances "
        f"hold a pause of {PAUSE_S} s or more, over 30 dB below the clip's peak. These are EMOVO's "
        "and RAVDESS's acted pauses and URDU's cuts from talk shows. The segment event must come "
        "within 0.3 s of the end of speech, so no VAD may wait out such a pause, and Silero "
        "scores it as low as the silence "
        'after speech. So two segments cover such an utterance (the column "without a pause" '
        "leaves them out). The other misses are sounds inside a clip that Silero does not score as "
        "speech: breaths, sighs, shouts, laughter, a second talker in URDU's cuts. The "
        "energy-based reference counts them. Each step of closing silence adds its own length to "
        "the latency and buys few utterances. A live view "
        "needs the event fast, so the default takes 128 ms.",
    ]
    lines += [
        "",
        "In white noise Silero goes on scoring the frames after speech as speech for a few frames "
        "more, so segments close later there. A higher threshold (start and end alike) closes them "
        "sooner but splits "
        "more utterances (separated 1:1 / latency p95 in ms, mean over the corpora):",
        "",
        "| threshold | " + " | ".join(SWEEP_NOISE) + " |",
        "|---|" + "---|" * len(SWEEP_NOISE),
    ]
    for t in SWEEP_THRESHOLD:
        rows = [sweeps[f"threshold {c}"][t] for c in SWEEP_NOISE]
        lines.append(
            f"| {t} | "
            + " | ".join(
                f"{np.mean([r['separated'] for r in rs]):.0%} / "
                f"{np.mean([r['latency_p95'] for r in rs]):.0f}"
                for rs in rows
            )
            + " |"
        )
    lines += [
        "",
        "So on these calls the latency goal can be bought only with separation, which is already "
        "short of "
        "its goal; the default keeps Silero's usual 0.5, which separates the most.",
    ]
    unfloored = "silero without the line floor"
    if unfloored in VADS:
        lines += [
            "",
            "Why the default takes a frame within 1.5 dB of the line's noise floor (its quietest "
            "frame of the last 5 s) for non-speech, whatever Silero's memory of the speech before "
            "it says (`VadConfig(floor_db=1.5)`): segments close sooner, most on steady noise "
            "(white, hum), where Silero's memory lasts longest; at 10 dB of such noise it also "
            "cuts soft speech off. Without the line floor → with it (the default):",
            "",
            "| condition | end of speech → segment p95 (ms) | final turn of its own "
            "| final label = predict |",
            "|---|---|---|---|",
        ]
        for cond in args.conditions:
            cells = [
                f"{mean(cond, unfloored, key):{fmt}} → {mean(cond, silero, key):{fmt}}"
                for key, fmt in (
                    ("latency_p95", ".0f"),
                    ("final_separated", ".0%"),
                    ("final_agreement", ".0%"),
                )
            ]
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
