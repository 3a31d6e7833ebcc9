"""Keyword vs semantic search helpers: the paraphrased search set, TF-IDF, cosine, top-1, LM embeddings, projection."""

import numpy as np
import pytest

from hubhelpers import search as S
from hubhelpers import world as W


@pytest.fixture(scope="module")
def small_world():
    return W.make_world(W.WorldConfig(n_train=10, n_heldout=8))


def test_search_set_pairs_each_question_with_a_paraphrase_sharing_only_the_name(small_world):
    data = S.search_set(small_world, 4, seed=1)
    assert len(data.passages) == len(data.queries) == 4 * len(S.RELATIONS) == len(data.answers)
    assert len(set(data.passage_keys)) == len(data.passage_keys)
    heldout = {p.name: p for p in small_world.heldout}
    for q, a in zip(data.queries, data.answers):
        name, relation = data.passage_keys[a]
        assert name in q and heldout[name][relation] in data.passages[a]
        assert S.shared_words(q, data.passages[a], ignore=[name]) == set()
    assert S.search_set(small_world, 4, seed=1) == data


def test_search_set_rejects_bad_sizes(small_world):
    with pytest.raises(ValueError, match="n_people=9"):
        S.search_set(small_world, 9)
    with pytest.raises(ValueError, match="0"):
        S.search_set(small_world, 0)
    with pytest.raises(ValueError, match="'colour2'"):
        S.paraphrase_passage(small_world.heldout[0], "colour2", None)


def test_tfidf_scores_match_the_shared_rare_word():
    passages = ["the cat sat on the mat", "a dog ran in the park", "storm and snow"]
    scores = S.tfidf_scores(["where is the dog", "snow today"], passages)
    assert scores.shape == (2, 3)
    assert S.top1_accuracy(scores, [1, 2]) == 1.0
    assert scores[0, 0] == 0.0  # 'the' is a stop word: no shared content word


def test_cosine_matrix_equals_a_direct_computation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(4, 5))
    expected = np.array([[x @ y / np.linalg.norm(x) / np.linalg.norm(y) for y in b] for x in a])
    assert np.allclose(S.cosine_matrix(a, b), expected)
    with pytest.raises(ValueError, match="same width"):
        S.cosine_matrix(a, rng.normal(size=(2, 4)))


def test_top1_accuracy_counts_argmax_hits_and_checks_shapes():
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.7]])
    assert S.top1_accuracy(scores, [0, 1, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="n_queries=2"):
        S.top1_accuracy(scores, [0, 1])


def test_lm_embeddings_mean_pool_the_hidden_states(tiny_chat_model_dir):
    import torch

    from hubhelpers.models import load_model

    model, tok = load_model(str(tiny_chat_model_dir))
    texts = ["Ada lives in Arvel.", "Bob owns a cat and a dog."]
    vectors = S.lm_embeddings(model, tok, texts, layer=-1)
    assert vectors.shape == (2, model.config.hidden_size)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    ids = tok(texts[1], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        hidden = model(**ids, output_hidden_states=True).hidden_states[-1][0].mean(0)
    assert np.allclose(vectors[1], (hidden / hidden.norm()).numpy(), atol=1e-5)  # padding does not leak in
    with pytest.raises(ValueError, match="layer"):
        S.lm_embeddings(model, tok, texts, layer=99)


def test_project_2d_pca_keeps_the_main_direction():
    rng = np.random.default_rng(0)
    x = np.outer(np.linspace(-1, 1, 20), [3.0, 0, 0, 0]) + rng.normal(scale=0.01, size=(20, 4))
    xy = S.project_2d(x, "pca")
    assert xy.shape == (20, 2) and abs(np.corrcoef(xy[:, 0], x[:, 0])[0, 1]) > 0.99
    assert S.project_2d(x, "tsne").shape == (20, 2)
    with pytest.raises(ValueError, match="'umap'"):
        S.project_2d(x, "umap")
