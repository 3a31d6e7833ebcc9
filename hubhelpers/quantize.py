"""Quantization written by hand: absmax (symmetric) and zero-point (asymmetric) integer quantization of a tensor,
per tensor, per output channel or in blocks; fake-quantizing a model's linear layers; and the resulting size.

absmax:     s = max|x| / (2^(b-1) - 1),  q = round(x / s) in [-(2^(b-1) - 1), 2^(b-1) - 1],  x^ = s * q
zero-point: s = (max x - min x) / (2^b - 1),  z = round(-min x / s),  q = clamp(round(x / s) + z, 0, 2^b - 1),
            x^ = s * (q - z)
Each group (the whole tensor, one row, or one block of consecutive values of a row) gets its own s (and z).

16-bit floats (fp16, bf16) need no scale: a cast rounds each value to the nearest number of the format, whose
spacing is relative to the value (eps times its power of two); `float_format` reads a format's bits and range
from `torch.finfo`, and `cast_roundtrip` stores a tensor in a format and reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers.pytorch_utils import Conv1D

from .params import check_int

SCHEMES = ("absmax", "zeropoint")
GRANULARITIES = ("tensor", "channel", "block")
FLOAT_FORMATS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class Quantized:
    """Integer codes of a tensor with one scale (and zero point) per group, and how to undo the grouping."""

    q: object  # integer tensor, shape (groups, group_size)
    scale: object  # float tensor, shape (groups, 1)
    zero: object | None  # integer tensor (groups, 1) for zero-point, None for absmax
    bits: int
    shape: tuple
    granularity: str


def _check(bits: int, scheme: str, granularity: str, block_size: int) -> None:
    """ValueError naming any bad argument."""
    check_int("bits", bits, low=2, high=16)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; accepted: {SCHEMES}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; accepted: {GRANULARITIES}")
    check_int("block_size", block_size)


def _groups(x, granularity: str, block_size: int):
    """`x` reshaped to (groups, group_size): one row for the tensor, one per output row, or one per block."""
    if granularity == "tensor":
        return x.reshape(1, -1)
    if granularity == "channel":
        return x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(1, -1)
    if x.numel() % block_size:
        raise ValueError(f"a tensor of {x.numel()} values cannot be cut into blocks of block_size={block_size}")
    return x.reshape(-1, block_size)


def quantize(x, bits: int, scheme: str = "absmax", granularity: str = "tensor", block_size: int = 64) -> Quantized:
    """Integer codes of float tensor `x` at `bits` bits with the given scheme and granularity."""
    _check(bits, scheme, granularity, block_size)
    g = _groups(x.detach().float(), granularity, block_size)
    tiny = torch.finfo(torch.float32).tiny
    if scheme == "absmax":
        qmax = 2 ** (bits - 1) - 1
        scale = (g.abs().amax(1, keepdim=True) / qmax).clamp(min=tiny)
        q = torch.round(g / scale).clamp(-qmax, qmax).to(torch.int32)
        return Quantized(q, scale, None, bits, tuple(x.shape), granularity)
    levels = 2**bits - 1
    lo, hi = g.amin(1, keepdim=True).clamp(max=0), g.amax(1, keepdim=True).clamp(min=0)  # keep 0 representable
    scale = ((hi - lo) / levels).clamp(min=tiny)
    zero = torch.round(-lo / scale).clamp(0, levels)
    q = (torch.round(g / scale) + zero).clamp(0, levels).to(torch.int32)
    return Quantized(q, scale, zero.to(torch.int32), bits, tuple(x.shape), granularity)


def dequantize(qx: Quantized):
    """The float tensor the codes stand for: scale * q (absmax) or scale * (q - zero) (zero-point)."""
    q = qx.q.float() if qx.zero is None else (qx.q - qx.zero).float()
    return (q * qx.scale).reshape(qx.shape)


def fake_quantize(x, bits: int, scheme: str = "absmax", granularity: str = "tensor", block_size: int = 64):
    """Quantize then dequantize `x`: the float tensor a `bits`-bit model would actually compute with."""
    return dequantize(quantize(x, bits, scheme, granularity, block_size)).to(x.dtype)


def n_groups(shape: tuple, granularity: str, block_size: int = 64) -> int:
    """How many scales a tensor of `shape` needs at this granularity."""
    numel = 1
    for d in shape:
        numel *= d
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; accepted: {GRANULARITIES}")
    return {"tensor": 1, "channel": shape[0] if len(shape) > 1 else 1, "block": -(-numel // block_size)}[granularity]


def quantized_nbytes(shape: tuple, bits: int, scheme: str = "absmax", granularity: str = "tensor",
                     block_size: int = 64, scale_bytes: int = 2) -> float:
    """Storage of the codes (bits per value) plus one scale (and one zero point) per group."""
    _check(bits, scheme, granularity, block_size)
    numel = 1
    for d in shape:
        numel *= d
    groups = n_groups(shape, granularity, block_size)
    per_group = scale_bytes + (bits / 8 if scheme == "zeropoint" else 0)  # a zero point is stored in `bits` bits
    return numel * bits / 8 + groups * per_group


def relative_error(x, x_hat) -> float:
    """||x - x^|| / ||x||: the reconstruction error relative to the tensor's size."""
    return float((x - x_hat).norm() / x.norm().clamp(min=1e-30))


