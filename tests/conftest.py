"""Shared fixtures: a tiny random causal LM with the course's tokenizer and chat template, saved as a model dir."""

import pytest

TINY_CHAT = {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
             "num_attention_heads": 2, "max_position_embeddings": 256}


@pytest.fixture(scope="session")
def tiny_chat_model_dir(tmp_path_factory):
    """A directory holding a tiny LlamaForCausalLM + BPE tokenizer (chat template included), like tinyworld."""
    import torch

    from hubhelpers import mixture, tasks
    from hubhelpers import models as M
    from hubhelpers import world as W

    world = W.make_world()
    texts = [ex.text for ex in mixture.pretraining_corpus(world, 300)]
    texts += [m["content"] for ex in tasks.instruction_examples(world, 200) for m in ex["messages"]]
    tok = M.train_tokenizer(texts, TINY_CHAT["vocab_size"])
    torch.manual_seed(0)
    model = M.build_model(M.ModelConfig(**TINY_CHAT), tok)
    path = tmp_path_factory.mktemp("tiny_chat")
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    """A random GPT-2 with its own tokenizer, no chat template and no pad token (the matrix's random-gpt2)."""
    from hubhelpers.tooling.matrix import build_random_gpt2

    path = tmp_path_factory.mktemp("models") / "random-gpt2"
    build_random_gpt2(path)
    return path


@pytest.fixture(scope="module")
def world():
    """The default TinyWorld (the one the shipped model was trained on)."""
    from hubhelpers import world as W

    return W.make_world()


@pytest.fixture(scope="module")
def tiny(tiny_chat_model_dir):
    """(model, tokenizer) of the tiny chat model, loaded once per test module."""
    from hubhelpers.models import load_model

    return load_model(str(tiny_chat_model_dir), device="cpu")


@pytest.fixture()
def fresh_tiny(tiny_chat_model_dir):
    """(model, tokenizer) of the tiny chat model, loaded anew for a test that changes the model."""
    from hubhelpers.models import load_model

    return load_model(str(tiny_chat_model_dir), device="cpu")
