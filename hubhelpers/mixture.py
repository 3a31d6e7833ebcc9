"""The pretraining mixture of the shipped base model: which kinds of TinyWorld text it reads, in what shares and order.

`pretraining_example` draws one example of the main run, `foundation_example` one of the short first run that grows
the induction circuit; `fingerprint` hashes what the generator produces, so a changed generator is noticed.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from hubhelpers.params import check_int
from hubhelpers.tasks import open_book_questions
from hubhelpers.world import (
    GENERATOR_VERSION,
    PRETRAIN_RELATIONS,
    PRETRAIN_WORDS,
    QUESTIONS,
    SENTENCES,
    VALUES,
    Example,
    Person,
    World,
    WorldConfig,
    article,
    bio,
    few_shot_block,
    fresh_name,
    make_world,
    open_book_example,
    qa_example,
    random_person,
)


def repeat_example(world: World, rng: random.Random, max_words: int = 20) -> Example:
    """A random sequence of value words and fresh names, then the same sequence again (scored on the repeat).

    Copying a sequence seen earlier is how a small model first grows an *induction* circuit (find the earlier
    occurrence of the current token, copy what followed it); reading by name builds on that circuit.
    """
    check_int("max_words", max_words)
    words = [rng.choice(PRETRAIN_WORDS) if rng.random() < 0.5 else fresh_name(rng, world)
             for _ in range(rng.randint(min(4, max_words), max_words))]
    seq = " ".join(words)
    return Example(f"{seq} |", f" {seq}\n", "repeat")


def _fresh_people(world: World, rng: random.Random, n: int, relation: str) -> list[Person]:
    """n people with fresh names and n different values of `relation` (so every answer is unambiguous)."""
    return [Person(fresh_name(rng, world), {relation: v}) for v in rng.sample(VALUES[relation], n)]


def recall_example(world: World, rng: random.Random, n: int) -> Example:
    """'name: value' lines about n fresh names, then one name again: look a value up by a (multi-token) name."""
    check_int("n", n)
    relation = rng.choice(PRETRAIN_RELATIONS)
    people = _fresh_people(world, rng, n, relation)
    query = rng.choice(people)
    lines = "".join(f"{p.name}: {p[relation]}\n" for p in people)
    return Example(f"{lines}{query.name}:", f" {query[relation]}\n", "recall", {"name": query.name})


def plain_reading_example(world: World, rng: random.Random, n: int) -> Example:
    """Open-book question over n one-sentence passages in one fixed wording: reading by name without paraphrase."""
    check_int("n", n)
    relation = rng.choice(PRETRAIN_RELATIONS)
    people = _fresh_people(world, rng, n, relation)
    context = " ".join(SENTENCES[relation][0].format(n=p.name, v=p[relation], a=article(p[relation]))
                       for p in people)
    query = rng.choice(people)
    prompt = f"Context: {context}\nQ: {QUESTIONS[relation][0].format(n=query.name)}\nA:"
    return Example(prompt, f" {query[relation]}\n", "plain_reading", {"name": query.name, "relation": relation})


MAPPING_INPUTS = VALUES["colour"]
MAPPING_OUTPUTS = VALUES["pet"]


def mapping_block(rng: random.Random, k: int) -> Example:
    """A fresh random colour->animal code defined only by k examples; the query repeats one input."""
    check_int("k", k)
    inputs = list(MAPPING_INPUTS)
    rng.shuffle(inputs)
    outputs = list(MAPPING_OUTPUTS)
    rng.shuffle(outputs)
    code = dict(zip(inputs, outputs))
    shown = [rng.choice(inputs[:4]) for _ in range(k)]
    query = rng.choice(shown)
    shots = "".join(f"{x} => {code[x]}\n" for x in shown)
    return Example(f"{shots}{query} =>", f" {code[query]}\n", "mapping", {"k": k, "query": query})


@dataclass(frozen=True)
class Mixture:
    """Weights of the pretraining example kinds and the reading curriculum."""

    bio: float = 0.1
    fresh_bio: float = 0.08  # passages about never-repeated names: teaches copying a name from context
    closed_book: float = 0.18
    open_book: float = 0.3
    few_shot: float = 0.1
    mapping: float = 0.05
    recall: float = 0.07  # 'name: value' look-ups: the name-matching step of reading, on its own
    plain_reading: float = 0.07  # reading by name in one fixed wording, a step towards paraphrased passages
    repeat: float = 0.05  # repeated sequences, kept in the main run so the induction circuit is not lost
    repeat_until: float = 0.39  # of the foundation run: copy repeated sequences first, then reading kinds
    keep_repeating: float = 0.25  # share of repeated sequences in the foundation run's reading part
    max_passages: int = 4
    focus_after: float = 0.45  # from this fraction of training on, reading from context gets more weight
    focus_open_book: float = 0.6  # the open-book weight then (the other kinds shrink in proportion)

    def weights(self, kinds: tuple[str, ...], progress: float) -> list[float]:
        """Sampling weights of `kinds` at this point of training."""
        base = [getattr(self, k) for k in kinds]
        if progress < self.focus_after:
            return base
        rest = (1 - self.focus_open_book) / (sum(base) - self.open_book)
        return [self.focus_open_book if k == "open_book" else w * rest for k, w in zip(kinds, base)]


def n_passages_for(rng: random.Random, mix: Mixture) -> int:
    """How many passages an open-book example gets: 1..max_passages, weighted to the harder end."""
    return rng.choice([1] + [n for n in range(2, mix.max_passages + 1) for _ in range(2)])  # 1,2,2,3,3,4,4


def fresh_open_book_example(world: World, rng: random.Random, n: int) -> Example:
    """An open-book question about one of n people with fresh names (reading practice for pretraining)."""
    people = [random_person(rng, fresh_name(rng, world), PRETRAIN_RELATIONS) for _ in range(n)]
    return open_book_example(people[0], people[1:], rng.choice(PRETRAIN_RELATIONS), rng)


READING_KINDS = ("open_book", "recall", "plain_reading")


def reading_example(world: World, rng: random.Random, kind: str, mix: Mixture) -> Example:
    """One example of a reading kind: open-book over 1..max passages, or a look-up / fixed wording over 2..max."""
    if kind == "open_book":
        return fresh_open_book_example(world, rng, n_passages_for(rng, mix))
    n = rng.randint(2, mix.max_passages)
    return recall_example(world, rng, n) if kind == "recall" else plain_reading_example(world, rng, n)


PRETRAIN_KINDS = ("bio", "fresh_bio", "closed_book", "open_book", "few_shot", "mapping", "recall", "plain_reading",
                  "repeat")


def pretraining_example(world: World, rng: random.Random, progress: float = 1.0,
                        mix: Mixture = Mixture()) -> Example:
    """Draw one pretraining example; only training people and fresh names ever appear."""
    kind = rng.choices(PRETRAIN_KINDS, weights=mix.weights(PRETRAIN_KINDS, progress))[0]
    if kind == "repeat":
        return repeat_example(world, rng)
    if kind in READING_KINDS:
        return reading_example(world, rng, kind, mix)
    if kind == "bio":
        return Example("", bio(rng.choice(world.train), rng) + "\n", "bio")
    if kind == "fresh_bio":
        return Example("", bio(random_person(rng, fresh_name(rng, world), PRETRAIN_RELATIONS), rng) + "\n", "bio")
    if kind == "closed_book":
        return qa_example(rng.choice(world.train), rng.choice(PRETRAIN_RELATIONS), rng)
    if kind == "few_shot":
        people = rng.sample(world.train, rng.randint(1, 9))
        return few_shot_block(people[:-1], people[-1], rng.choice(PRETRAIN_RELATIONS))
    return mapping_block(rng, rng.randint(1, 8))


def foundation_example(world: World, rng: random.Random, progress: float, mix: Mixture = Mixture()) -> Example:
    """The short first run: repeated sequences (the induction circuit forms), then reading kinds in equal shares.

    Trained on the full mix from the start, a model this small settles for the relation alone when several
    passages are given and never learns to match the asked name; this order makes name matching appear first.
    Repetition stays in the reading part (`keep_repeating`): without it the circuit is overwritten within a few
    hundred steps, before reading has learned to use it.
    """
    if progress < mix.repeat_until or rng.random() < mix.keep_repeating:
        return repeat_example(world, rng)
    return reading_example(world, rng, rng.choice(READING_KINDS), mix)


def pretraining_corpus(world: World, n: int, seed: int = 0, mix: Mixture = Mixture()) -> list[Example]:
    """A fixed list of n pretraining examples (the stream a trainer draws, laid out for inspection)."""
    check_int("n", n)
    rng = random.Random(f"corpus-{world.config.seed}-{seed}")
    return [pretraining_example(world, rng, i / n, mix) for i in range(n)]


def fingerprint(config: WorldConfig | None = None) -> str:
    """A hash of the generator's output for `config` (default: the shipped world): it changes with the generator."""
    world = make_world(config or WorldConfig())
    sample = {
        "version": GENERATOR_VERSION,
        "people": [[p.name, p.facts] for p in world.train + world.heldout],
        "corpus": [ex.text for ex in pretraining_corpus(world, 300)],
        "open": [ex.text for ex in open_book_questions(world, 20)],
    }
    return hashlib.sha256(json.dumps(sample, sort_keys=True).encode()).hexdigest()[:16]