def quantizable_linears(model, skip: tuple[str, ...] = ("lm_head",)) -> dict:
    """name -> linear layer (nn.Linear or GPT-2's Conv1D) of `model`, except names ending with one in `skip`."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, (torch.nn.Linear, Conv1D)) and name.split(".")[-1] not in skip}


def out_by_in(layer):
    """The layer's weight as (out_features, in_features): nn.Linear stores it so, GPT-2's Conv1D transposed."""
    return layer.weight.T if isinstance(layer, Conv1D) else layer.weight


def fake_quantize_model(model, bits: int, scheme: str = "absmax", granularity: str = "block",
                        block_size: int = 64, skip: tuple[str, ...] = ("lm_head",)) -> dict:
    """Replace every linear weight (except `skip`) by its fake-quantized copy, in place; returns the sizes.

    The returned dict has 'fp32_bytes' (the model as stored in fp32) and 'quantized_bytes' (quantized linears
    at `bits` bits with fp16 scales, everything else still fp32). Tied weights are counted once.
    """
    linears = quantizable_linears(model, skip)
    if not linears:
        raise ValueError("the model has no linear layers to quantize (all were skipped?)")
    seen, total, saved = set(), 0.0, 0.0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * 4.0
    done = set()
    with torch.no_grad():
        for layer in linears.values():
            w = out_by_in(layer)  # rows are output channels, for every layer type
            if id(layer.weight) in done:
                continue
            done.add(id(layer.weight))
            w.copy_(fake_quantize(w, bits, scheme, granularity, block_size))
            saved += w.numel() * 4.0 - quantized_nbytes(tuple(w.shape), bits, scheme, granularity, block_size)
    return {"fp32_bytes": total, "quantized_bytes": total - saved}


def _float_dtype(fmt: str) -> torch.dtype:
    """The torch dtype of a float format name, or a ValueError naming the accepted ones."""
    if fmt not in FLOAT_FORMATS:
        raise ValueError(f"unknown float format {fmt!r}; accepted: {tuple(FLOAT_FORMATS)}")
    return FLOAT_FORMATS[fmt]


def float_format(fmt: str) -> dict[str, float]:
    """Bits, exponent and mantissa bits, largest value, smallest normal value and eps of a float format."""
    info = torch.finfo(_float_dtype(fmt))
    mantissa = round(-math.log2(info.eps))  # eps = 2^-mantissa: the gap between 1 and the next number
    return {"bits": info.bits, "exponent_bits": info.bits - 1 - mantissa, "mantissa_bits": mantissa,
            "max": info.max, "smallest_normal": info.smallest_normal, "eps": info.eps}


def cast_roundtrip(x, fmt: str):
    """`x` stored in float format `fmt` and read back in its own dtype (round to nearest, inf past the max)."""
    return x.to(_float_dtype(fmt)).to(x.dtype)
