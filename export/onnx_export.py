"""Export the encoders to ONNX (dynamic time axis) and quantize them to int8.

python -m export.onnx_export --out artifacts/encoders       # fp32 + int8 of every encoder
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from .ge2e import load_ge2e
from .whisper import WindowEncoder, load_encoder

OPSET = 17
STUDENT_LAYERS = (
    4  # the runtime's whisper-base stops after layer 4: the heads' gates weigh layers 2-3 most
)
ENCODERS = {  # bundle name -> how to build it
    "whisper-base": lambda: WindowEncoder(load_encoder("base")),
    f"whisper-base-l{STUDENT_LAYERS}": lambda: WindowEncoder(load_encoder("base"), STUDENT_LAYERS),
    "whisper-tiny.en": lambda: WindowEncoder(load_encoder("tiny.en")),
    "ge2e": load_ge2e,
}


def export_module(name: str, module: torch.nn.Module, path: Path) -> Path:
    """Write ``module`` as ONNX, batch and time dynamic. Whisper graphs: ``mel (B, 80, T)`` ->
    ``hidden_states (L+1, B, T/2, D)``; GE2E: ``mels (B, frames, 40)`` -> ``embedding (B, 256)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if name == "ge2e":
        args, inputs, outputs = (torch.rand(2, 200, 40),), ["mels"], ["embedding"]
        axes = {"mels": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}}
    else:
        args, inputs, outputs = (torch.randn(2, 80, 300),), ["mel"], ["hidden_states"]
        axes = {"mel": {0: "batch", 2: "frames"}, "hidden_states": {1: "batch", 2: "steps"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter(
            "ignore"
        )  # tracer warnings about is_causal/shape asserts are harmless
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def quantize(fp32: Path, int8: Path, op_types: list[str] | None = None) -> Path:
    """onnxruntime dynamic int8 quantization (weights int8, activations quantized at run time) of
    ``op_types`` (default: every op it supports)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32), str(int8), weight_type=QuantType.QInt8, op_types_to_quantize=op_types
    )
    return int8


# Ops left in fp32. GE2E's LSTM: DynamicQuantizeLSTM wrecks it (embedding cosine 0.54 vs fp32). The
# runtime's Whisper cut, its two input convolutions: onnxruntime's ConvInteger took half of the
# graph's
# time on one core (8.7 of 17.9 ms for a 3 s chunk); in fp32 they take 2.4 ms, and the graph 11.0
# ms.
OP_TYPES = {"ge2e": ["MatMul", "Gemm"], f"whisper-base-l{STUDENT_LAYERS}": ["MatMul", "Gemm"]}


def export_all(out: Path, names=tuple(ENCODERS)) -> dict[str, dict[str, Path]]:
    paths = {}
    for name in names:
        fp32 = export_module(name, ENCODERS[name](), out / f"{name}.fp32.onnx")
        paths[name] = {
            "fp32": fp32,
            "int8": quantize(fp32, out / f"{name}.int8.onnx", OP_TYPES.get(name)),
        }
        print(
            f"{name}: {fp32.stat().st_size / 1e6:.1f} MB fp32, "
            f"{paths[name]['int8'].stat().st_size / 1e6:.1f} MB int8"
        )
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=Path("artifacts/encoders"))
    ap.add_argument("--only", nargs="*", choices=list(ENCODERS), default=list(ENCODERS))
    args = ap.parse_args()
    export_all(args.out, args.only)


if __name__ == "__main__":
    main()
