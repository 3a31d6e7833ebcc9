"""The shipped encoder is found offline; embeddings and the classifier fine-tuning work on a tiny random BERT."""

import numpy as np
import pytest

from hubhelpers import encoders as E


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 1-layer random BERT with MiniLM's tokenizer, saved as a local directory."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(E.minilm_dir())
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    path = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def test_minilm_ships_offline():
    path = E.minilm_dir()
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    for alias in E.MINILM_ALIASES:
        assert E.resolve_encoder(alias) == str(path)


def test_bad_encoder_names_are_named(tmp_path):
    with pytest.raises(ValueError, match="encoder must be"):
        E.resolve_encoder("")
    with pytest.raises(FileNotFoundError, match="config.json"):
        E.resolve_encoder(str(tmp_path))
    assert E.resolve_encoder("org/some-model") == "org/some-model"


def test_minilm_embeddings_rank_a_paraphrase_first():
    model, tok = E.load_encoder("minilm")
    vecs = E.embed(model, tok, ["The cat sleeps on the mat.", "A cat is sleeping on a rug.", "Stock prices fell."])
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    sims = vecs @ vecs[0]
    assert sims[1] > sims[2] + 0.3


def test_embed_pools_over_real_tokens_only(tiny_bert):
    model, tok = E.load_encoder(str(tiny_bert))
    alone = E.embed(model, tok, ["short text"])
    padded = E.embed(model, tok, ["short text", "a much longer text that forces padding of the first one"])
    assert np.allclose(alone[0], padded[0], atol=1e-5)
    with pytest.raises(ValueError, match="at least one"):
        E.embed(model, tok, [])


def test_label_validation(tiny_bert):
    with pytest.raises(ValueError, match="distinct"):
        E.load_encoder(str(tiny_bert), labels=["a", "a"])
    with pytest.raises(ValueError, match="disagrees"):
        E.load_encoder(str(tiny_bert), num_labels=3, labels=["a", "b"])
    model, _ = E.load_encoder(str(tiny_bert), labels=["no", "yes"])
    with pytest.raises(ValueError, match="unknown labels"):
        E.label_ids(model, ["maybe"])


def test_finetune_classifier_learns_a_keyword_task(tiny_bert, tmp_path):
    texts = [f"the {w} is here" for w in ("red", "green")] * 16
    labels = ["warm" if "red" in t else "cool" for t in texts]
    model, tok = E.load_encoder(str(tiny_bert), labels=["cool", "warm"])
    trainer = E.finetune_classifier(model, tok, texts, labels, tmp_path, epochs=8, lr=5e-3, batch_size=8,
                                    disable_tqdm=True)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert losses[-1] < losses[0]
    assert E.predict_labels(model, tok, ["the red is here", "the green is here"]) == ["warm", "cool"]
    with pytest.raises(ValueError, match="as many labels"):
        E.finetune_classifier(model, tok, texts, labels[:-1], tmp_path)


def test_classification_texts_need_more_than_keywords():
    """Every text names a word of its topic and of a distractor topic, in both orders (see tasks.TOPIC_TEMPLATES)."""
    import re

    from hubhelpers import tasks
    from hubhelpers import world as W

    texts = tasks.classification_texts(W.make_world(), 400, seed=1)
    label_first = 0
    for d in texts:
        words = re.findall(r"[a-z]+", d["text"])
        own = [i for i, w in enumerate(words) if w in tasks.TOPICS[d["label"]]]
        other = [i for i, w in enumerate(words) if w in tasks.TOPICS[d["distractor"]]]
        assert own and other and d["label"] != d["distractor"], d
        label_first += own[0] < other[0]
    assert 0.3 < label_first / len(texts) < 0.7  # position alone does not give the label either
    assert {d["label"] for d in texts} == set(tasks.TOPICS)
