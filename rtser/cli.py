"""The ``rtser`` command: ``file``, ``listen``, ``serve``, ``batch``, ``info``, ``enroll``."""

from __future__ import annotations

import json
import os
import sys
import warnings

import click

from . import __version__
from .bundle import Bundle
from .errors import RtserError, RtserWarning, require
from .pipeline.vad import VadConfig
from .report.formatting import Formatter, clock
from .report.labels import NEGATIVE

bundle_option = click.option(
    "--bundle",
    type=click.Path(),
    help="Bundle folder (default: the one shipped with rtser).",
)
lang_option = click.option("--lang", help="Language code; optional when the bundle has one.")
threads_option = click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="CPU threads per inference call (1 is fastest for one stream; see docs/benchmarks.md).",
)
vad_option = click.option(
    "--vad",
    type=click.Choice(["silero", "webrtc", "0", "1", "2", "3"]),
    default="silero",
    show_default=True,
    help="Speech finder: silero (neural, ignores line noise, tones and "
    "music) or webrtc (cheaper); 0-3 is webrtc at that aggressiveness (3 drops most).",
)


def _recognizer(lang, bundle, threads, vad="silero", site=None):
    from .pipeline.recognizer import Recognizer
    from .pipeline.site import Site

    site = Site(site) if site else None
    return Recognizer(lang, bundle, threads, vad=VadConfig.named(vad), site=site)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rtser")
def cli():
    """Real-time multilingual speech emotion recognition, on the CPU."""


@cli.command("file")
@click.argument("call", type=click.Path(dir_okay=False))
@lang_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--channels",
    type=click.Choice(["mix", "split"]),
    default="mix",
    show_default=True,
    help="split: analyse each channel on its own (e.g. agent / customer).",
)
@click.option(
    "--segments-only", is_flag=True, help="Only the final turns, one row each; no rolling labels."
)
@click.option(
    "--interim",
    is_flag=True,
    help="Also the provisional segments (within 0.3 s of each pause) that the turns replace.",
)
@click.option(
    "--summary",
    is_flag=True,
    help="Print the call's summary per channel instead of the events (--format json for JSON).",
)
@click.option(
    "--negative",
    default=",".join(NEGATIVE),
    show_default=True,
    help="Labels that count as negative in the summary (comma-separated).",
)
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a timeline PNG (matplotlib).")
@click.option(
    "--site",
    type=click.Path(dir_okay=False),
    help="The site's baseline in this JSON file: the call is labelled with the offset the site's "
    "earlier calls measured taken out, then its turns are added (created if missing).",
)
@bundle_option
@threads_option
@vad_option
def file_cmd(
    call,
    lang,
    fmt,
    channels,
    segments_only,
    interim,
    summary,
    negative,
    plot,
    site,
    bundle,
    threads,
    vad,
):
    """Emotion labels of a recording (WAV, FLAC, OGG; any rate, mono or stereo).

    \b
    Rows, timed by the speech their label comes from:
      label    every 2 s while someone speaks: the last (up to) 3 s of the
               segment's speech. Its label is smoothed: it changes only when
               another label leads the shown one by 0.15 in the smoothed
               probabilities, so it can differ from the top probability.
      turn     once a speaker's turn ends (a pause of 0.8 s): the whole turn,
               final, its speech and the pauses inside labelled together.
      segment  with --interim: a stretch of speech up to a pause, labelled at
               once; its turn's row replaces it (same turn id).
    Labels other than neutral need evidence: a calibrated probability over
    the language's threshold.
    """
    from .report.plot import Envelope, plot_timeline, pyplot

    if plot:  # fail before the analysis, not after it
        pyplot()
        folder = os.path.dirname(os.path.abspath(plot))
        if not os.path.isdir(folder):
            raise RtserError(f"--plot {plot}: the folder {folder} does not exist; create it first")
    rec = _recognizer(lang, bundle, threads, vad, site)
    negative_labels = [x.strip() for x in negative.split(",") if x.strip()]
    unknown = [x for x in negative_labels if x not in rec.labels and x not in NEGATIVE]
    if unknown:
        raise RtserError(
            f"--negative: {', '.join(unknown)} is not a label of {rec.lang} "
            f"({', '.join(rec.labels)})"
        )

    def on_block(block):  # called while the events are read, once ``bar`` and ``envelope`` exist
        bar.update(len(block))
        if envelope:
            envelope.add(block)

    events, info = rec.file(
        call, split=channels == "split", on_block=on_block
    )  # fails early on a bad file
    envelope = Envelope(info.sample_rate) if plot else None
    # the bar redraws its line: only where it cannot break the rows, i.e. stdout goes elsewhere
    bar_shown = info.duration >= 60 and sys.stderr.isatty() and (summary or not sys.stdout.isatty())
    bar = click.progressbar(
        length=info.frames, file=sys.stderr, label="analysing", hidden=not bar_shown
    )
    out = None if summary else Formatter(fmt, sys.stdout, rec.labels, segments_only, interim)
    collected = []
    with bar:
        for e in events:
            if out:
                out.write(e)
            collected.append(e)
    if summary:
        from .report.summary import conversation, summarize, table, write_csv

        result, call_cues = summarize(collected, negative=negative_labels), conversation(collected)
        if fmt == "csv":
            write_csv(result, sys.stdout, call_cues)
        elif fmt in ("json", "jsonl"):
            tracks = {str(k): v for k, v in result.items()}
            click.echo(json.dumps({**tracks, "call": call_cues}, indent=1, allow_nan=False))
        else:
            click.echo(table(result, call_cues))
    else:
        out.close()
    if plot:
        n = sum(e.final for e in collected)
        segments = f"{n} turn{'s' * (n != 1)}"
        title = f"{os.path.basename(call)} · {rec.lang} · {clock(info.duration, 0)} · {segments}"
        plot_timeline(plot, envelope, collected, rec.labels, channels == "split", title=title)
        click.echo(f"timeline written to {plot}", err=True)


