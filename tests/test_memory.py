"""The memory planner against published Llama-2 parameter counts, real models and measured bnb footprints."""

import pytest

from hubhelpers import memory as MEM

SMALL = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "tie_word_embeddings": False}


@pytest.mark.parametrize("name, published", [("Llama-2-7B", 6_738_415_616), ("Llama-2-13B", 13_015_864_320),
                                             ("Llama-2-70B", 68_976_648_192)])
def test_llama2_parameter_counts_are_exact(name, published):
    assert MEM.parameter_count(MEM.llama2_configs()[name]) == published


def test_parameter_count_equals_a_real_llama_with_gqa_and_tied_embeddings():
    from transformers import LlamaConfig, LlamaForCausalLM

    for tied in (False, True):
        cfg = LlamaConfig(**{**SMALL, "tie_word_embeddings": tied})
        model = LlamaForCausalLM(cfg)
        real = sum(p.numel() for p in model.parameters())  # parameters() yields a tied weight once
        assert MEM.parameter_count(cfg) == real


def test_lora_parameters_equal_peft_count():
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**SMALL)
    targets = ["q_proj", "v_proj", "down_proj", "lm_head"]
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=3, target_modules=targets))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert MEM.lora_parameters(cfg, 3, targets) == trainable
    assert MEM.lora_parameters(cfg, 3, ["q_proj"]) == 2 * 3 * (32 + 32)


def test_weight_bytes_by_format():
    n = MEM.parameter_count(SMALL)
    assert MEM.weight_bytes(SMALL, "fp32") == 4 * n
    assert MEM.weight_bytes(SMALL, "bf16") == MEM.weight_bytes(SMALL, "fp16") == 2 * n
    # a 64x64 matrix in NF4: 2048 bytes of codes + 64 blocks; fp32 absmax vs 8-bit absmax + 1 fp32 scale + offset
    assert MEM.quantized_bytes(4096, 64, "nf4", double_quant=False) == 2048 + 4 * 64
    assert MEM.quantized_bytes(4096, 64, "nf4", double_quant=True) == 2048 + 64 + 4 + 4
    assert MEM.quantized_bytes(4096, 64, "int8") == 4096 + 4 * 64
    nf4, int8, fp32 = (MEM.weight_bytes(SMALL, f) for f in ("nf4", "int8", "fp32"))
    assert nf4 < int8 < fp32
    # skipping more modules keeps more in other_dtype
    assert MEM.weight_bytes(SMALL, "nf4", skip_modules=("lm_head", "down_proj")) > nf4


def test_plan_components_and_fits():
    cfg = MEM.llama2_configs()["Llama-2-7B"]
    n = MEM.parameter_count(cfg)
    full = MEM.plan(cfg, "full")
    assert full.total == 16 * n  # fp32 weights + fp32 gradients + two fp32 moments
    lora = MEM.plan(cfg, "lora", r=16)
    qlora = MEM.plan(cfg, "qlora", r=16)
    assert lora.trainable_params == qlora.trainable_params == MEM.lora_parameters(cfg, 16)
    assert lora.optimizer == 8 * lora.trainable_params and lora.weights == 2 * n
    assert qlora.weights < 0.3 * lora.weights and qlora.total < lora.total < full.total
    assert not MEM.fits(full, 80) and MEM.fits(lora, 24) and MEM.fits(qlora, 16)
    assert not MEM.fits(MEM.plan(MEM.llama2_configs()["Llama-2-70B"], "lora"), 80)
    assert MEM.fits(MEM.plan(MEM.llama2_configs()["Llama-2-70B"], "qlora"), 48)
    rows = MEM.plan_table(MEM.llama2_configs())
    assert len(rows) == 9 and {"fits_16gb", "fits_80gb", "total_gib"} <= set(rows[0])


@pytest.mark.parametrize("quantization, fmt", [("8bit", "int8"), ("nf4", "nf4")])
def test_planner_matches_measured_bnb_footprint(quantization, fmt):
    """The shipped model in 8-bit / NF4: predicted weight bytes within 10% of get_memory_footprint()."""
    import warnings

    from hubhelpers.models import load_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="MatMul8bitLt")
        model, _ = load_model("tinyworld", quantization=quantization, device="cpu")
    measured = model.get_memory_footprint()
    predicted = MEM.weight_bytes(model.config, fmt, other_dtype="fp32")
    assert abs(predicted - measured) / measured < 0.10
    fp32 = MEM.weight_bytes(model.config, "fp32")
    assert predicted < 0.5 * fp32


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="'fp8'"):
        MEM.weight_bytes(SMALL, "fp8")
    with pytest.raises(ValueError, match="'adam'"):
        MEM.plan(SMALL, "adam")
    with pytest.raises(ValueError, match="'mlp'"):
        MEM.lora_parameters(SMALL, 4, ["mlp"])
    with pytest.raises(ValueError, match="r must be"):
        MEM.lora_parameters(SMALL, 0)
    with pytest.raises(ValueError, match="hidden_size"):
        MEM.parameter_count({"vocab_size": 10})
    with pytest.raises(ValueError, match="gpu_gib"):
        MEM.fits(MEM.plan(SMALL), -1)


def test_any_architecture_is_planned_from_a_meta_device_model(tiny_gpt2_dir):
    """GPT-2 (Conv1D, learned positions, tied head): the planner's count equals the real model's, with no memory."""
    from hubhelpers.lora import lora_model, lora_targets, trainable_fraction
    from hubhelpers.models import load_model

    model, _ = load_model(str(tiny_gpt2_dir), device="cpu")
    assert MEM.parameter_count(model.config) == sum(p.numel() for p in model.parameters())
    assert MEM.weight_bytes(model.config, "fp32") == model.get_memory_footprint()
    targets = lora_targets("blocks", model)
    expected = MEM.lora_parameters(model.config, 4, targets)
    assert trainable_fraction(lora_model(model, r=4, alpha=8.0, target_modules=targets))[0] == expected


def test_embedding_fraction_of_llama2_7b_and_tied_models():
    cfg = MEM.llama2_configs()["Llama-2-7B"]
    assert MEM.embedding_fraction(cfg) == pytest.approx(32000 * 4096 / 6_738_415_616)
    assert MEM.embedding_fraction(cfg, include_output=True) == pytest.approx(2 * 32000 * 4096 / 6_738_415_616)
    tied = {**SMALL, "tie_word_embeddings": True}  # one matrix for input and output: counted once
    assert MEM.embedding_fraction(tied, include_output=True) == MEM.embedding_fraction(tied)
    assert MEM.embedding_fraction(tied) == pytest.approx(96 * 32 / MEM.parameter_count(tied))
