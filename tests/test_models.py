"""Tokenizer, model construction and the one loader (shipped name, local directories, hub ids offline)."""

import pytest
import torch

from hubhelpers import mixture
from hubhelpers import models as M
from hubhelpers import world as W


@pytest.fixture(scope="module")
def tok():
    world = W.make_world(W.WorldConfig(n_train=20, n_heldout=10))
    return M.train_tokenizer([ex.text for ex in mixture.pretraining_corpus(world, 300)], 400)


def test_tokenizer_round_trip_and_specials(tok):
    text = "Bolami lives in Arvel.\nQ: Where does Bolami live?\nA: Arvel"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert {tok.pad_token, tok.eos_token, tok.bos_token} == {"<|pad|>", "<|eos|>", "<|bos|>"}
    assert len(tok) <= 400


def test_chat_template_marks_assistant_tokens(tok):
    messages = [{"role": "user", "content": "Where does Bo live?"}, {"role": "assistant", "content": "Arvel"}]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text.startswith("<|bos|><|user|>\nWhere does Bo live?<|end|>\n<|assistant|>\nArvel<|end|>")
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    kept = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(kept) == "Arvel<|end|>"
    prompt = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n")


def test_empty_corpus_and_bad_vocab_are_named():
    with pytest.raises(ValueError, match="empty corpus"):
        M.train_tokenizer([], 400)
    with pytest.raises(ValueError, match="vocab_size"):
        M.train_tokenizer(["a b"], 10)


def test_build_model_counts_and_runs(tok):
    cfg = M.ModelConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2)
    model = M.build_model(cfg, tok)
    # embeddings (tied) + per layer: 4 attention projections, 3 MLP matrices, 2 norms; final norm
    expected = 400 * 32 + (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32
    assert M.count_parameters(model) == expected
    out = model(**tok(["Bo lives in"], return_tensors="pt"))
    assert out.logits.shape[-1] == 400
    with pytest.raises(ValueError, match="unknown model preset"):
        M.preset("huge")


def test_load_model_from_local_dir_of_another_architecture(tmp_path, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config).eval()  # eval: no dropout, so outputs are comparable
    model.save_pretrained(tmp_path / "gpt2-tiny", safe_serialization=True)
    tok.save_pretrained(tmp_path / "gpt2-tiny")
    loaded, loaded_tok = M.load_model(str(tmp_path / "gpt2-tiny"), device="cpu")
    assert type(loaded).__name__ == "GPT2LMHeadModel" and not loaded.training
    ids = loaded_tok("Bo lives", return_tensors="pt")
    assert torch.allclose(loaded(**ids).logits, model(**ids).logits)


def test_pickle_weights_are_refused(tmp_path, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=64))
    model.config.save_pretrained(tmp_path / "m")
    torch.save(model.state_dict(), tmp_path / "m" / "pytorch_model.bin")  # a pickle: never loaded
    tok.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match=r"only pickle weights \(pytorch_model.bin\).*allow_pickle=True"):
        M.load_model(str(tmp_path / "m"), device="cpu")
    loaded, _ = M.load_model(str(tmp_path / "m"), device="cpu", allow_pickle=True)  # the caller's explicit opt-in
    assert torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight)


def test_missing_local_dir_and_unknown_hub_id_offline(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="config.json"):
        M.load_model(str(tmp_path / "nowhere"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError, match="Accepted: 'tinyworld'"):
        M.load_model("no-such-org/no-such-model-xyz")


@pytest.mark.parametrize("kwargs, match", [
    ({"quantization": "3bit"}, "quantization"), ({"device": "tpu"}, "device"), ({"dtype": "int3"}, "dtype"),
    ({"task": "translation"}, "task"), ({"name_or_path": ""}, "model must be"),
    ({"allow_pickle": "yes"}, "allow_pickle"),
])
def test_bad_loader_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.load_model(**kwargs)


def test_is_shipped_names_the_shipped_models_only(tmp_path):
    assert M.is_shipped("tinyworld") and M.is_shipped(str(M.shipped_model_dir()))
    assert M.is_shipped("tinyworld", "minilm") and M.is_shipped("sentence-transformers/all-MiniLM-L6-v2")
    assert not M.is_shipped("HuggingFaceTB/SmolLM2-135M") and not M.is_shipped("tinyworld", str(tmp_path))


def test_chat_tokenizer_keeps_a_template_and_gives_a_base_model_the_plain_one(tiny, tiny_gpt2_dir):
    _, course_tok = tiny
    assert M.chat_tokenizer(course_tok) is course_tok and M.has_generation_markers(course_tok)
    _, base_tok = M.load_model(str(tiny_gpt2_dir), device="cpu")
    plain = M.chat_tokenizer(base_tok)
    assert plain is not base_tok and not base_tok.chat_template  # the loaded tokenizer is left as it was
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    assert plain.apply_chat_template(messages, tokenize=False) == f"User: Q?\nAssistant: A.{plain.eos_token}\n"
    assert plain.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True) == "User: Q?\nAssistant:"
    assert not M.has_generation_markers(plain)


def test_first_up_projection_by_architecture(tiny, tiny_gpt2_dir):
    assert M.first_up_projection(tiny[0])[0] == "model.layers.0.mlp.up_proj"
    gpt2, _ = M.load_model(str(tiny_gpt2_dir), device="cpu")
    assert M.first_up_projection(gpt2)[0] == "transformer.h.0.mlp.c_fc"
    with pytest.raises(ValueError, match="no module named one of"):
        M.first_up_projection(torch.nn.Linear(2, 2))