@cli.command()
@lang_option
@click.option("--device", help="Input device index or name (see --list-devices).")
@click.option("--list-devices", is_flag=True, help="List audio input devices and exit.")
@bundle_option
@threads_option
@vad_option
def listen(lang, device, list_devices, bundle, threads, vad):
    """Live emotion labels from a microphone; Ctrl-C stops and prints a summary."""
    from .listen import default_rate, input_devices
    from .listen import listen as run

    if list_devices:
        devices = input_devices()
        if not devices:
            raise RtserError("no audio input devices found; connect a microphone")
        for d in devices:
            click.echo(
                f"{d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, "
                f"{d['default_samplerate']:.0f} Hz)"
            )
        return
    if device is not None and device.isdigit():
        device = int(device)
    rate = default_rate(device)  # no microphone: say so before loading anything
    summary = run(_recognizer(lang, bundle, threads, vad), device=device, sample_rate=rate)
    click.echo("\n" + json.dumps(summary, indent=1, allow_nan=False), err=True)


@cli.command()
@lang_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="HTTP and WebSocket port (/healthz, /metrics, /v1/calls, /v1/events, /audiohook, "
    "/twilio).",
)
@click.option(
    "--audiosocket-port",
    type=click.IntRange(1, 65535),
    help="TCP port for AudioSocket (the caller's voice).",
)
@click.option(
    "--audiosocket-agent-port",
    type=click.IntRange(1, 65535),
    help="TCP port for AudioSocket carrying the agent's voice: a connection with the UUID of a "
    "call on --audiosocket-port is that call's agent track (a passive tap).",
)
@click.option(
    "--api-key",
    envvar="RTSER_API_KEY",
    help="Required on every request as X-API-KEY or ?key= (also from RTSER_API_KEY).",
)
@click.option(
    "--max-calls",
    default="auto",
    show_default=True,
    help="auto: admit the calls the measured capacity carries within --latency-budget; or a "
    "number of calls at once.",
)
@click.option(
    "--latency-budget",
    type=click.FloatRange(0.1, 30),
    default=1.0,
    show_default=True,
    help="Seconds from audio arriving to its events (p95) that admitted calls must stay within.",
)
@click.option("--events", type=click.Path(dir_okay=False), help="Append every event to this JSONL.")
@click.option("--webhook", help="POST events as JSON to this URL.")
@click.option(
    "--webhook-events",
    type=click.Choice(["all", "finals"]),
    default="all",
    show_default=True,
    help="finals: only the final turns and the calls' start and end, not the rolling labels and "
    "provisional segments.",
)
@click.option(
    "--twilio-auth-token",
    envvar="TWILIO_AUTH_TOKEN",
    help="Refuse Twilio streams whose X-Twilio-Signature this token does not verify (also from "
    "TWILIO_AUTH_TOKEN).",
)
@click.option(
    "--audiohook-secret",
    envvar="RTSER_AUDIOHOOK_SECRET",
    help="The client secret set in Genesys (base64): AudioHook connections must carry a "
    "signature it verifies (also from RTSER_AUDIOHOOK_SECRET).",
)
@click.option(
    "--webhook-secret",
    envvar="RTSER_WEBHOOK_SECRET",
    help="Sign each webhook POST: X-Rtser-Signature, HMAC-SHA256 of 'timestamp.body' (also from "
    "RTSER_WEBHOOK_SECRET).",
)
@click.option(
    "--site",
    default="memory",
    show_default=True,
    help="The site's running baseline, learnt from every call's turns and taken out of the next "
    "calls' labels: memory (from this start), off, or a JSON file that keeps it across restarts.",
)
@bundle_option
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Worker threads for audio (1 inference thread each).",
)
def serve(**options):
    """Live calls from the phone system in (AudioHook, Twilio, AudioSocket), emotion events out."""
    require("websockets", "serve", "rtser serve needs the websockets library")
    from .serve.app import main as run

    run(**options)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Output folder (resumable)."
)
@lang_option
@click.option("--channels", type=click.Choice(["mix", "split"]), default="mix", show_default=True)
@click.option(
    "--workers", type=click.IntRange(1, 512), help="Worker processes (default: the cores)."
)
@click.option(
    "--ray",
    "ray_address",
    metavar="auto|ADDRESS",
    help="Run on Ray: auto joins a running cluster or starts a local one; or a cluster address.",
)
@bundle_option
@vad_option
def batch(inputs, out, lang, channels, workers, ray_address, bundle, vad):
    """Score an archive of calls (files, folders, CSV manifests) into Parquet; re-runs skip what is
    done."""
    from .batch import Settings, collect, run

    total = len(collect(list(inputs)))  # validate before the progress bar
    with click.progressbar(
        length=total,
        label="calls",
        file=sys.stderr,
        show_eta=True,
        show_pos=True,
        item_show_func=lambda p: f"{p['audio_s'] / 3600:.2f} h of audio" if p else "",
    ) as bar:

        def progress(p):
            bar.update(p["calls"], p)

        record = run(
            list(inputs),
            out,
            Settings(lang, channels == "split", vad, bundle),
            workers,
            ray_address,
            progress,
            sys.argv,
        )
    click.echo(
        f"{out}: {record['scored']} scored, {record['skipped']} already done, {record['failed']} "
        f"failed (errors.csv); {record['audio_s'] / 3600:.2f} h of audio in "
        f"{record['seconds']:.0f} s",
        err=True,
    )
    if record["failed"]:  # a scheduler must see that some calls were not scored
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@bundle_option
def info(as_json, bundle):
    """Languages, labels, sizes and versions of the bundle."""
    import onnxruntime

    data = Bundle(bundle).info()
    data["versions"] = {"rtser": __version__, "onnxruntime": onnxruntime.__version__}
    if as_json:
        click.echo(json.dumps(data, indent=1, allow_nan=False))
        return
    click.echo(
        f"bundle    {data['path']} ({data['size_bytes'] / 1e6:.1f} MB, format {data['format']})"
    )
    click.echo(f"versions  rtser {__version__}, onnxruntime {onnxruntime.__version__}")
    click.echo(f"window    {data['window_s']} s every {data['hop_s']} s")
    for name, e in data["encoders"].items():
        click.echo(f"encoder   {name}: {e['file']} ({e['size_bytes'] / 1e6:.1f} MB)")
    for lang, spec in data["languages"].items():
        m = spec["metrics"]
        score = "".join(
            f"  {name} {m[key]:.2f}"
            for name, key in (("UA", "ua_mean"), ("WA", "wa_mean"))
            if m.get(key)
        )
        click.echo(f"language  {lang}: {', '.join(spec['labels'])}{score}")


