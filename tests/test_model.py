"""The paper's model pieces on a small real subset (features from the shipped int8 encoders)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtser.audio import load  # noqa: E402
from rtser.bundle import DEFAULT, Bundle  # noqa: E402
from rtser.pipeline.features import ChunkEncoder, clip_features  # noqa: E402
from rtser.pipeline.sessions import session  # noqa: E402
from train import data  # noqa: E402
from train.features import clip_bounds  # noqa: E402
from train.fit import gate_means, predict, train  # noqa: E402
from train.model import MAX_STEPS, OPS, POOLS, SERModel, make_dataset, supcon  # noqa: E402
from train.nas import search  # noqa: E402

PER_CORPUS = 48


@pytest.fixture(scope="module")
def features():
    """A clip's features as the runtime and the training cache compute them (the shipped
    encoders)."""
    bundle = Bundle(DEFAULT)
    enc = ChunkEncoder({n: session(bundle.encoder(n), 2) for n in ("whisper-base", "ge2e")})

    def of(path):
        audio = load(path)
        return clip_features(enc, audio, *clip_bounds(audio))

    return of


@pytest.fixture(scope="module")
def small(data_dir, features):
    seq, emb, lang, y, spk, labels, langs = [], [], [], [], [], [], []
    for li, corpus in enumerate(["emodb", "emovo"]):
        items = data.clips(corpus)
        labels.append(data.labels(items))
        langs.append(items[0].language)
        pick = np.random.default_rng(0).choice(len(items), PER_CORPUS, replace=False)
        for i in pick:
            out = features(items[i].path)
            seq.append(out["whisper-base"].transpose(1, 0, 2))  # the cache's (T, L, D)
            emb.append(out["ge2e"])
            lang.append(li)
            y.append(labels[-1].index(items[i].label))
            spk.append(items[i].speaker)
    ds = make_dataset(
        langs, labels, ["emodb", "emovo"], {"whisper-base.int8": seq}, np.stack(emb), lang, y, spk
    )
    return ds.standardized(np.arange(len(ds)))


def test_gates_are_distributions_on_real_features(small):
    idx = np.arange(len(small))
    model = train(SERModel(small, gate="input"), small, idx, epochs=3)
    g = model.gate_weights(small.batch(idx))
    assert torch.allclose(g.sum(1), torch.ones(len(idx)), atol=1e-5) and (g >= 0).all()


def test_gates_learn_which_layer_carries_each_languages_labels():
    """Language a's labels live in layer 1, language b's in layer 4, the other layers are noise:
    after training, each language's gate weights its own informative layer above the other one."""
    rng = np.random.default_rng(0)
    n, steps, layers, dim, informative = 160, 12, 6, 16, {0: 1, 1: 4}
    seq, lang, y = [], [], []
    for i in range(2 * n):
        li, label = i % 2, int(rng.integers(2))
        x = rng.normal(0, 1, (steps, layers, dim)).astype(np.float32)
        x[:, informative[li], :4] += 1.5 * (2 * label - 1)
        seq.append(x)
        lang.append(li)
        y.append(label)
    ge2e = rng.normal(0, 1, (2 * n, 256)).astype(np.float32)
    ds = make_dataset(
        ["a", "b"],
        [["x", "y"], ["x", "y"]],
        ["ca", "cb"],
        {"enc": seq},
        ge2e,
        lang,
        y,
        [f"s{i % 7}" for i in range(2 * n)],
    )
    idx = np.arange(len(ds))
    ds = ds.standardized(idx)
    before = gate_means(SERModel(ds, gate="input"), ds, idx)
    means = gate_means(train(SERModel(ds, gate="input"), ds, idx, epochs=25), ds, idx)
    for name, own, other in [("a", 1, 4), ("b", 4, 1)]:
        assert means[name][own] > means[name][other] + 0.1, (name, before[name], means[name])
        assert means[name][own] > 2 / layers


