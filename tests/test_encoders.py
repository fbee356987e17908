"""The converted encoders against CTranslate2, ONNX against PyTorch, int8 against fp32 (real
clips)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import EMODB, clip  # noqa: E402

from export import sources  # noqa: E402
from export.ct2 import read_model_bin  # noqa: E402
from export.ge2e import load_ge2e  # noqa: E402
from export.onnx_export import ENCODERS, OP_TYPES, export_module, quantize  # noqa: E402
from export.whisper import WindowEncoder, load_encoder  # noqa: E402
from rtser.audio import load  # noqa: E402
from rtser.bundle import DEFAULT, sha256  # noqa: E402
from rtser.pipeline.frontend import log_mel, mel_power  # noqa: E402
from rtser.pipeline.sessions import session  # noqa: E402

CLIPS = {
    "emodb": EMODB[0],
    "emovo": "dis-f1-b1.flac",
    "ravdess": "03-01-05-02-01-01-01.flac",
    "urdu": "SM1_F10_A010.flac",
}
SIZES = {"base": (512, 6), "tiny.en": (384, 4)}


@pytest.fixture(scope="module")
def speech(data_dir):
    return {corpus: load(clip(corpus, name)) for corpus, name in CLIPS.items()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    paths = {}
    for name in ENCODERS:
        fp32 = export_module(name, ENCODERS[name](), out / f"{name}.fp32.onnx")
        paths[name] = {
            "fp32": fp32,
            "int8": quantize(fp32, out / f"{name}.int8.onnx", OP_TYPES.get(name)),
        }
    return paths


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def pooled_cosine(a, b):  # per layer, time-pooled mean
    pa, pb = a.mean(axis=1), b.mean(axis=1)
    return (pa * pb).sum(-1) / np.linalg.norm(pa, axis=-1) / np.linalg.norm(pb, axis=-1)


@pytest.mark.parametrize("name", list(SIZES))
def test_ct2_reader_and_sizes(name):
    header, variables = read_model_bin(sources.whisper_model_dir(name) / "model.bin")
    assert header["spec"] == "WhisperSpec" and header["version"] >= 5
    width, layers = SIZES[name]
    enc = WindowEncoder(load_encoder(name))
    assert (enc.width, enc.num_states) == (width, layers + 1)
    assert variables["encoder/conv1/weight"].dtype == np.float16


@pytest.mark.parametrize("name", list(SIZES))
def test_pytorch_matches_ctranslate2(name, speech):
    ctranslate2 = pytest.importorskip("ctranslate2")
    full = np.zeros(16000 * 30, np.float32)
    full[: len(speech["emodb"])] = speech["emodb"]
    mel = log_mel(full)
    with torch.no_grad():
        ours = WindowEncoder(load_encoder(name))(torch.from_numpy(mel)[None])[-1, 0].numpy()
    model = ctranslate2.models.Whisper(
        str(sources.whisper_model_dir(name)), device="cpu", compute_type="float32"
    )
    ref = np.array(
        model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])), to_cpu=True
        )
    )[0]
    assert rel(ours, ref) < 1e-3


def test_hugging_face_folder_loads_the_same_weights(tmp_path):
    from transformers import WhisperConfig, WhisperModel

    enc = load_encoder("tiny.en")
    cfg = WhisperConfig(
        **{
            k: getattr(enc.config, k)
            for k in (
                "d_model",
                "encoder_layers",
                "encoder_attention_heads",
                "encoder_ffn_dim",
                "num_mel_bins",
            )
        },
        decoder_layers=1,
        decoder_attention_heads=6,
        decoder_ffn_dim=64,
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        decoder_start_token_id=0,
    )
    model = WhisperModel(cfg)
    model.encoder.load_state_dict(enc.state_dict())
    model.save_pretrained(tmp_path)
    again = load_encoder(str(tmp_path))
    for (k, a), b in zip(enc.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_variable_length_windows(speech):
    enc = WindowEncoder(load_encoder("tiny.en"))
    for seconds in (0.5, 3.0, 10.0):
        x = np.resize(speech["emodb"], int(16000 * seconds))
        with torch.no_grad():
            h = enc(torch.from_numpy(log_mel(x))[None])
        assert h.shape == (5, 1, int(seconds * 50), 384)


@pytest.mark.parametrize("name", ["whisper-base", "whisper-base-l4", "whisper-tiny.en"])
def test_onnx_fp32_matches_pytorch_and_int8_keeps_layers(name, exported, speech):
    module = ENCODERS[name]()
    fp32, int8 = session(exported[name]["fp32"], 2), session(exported[name]["int8"], 2)
    for x in speech.values():
        mel = log_mel(x)[None]
        with torch.no_grad():
            ref = module(torch.from_numpy(mel)).numpy()[:, 0]
        a = fp32.run(None, {"mel": mel})[0][:, 0]
        b = int8.run(None, {"mel": mel})[0][:, 0]
        assert rel(a, ref) < 1e-4
        assert pooled_cosine(b, a).min() >= 0.99


def test_cut_encoder_keeps_the_first_layers_exactly(speech):
    full, cut = WindowEncoder(load_encoder("base")), ENCODERS["whisper-base-l4"]()
    mel = torch.from_numpy(log_mel(speech["emovo"]))[None]
    with torch.no_grad():
        a, b = full(mel), cut(mel)
    assert b.shape[0] == 5 and torch.equal(a[:5], b)


def test_chunks_int8_states_stay_close_to_fp32(exported, speech):
    """Per layer, on the chunks the runtime encodes (2 s of new audio, 1 s of context after the
    first)."""
    from rtser.pipeline.features import ChunkEncoder, clip_features

    fp32 = ChunkEncoder({"w": session(exported["whisper-base-l4"]["fp32"], 2)})
    int8 = ChunkEncoder({"w": session(exported["whisper-base-l4"]["int8"], 2)})
    for x in speech.values():
        a, b = clip_features(fp32, x, 0, len(x))["w"], clip_features(int8, x, 0, len(x))["w"]
        assert pooled_cosine(b, a).min() >= 0.99


def test_shipped_int8_encoders_are_this_export(exported):
    """Re-running the export reproduces the committed graphs byte for byte (so they are re-committed
    only when the export really changes)."""
    for name in ("whisper-base-l4", "ge2e"):
        assert sha256(exported[name]["int8"]) == sha256(DEFAULT / f"{name}.int8.onnx")


def test_ge2e_weights_onnx_and_int8(exported, speech):
    model = load_ge2e()
    fp32, int8 = session(exported["ge2e"]["fp32"]), session(exported["ge2e"]["int8"])
    embeds = []
    for x in speech.values():
        mels = mel_power(x)[None]
        with torch.no_grad():
            ref = model(torch.from_numpy(mels)).numpy()[0]
        a = fp32.run(None, {"mels": mels})[0][0]
        b = int8.run(None, {"mels": mels})[0][0]
        assert np.abs(a - ref).max() < 1e-4 and float(a @ b) >= 0.99
        embeds.append(a)
    # trained weights: two clips of one speaker are closer than clips of other corpora/speakers
    same = load(clip("emodb", EMODB[1]))
    with torch.no_grad():
        e2 = model(torch.from_numpy(mel_power(same))[None]).numpy()[0]
    assert float(embeds[0] @ e2) > max(float(embeds[0] @ e) for e in embeds[1:])


def test_front_end_matches_whisper_and_is_the_one_both_paths_use(speech):
    from transformers import WhisperFeatureExtractor

    import rtser.pipeline.features
    import train.features

    x = speech["emovo"]
    fe = WhisperFeatureExtractor(
        feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400
    )
    ref = fe._np_extract_fbank_features(x[None], "cpu")[0]
    assert np.abs(log_mel(x) - ref).max() < 1e-4
    assert train.features.log_mel is log_mel
    assert (
        train.features.clip_features is rtser.pipeline.features.clip_features
    )  # the students' cache: the runtime's code


def test_source_weights_are_pinned(monkeypatch):
    for name in sources.SHA256:
        assert sources.pinned(name).is_file()
    monkeypatch.setitem(sources.SHA256, "resemblyzer/pretrained.pt", "0" * 64)
    with pytest.raises(RuntimeError, match="pinned"):
        sources.ge2e_weights()