@cli.command()
@click.option("--lang", required=True, help="Code of the new language (e.g. xx, ta, sw).")
@click.option(
    "--manifest", required=True, type=click.Path(dir_okay=False), help="CSV: path,label[,speaker]."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Overlay folder (default: rtser-<lang>).",
)
@bundle_option
@click.option("--threads", type=int, default=2, show_default=True)
def enroll(lang, manifest, out, bundle, threads):
    """Add a language from labelled clips (numpy + onnxruntime, minutes on a CPU)."""
    from .enroll import enroll as run
    from .enroll import read_manifest

    clips, _, _ = read_manifest(manifest)  # validate before the progress bar
    n = len(clips)
    out = out or f"rtser-{lang}"
    with click.progressbar(length=n, label="embedding clips", file=sys.stderr) as bar:
        m = run(
            lang,
            manifest,
            out,
            bundle,
            threads,
            progress=bar.update,
            warn=lambda s: click.echo(s, err=True),
        )
    spec = m["languages"][lang]
    click.echo(
        f"wrote {out}: {lang} with {len(spec['labels'])} classes ({', '.join(spec['labels'])})"
    )
    cv = spec["metrics"]
    if cv:
        click.echo(
            f"speaker-independent CV ({cv['folds']} folds): UA {cv['ua_mean']:.3f}, WA "
            f"{cv['wa_mean']:.3f} (chance UA {1 / len(spec['labels']):.3f}; weight decay {cv['l2']}"
            + (
                ""
                if cv["prior_weight"] is None
                else f", weight of the emotion prior {cv['prior_weight']}"
            )
            + f": the best of {len(cv['ua_tried'])} settings in this CV)"
        )
    elif not spec["training"]["speakers"] or spec["training"]["speakers"] < 2:
        click.echo(
            "no speaker column (or one speaker): no speaker-independent estimate of accuracy"
        )
    click.echo(f"use it: rtser file CALL --lang {lang} --bundle {out}")


def _show_warning(message, category, *args, **kwargs):
    if issubclass(category, RtserWarning):  # about the user's input: one line, like errors
        click.echo(f"rtser: warning: {message}", err=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)


_default_showwarning = warnings.showwarning


def main() -> None:
    from .pipeline.sessions import one_blas_thread

    warnings.showwarning = _show_warning
    one_blas_thread()
    try:
        cli.main(prog_name="rtser", standalone_mode=False)
    except RtserError as e:
        click.echo(f"rtser: error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.UsageError as e:  # one line like every other error, not click's three
        where = e.ctx.command_path if e.ctx else "rtser"
        click.echo(f"rtser: error: {e.format_message()} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # never a traceback for users; RTSER_DEBUG=1 shows it
        if os.environ.get("RTSER_DEBUG"):
            raise
        click.echo(
            f"rtser: internal error: {type(e).__name__}: {e} (set RTSER_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(1)
    sys.exit(0)