def test_nas_genotype_is_valid_and_retrained_head_runs(small):
    idx = np.arange(len(small))
    genotypes = search(small, idx, epochs=4)
    assert set(genotypes) == {"de", "it"}
    assert all(len(g) == 3 and set(g[:2]) <= set(OPS) and g[2] in POOLS for g in genotypes.values())
    model = train(SERModel(small, gate="input", genotypes=genotypes), small, idx, epochs=3)
    probs = predict(model, small, idx[:10])
    assert all(abs(p.sum() - 1) < 1e-5 for p in probs)


def test_supcon_falls_on_a_separable_batch_and_is_finite_for_singletons():
    torch.manual_seed(0)
    y = torch.arange(4).repeat_interleave(8)
    lang = torch.zeros(32, dtype=torch.long)
    centres = torch.randn(4, 16) * 3
    z = (centres[y] + torch.randn(32, 16)).requires_grad_()
    opt = torch.optim.SGD([z], lr=0.5)
    first = supcon(z, y, lang).item()
    for _ in range(30):
        opt.zero_grad()
        supcon(z, y, lang).backward()
        opt.step()
    assert supcon(z, y, lang).item() < first
    single = supcon(
        torch.randn(5, 16, requires_grad=True), torch.arange(5), torch.zeros(5, dtype=torch.long)
    )
    assert torch.isfinite(single) and single.item() == 0


def test_exported_language_graph_matches_the_model(small, features, tmp_path):
    """The head graph takes raw encoder outputs: its downsampling, standardisation and (for the
    linear head it averages in) time pooling must be training's."""
    ort = pytest.importorskip("onnxruntime")
    from export.bundle import export_language
    from train import heads

    genotypes = {
        "de": ["conv3_dil2", "self_attention", "attn_stats"],
        "it": ["conv5", "mlp128_gelu", "stats"],
    }
    idx = np.arange(len(small))
    model = train(SERModel(small, gate="input", genotypes=genotypes), small, idx, epochs=1)
    rng = np.random.default_rng(0)
    layers = small.seq["whisper-base.int8"].shape[1]
    linear = heads.fit(
        {"whisper-base.int8": rng.standard_normal((20, layers, 1024)).astype(np.float32)},
        np.arange(20) % 7,
        7,
        epochs=1,
    )
    names = {"whisper-base.int8": "whisper-base", "ge2e.int8": "ge2e"}
    plain = ort.InferenceSession(
        str(export_language(model, 1, names, tmp_path / "h.onnx")),
        providers=["CPUExecutionProvider"],
    )
    ensemble = ort.InferenceSession(
        str(export_language(model, 1, names, tmp_path / "e.onnx", linear)),
        providers=["CPUExecutionProvider"],
    )
    items, compared = data.clips("emovo"), 0
    for i in rng.choice(len(items), PER_CORPUS, replace=False):
        out = features(items[i].path)
        h = out["whisper-base"]  # (L, T, D)
        row = make_dataset(
            small.langs,
            small.labels,
            small.corpora,
            {"whisper-base.int8": [h.transpose(1, 0, 2)]},
            out["ge2e"][None],
            [1],
            [0],
            ["x"],
        )
        if row.steps[0] == MAX_STEPS:
            continue  # the dataset centre-crops long clips; the graph does not
        ref = predict(model, row.standardized(norm=small.norm), [0])[0]
        inputs = {"whisper-base": h, "ge2e": out["ge2e"]}
        np.testing.assert_allclose(plain.run(None, inputs)[0], ref, atol=1e-4)
        pooled = np.concatenate([h.mean(1), h.std(1)], -1)[None]  # as train.features caches it
        ref = (ref + heads.predict(linear, {"whisper-base.int8": pooled})[0]) / 2
        np.testing.assert_allclose(ensemble.run(None, inputs)[0], ref, atol=1e-4)
        compared += 1
        if compared == 3:
            break
    assert compared == 3
