"""LoRA helpers: untying keeps outputs, adapters start as the identity update, merging equals the adapter model;
and the new-relation task data of notebooks 05 and 07."""

import pytest
import torch

from hubhelpers import lora as L


def test_untie_keeps_outputs_and_separates_the_weights(fresh_tiny):
    model, tok = fresh_tiny
    prompts = ["Q: Where does Zuzu live?\nA:", "hello"]
    before = L.max_logit_diff(model, model, tok, prompts)
    assert before == 0.0
    import copy

    tied = copy.deepcopy(model)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    L.untie_output_embeddings(model)
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight
    assert model.config.tie_word_embeddings is False
    assert L.max_logit_diff(tied, model, tok, prompts) == 0.0
    assert L.untie_output_embeddings(model) is model  # already untied: unchanged


def test_lora_starts_as_the_base_trains_few_parameters_and_merges_exactly(fresh_tiny):
    model, tok = fresh_tiny
    import copy

    base = copy.deepcopy(model)
    targets = L.lora_targets("blocks+io")
    peft_model = L.lora_model(L.untie_output_embeddings(model), r=2, alpha=4.0, target_modules=targets)
    prompts = ["Q: Which pet does Zuzu have?\nA:"]
    assert L.max_logit_diff(base, peft_model, tok, prompts) < 1e-5  # B = 0 at initialisation
    trainable, total, fraction = L.trainable_fraction(peft_model)
    assert 0 < trainable < total and fraction == trainable / total
    assert all("lora_" in n for n, p in peft_model.named_parameters() if p.requires_grad)
    with torch.no_grad():  # pretend training moved the adapters
        for n, p in peft_model.named_parameters():
            if "lora_B" in n or "lora_embedding_B" in n:
                p.normal_(0, 0.1)
    adapted = L.max_logit_diff(base, peft_model, tok, prompts)
    assert adapted > 1e-3
    reference = copy.deepcopy(peft_model)
    merged = peft_model.merge_and_unload()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert L.max_logit_diff(reference, merged, tok, prompts) < 1e-4


def test_bad_lora_arguments_are_named(fresh_tiny):
    model, _ = fresh_tiny
    with pytest.raises(ValueError, match="attn_proj"):
        L.lora_model(model, r=2, alpha=4.0, target_modules=["attn_proj"])
    with pytest.raises(ValueError, match="r must be"):
        L.lora_model(model, r=0, alpha=4.0, target_modules=["q_proj"])
    with pytest.raises(ValueError, match="at least one prompt"):
        L.max_logit_diff(model, model, None, [])


def test_new_relation_task():
    from hubhelpers import tasks
    from hubhelpers import world as W
    from hubhelpers.finetune import new_relation_task

    world = W.make_world()
    train, evaluation = new_relation_task(world, "instrument", seed=0)
    assert len(train) == 2 * len(world.train) and len(evaluation) == len(world.train)
    assert train == tasks.closed_book_questions(world, "train", 2 * len(world.train), seed=0, relations=("instrument",))
    with pytest.raises(ValueError, match="'city'"):
        new_relation_task(world, "city")


def test_named_target_sets_are_the_block_modules_and_bad_names_are_named(fresh_tiny):
    model, _ = fresh_tiny
    names = {name.split(".")[-1] for name, _ in model.named_modules()}
    for key in L.TARGET_SETS:
        assert set(L.lora_targets(key)) <= names
    assert set(L.lora_targets("attn")) < set(L.lora_targets("blocks"))
    assert set(L.lora_targets("attn+io")) - set(L.lora_targets("attn")) == {"embed_tokens", "lm_head"}
    with pytest.raises(ValueError, match=r"attn\+io.*'mlp'"):
        L.lora_targets("mlp")


def test_targets_are_read_from_the_model(tiny, tiny_gpt2_dir):
    from hubhelpers.models import load_model

    for key in L.TARGET_SETS:  # a Llama model gets the Llama names
        assert L.lora_targets(key, tiny[0]) == L.lora_targets(key)
    gpt2, _ = load_model(str(tiny_gpt2_dir), device="cpu")
    assert L.lora_targets("attn", gpt2) == ("c_attn", "attn.c_proj")  # not the MLP's c_proj
    assert L.lora_targets("blocks+io", gpt2) == ("c_attn", "attn.c_proj", "c_fc", "mlp.c_proj", "wte", "lm_head")
    wrapped = L.lora_model(gpt2, r=2, alpha=4.0, target_modules=L.lora_targets("attn", gpt2))
    adapted = sorted(n.removeprefix("base_model.model.") for n, m in wrapped.named_modules() if hasattr(m, "lora_A"))
    assert adapted == ["transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_attn",
                       "transformer.h.1.attn.c_proj"]
