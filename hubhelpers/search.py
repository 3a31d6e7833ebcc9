"""Keyword vs semantic search on TinyWorld: paraphrased passages, TF-IDF scores, cosine similarity, top-1 accuracy,
mean-pooled embeddings from a causal LM, and a 2-D projection.

The search set asks TinyWorld's own questions (``world.QUESTIONS``) about each person, over passages that state each
fact in *other words* (``PARAPHRASES``: "Where does Vuma live?" -> "Vuma resides in Ironmoor."). Only the name is
shared, and every passage about a person shares it, so a keyword match finds the person but not the fact.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.manifold import TSNE

from hubhelpers import world as W
from hubhelpers.encoders import mean_pool
from hubhelpers.evaluation import batches
from hubhelpers.params import check_int

RELATIONS = W.PRETRAIN_RELATIONS
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "city": ("{n} resides in {v}.", "{n}'s house stands in {v}.", "{n} has settled in {v}."),
    "job": ("{n} earns a wage as {a} {v}.", "{n} is employed as {a} {v}.", "{n} makes money as {a} {v}."),
    "pet": ("{n} looks after {a} {v}.", "{n} feeds {a} {v} every morning.", "{n} takes care of {a} {v}."),
    "colour": ("{n} prefers the shade {v}.", "{n} adores anything {v}.", "{n} always picks {v} clothes."),
    "month": ("Each {v}, {n} blows out candles on a cake.", "{n} turns a year older every {v}.",
              "{n} entered life in {v}."),
}
STOP_WORDS = frozenset(("a", "an", "the", "in", "of", "is", "does", "do", "what", "which", "where", "when", "who", "s",
                        "for", "to", "on", "at", "by", "and", "every", "each"))


@dataclass(frozen=True)
class SearchSet:
    """Passages and queries with the index of each query's answer passage."""

    passages: list[str]
    passage_keys: list[tuple[str, str]]
    queries: list[str]
    answers: list[int]


def paraphrase_passage(person: W.Person, relation: str, rng: random.Random) -> str:
    """One sentence stating `relation` of `person` in words that TinyWorld's questions do not use."""
    W.check_relation(relation, RELATIONS)
    value = person[relation]
    return rng.choice(PARAPHRASES[relation]).format(n=person.name, v=value, a=W.article(value))


def search_set(world: W.World, n_people: int, seed: int = 0, split: str = "heldout") -> SearchSet:
    """One paraphrased passage per (person, relation) and one TinyWorld question per (person, relation)."""
    check_int("n_people", n_people)
    people = list(world.heldout if split == "heldout" else W.people_of(world, split))
    if n_people > len(people):
        raise ValueError(f"n_people={n_people} exceeds the {len(people)} people of split {split!r}")
    rng = random.Random(f"search-{split}-{seed}")
    people = rng.sample(people, n_people)
    keys = [(p.name, r) for p in people for r in RELATIONS]
    passages = [paraphrase_passage(p, r, rng) for p in people for r in RELATIONS]
    queries = [W.question(p, r, rng) for p in people for r in RELATIONS]
    return SearchSet(passages, keys, queries, list(range(len(keys))))


def content_words(text: str) -> set[str]:
    """Lower-case words of `text` minus STOP_WORDS."""
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP_WORDS}


def shared_words(query: str, passage: str, ignore: Sequence[str] = ()) -> set[str]:
    """Content words the query and the passage have in common (minus `ignore`, e.g. the person's name)."""
    return (content_words(query) & content_words(passage)) - {w.lower() for w in ignore}


def tfidf_scores(queries: Sequence[str], passages: Sequence[str]):
    """Keyword relevance: cosine similarity of TF-IDF vectors (sklearn), one row per query."""
    if not queries or not passages:
        raise ValueError(f"need queries and passages, got {len(queries)} and {len(passages)}")
    vectorizer = TfidfVectorizer(lowercase=True, token_pattern=r"[A-Za-z]+", stop_words=sorted(STOP_WORDS))
    docs = vectorizer.fit_transform(list(passages))
    return (vectorizer.transform(list(queries)) @ docs.T).toarray()


def cosine_matrix(a, b):
    """Cosine similarity of every row of `a` with every row of `b` (numpy)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need two 2-D arrays with the same width, got shapes {a.shape} and {b.shape}")
    a = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    b = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return a @ b.T


def top1_accuracy(scores, answers: Sequence[int]) -> float:
    """Fraction of queries (rows of `scores`) whose highest-scoring passage is the answer (ties: lowest index)."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] != len(answers) or not len(answers):
        raise ValueError(f"scores must be (n_queries, n_passages) with n_queries={len(answers)}, got {scores.shape}")
    return float(np.mean(scores.argmax(1) == np.asarray(answers)))


def lm_embeddings(model, tokenizer, texts: Sequence[str], layer: int = -1, batch_size: int = 64):
    """Sentence vectors from a causal LM: hidden states of `layer`, mean-pooled over real tokens, L2-normalised."""
    if not texts:
        raise ValueError("lm_embeddings needs at least one text, got none")
    n_layers = model.config.num_hidden_layers
    check_int("layer", layer, low=-(n_layers + 1), high=n_layers)  # 0: the embeddings, -1: the last layer
    rows = []
    for chunk in batches(list(texts), batch_size):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            hidden = model(**enc, output_hidden_states=True).hidden_states[layer]
        pooled = mean_pool(hidden, enc["attention_mask"])
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
    return np.concatenate(rows)


def project_2d(vectors, method: str = "pca", seed: int = 0):
    """A 2-D projection of row vectors with sklearn's PCA or t-SNE."""
    vectors = np.asarray(vectors)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        perplexity = min(30.0, max(2.0, (len(vectors) - 1) / 3))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    raise ValueError(f"unknown projection method {method!r}; accepted: 'pca', 'tsne'")
