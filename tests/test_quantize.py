"""Hand-written quantization: exact small cases, error falling with bits, granularity, sizes, model fake-quant."""

import pytest
import torch

from hubhelpers import quantize as Q


def test_absmax_small_case_by_hand():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.26, 1.0])
    qx = Q.quantize(x, 3, "absmax")  # qmax = 3, scale = 1/3
    assert qx.q.tolist() == [[-3, -2, 0, 1, 3]]
    assert torch.allclose(Q.dequantize(qx), torch.tensor([-1.0, -2 / 3, 0.0, 1 / 3, 1.0]))


def test_zeropoint_small_case_by_hand_uses_the_whole_range():
    x = torch.tensor([0.0, 1.0, 2.0, 3.0])  # all >= 0: absmax would waste the negative half
    qx = Q.quantize(x, 2, "zeropoint")  # 4 levels, scale 1, zero 0
    assert qx.q.tolist() == [[0, 1, 2, 3]] and qx.zero.item() == 0
    assert torch.equal(Q.dequantize(qx), x)
    assert Q.relative_error(x, Q.fake_quantize(x, 2, "absmax")) > 0.1  # absmax has only {-1, 0, 1} * 3


@pytest.mark.parametrize("scheme", Q.SCHEMES)
def test_error_falls_with_bits_and_16_bits_is_near_exact(scheme):
    torch.manual_seed(0)
    x = torch.randn(64, 128)
    errors = [Q.relative_error(x, Q.fake_quantize(x, b, scheme, "block")) for b in (2, 3, 4, 8, 16)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-4 and errors[0] > 0.1


def test_finer_granularity_resists_an_outlier():
    torch.manual_seed(0)
    x = torch.randn(32, 128)
    x[0, 0] = 100.0  # one outlier
    err = {g: Q.relative_error(x[1:], Q.fake_quantize(x, 4, "absmax", g, 64)[1:]) for g in Q.GRANULARITIES}
    assert err["block"] < err["channel"] < err["tensor"]
    assert err["tensor"] > 0.5  # most weights round to zero when one value sets the scale


def test_sizes():
    assert Q.quantized_nbytes((128, 64), 8, "absmax", "tensor") == 128 * 64 + 2
    assert Q.quantized_nbytes((128, 64), 4, "absmax", "channel") == 128 * 64 / 2 + 128 * 2
    assert Q.quantized_nbytes((128, 64), 4, "zeropoint", "block", 64) == 128 * 64 / 2 + 128 * (2 + 0.5)
    assert Q.n_groups((10, 64), "block", 64) == 10


def test_fake_quantize_model_changes_linears_only_and_reports_size():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                                         num_attention_heads=2, tie_word_embeddings=True))
    before = {n: p.clone() for n, p in model.named_parameters()}
    sizes = Q.fake_quantize_model(model, 4, granularity="block", block_size=64)
    after = dict(model.named_parameters())
    assert not torch.equal(before["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"])
    assert torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])  # tied lm_head skipped
    n_linear = sum(m.weight.numel() for m in Q.quantizable_linears(model).values())
    expected_saved = n_linear * 4 - (n_linear / 2 + n_linear / 64 * 2)
    assert sizes["fp32_bytes"] - sizes["quantized_bytes"] == pytest.approx(expected_saved)
    w = after["model.layers.0.self_attn.q_proj.weight"].reshape(-1, 64)
    levels = (w / w.abs().amax(1, keepdim=True) * 7).round()
    assert torch.allclose(w, levels * w.abs().amax(1, keepdim=True) / 7, atol=1e-6)  # on the 4-bit grid


def test_bad_inputs_are_named():
    x = torch.randn(10)
    with pytest.raises(ValueError, match="bits"):
        Q.quantize(x, 1)
    with pytest.raises(ValueError, match="'minmax'"):
        Q.quantize(x, 4, "minmax")
    with pytest.raises(ValueError, match="'row'"):
        Q.quantize(x, 4, granularity="row")
    with pytest.raises(ValueError, match="block_size=64"):
        Q.quantize(x, 4, granularity="block")


def test_gpt2_conv1d_layers_are_quantized_by_output_channel(tiny_gpt2_dir):
    from transformers.pytorch_utils import Conv1D

    from hubhelpers.models import load_model

    model, _ = load_model(str(tiny_gpt2_dir), device="cpu")
    linears = Q.quantizable_linears(model)
    assert linears and all(isinstance(m, Conv1D) for m in linears.values()) and "lm_head" not in linears
    layer = linears["transformer.h.0.mlp.c_fc"]
    assert Q.out_by_in(layer).shape == (layer.nf, layer.weight.shape[0])  # (out, in), as nn.Linear stores it
    expected = Q.fake_quantize(Q.out_by_in(layer).detach().clone(), 4, "absmax", "channel", 64)
    Q.fake_quantize_model(model, 4, "absmax", "channel")
    assert torch.equal(Q.out_by_in(layer), expected)


def test_float_formats_read_from_finfo():
    fp16, bf16, fp32 = (Q.float_format(f) for f in ("fp16", "bf16", "fp32"))
    assert (fp16["exponent_bits"], fp16["mantissa_bits"]) == (5, 10)
    assert (bf16["exponent_bits"], bf16["mantissa_bits"]) == (8, 7)
    assert (fp32["exponent_bits"], fp32["mantissa_bits"]) == (8, 23)
    assert fp16["max"] == 65504 and fp16["smallest_normal"] == 2**-14 and fp16["eps"] == 2**-10
    assert bf16["smallest_normal"] == fp32["smallest_normal"] and bf16["max"] > 1e38  # fp32's exponent range
    with pytest.raises(ValueError, match="'fp8'"):
        Q.float_format("fp8")


def test_cast_roundtrip_rounds_to_nearest_and_overflows_fp16_only():
    x = torch.tensor([1 + 2**-10, 65504.0, 70000.0, 1e-8])
    fp16, bf16 = Q.cast_roundtrip(x, "fp16"), Q.cast_roundtrip(x, "bf16")
    assert fp16.dtype == bf16.dtype == torch.float32
    assert fp16[:2].tolist() == [1 + 2**-10, 65504.0] and torch.isinf(fp16[2]) and fp16[3] == 0  # under/overflow
    assert bf16[0] == 1.0 and bf16[2] == 70144.0 and bf16[3] > 0  # 8 significant bits, fp32's range
    with pytest.raises(ValueError, match="'int8'"):
        Q.cast_roundtrip(x, "int8")


def test_bf16_roundtrip_error_is_about_8x_fp16_and_within_half_eps():
    torch.manual_seed(0)
    x = torch.randn(256, 64) * 0.05
    err = {f: Q.relative_error(x, Q.cast_roundtrip(x, f)) for f in ("fp16", "bf16")}
    assert 6 < err["bf16"] / err["fp16"] < 10  # 3 fewer mantissa bits: 2^3
    assert all(0 < err[f] <= Q.float_format(f)["eps"] / 2 for f in err)  # round to nearest: at most half a step
