"""TinyWorld: a deterministic, seeded generator of a small fictional world, its sentences and questions.

Same `WorldConfig` -> byte-identical output. People are split into *training* people (their facts appear in
pretraining and fine-tuning text) and *held-out* people (their facts appear in no training text: they are
reachable only through a context passage, which is what makes hallucination and retrieval measurable).
What the base model is pretrained on lives in `mixture`; the evaluation sets and each lesson's data in `tasks`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from hubhelpers.params import check_int

GENERATOR_VERSION = "tinyworld-2"

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
VOWELS = ("a", "e", "i", "o", "u")

CITIES = {
    "Arvel": "Norland", "Brisk": "Norland", "Corlin": "Norland",
    "Dunmor": "Estmark", "Elbow": "Estmark", "Fenwick": "Estmark",
    "Glimmer": "Sudria", "Harrow": "Sudria", "Ironmoor": "Sudria",
    "Juniper": "Westvale", "Kestrel": "Westvale", "Lantern": "Westvale",
}
VALUES: dict[str, tuple[str, ...]] = {
    "city": tuple(CITIES),
    "job": ("baker", "farmer", "doctor", "teacher", "painter", "sailor", "miner", "tailor", "potter", "singer"),
    "pet": ("cat", "dog", "owl", "goat", "horse", "rabbit", "parrot", "turtle"),
    "colour": ("red", "blue", "green", "yellow", "purple", "orange", "white", "black"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"),
    # Reserved relations: never in pretraining text; new knowledge for the fine-tuning lessons.
    "fruit": ("apple", "pear", "plum", "cherry", "mango", "lemon", "peach", "grape"),
    "instrument": ("flute", "drum", "harp", "violin", "trumpet", "guitar", "piano", "cello"),
}
PRETRAIN_RELATIONS = ("city", "job", "pet", "colour", "month")
RESERVED_RELATIONS = ("fruit", "instrument")
PRETRAIN_WORDS = tuple(sorted({v for r in PRETRAIN_RELATIONS for v in VALUES[r]}))  # every value a passage can state
RELATIONS = PRETRAIN_RELATIONS + RESERVED_RELATIONS


def article(word: str) -> str:
    """'an' before a vowel sound, else 'a'."""
    return "an" if word[0].lower() in "aeiou" else "a"


SENTENCES: dict[str, tuple[str, ...]] = {
    "city": ("{n} lives in {v}.", "{n} has a home in {v}.", "{n} lives in the town of {v}."),
    "job": ("{n} works as {a} {v}.", "{n} is {a} {v} by trade.", "By trade, {n} is {a} {v}."),
    "pet": ("{n} has a pet {v}.", "{n} owns {a} {v}.", "{n} keeps {a} {v} at home."),
    "colour": ("{n}'s favourite colour is {v}.", "{n} likes the colour {v} best.", "The colour {n} loves is {v}."),
    "month": ("{n} was born in {v}.", "{n}'s birthday is in {v}.", "{n} came into the world in {v}."),
    "fruit": ("{n}'s favourite fruit is the {v}.", "{n} likes to eat {a} {v} every day."),
    "instrument": ("{n} plays the {v}.", "{n} practises the {v} every evening."),
}
QUESTIONS: dict[str, tuple[str, ...]] = {
    "city": ("Where does {n} live?", "In which town does {n} live?"),
    "job": ("What is {n}'s job?", "What does {n} do for a living?"),
    "pet": ("What pet does {n} have?", "Which animal does {n} own?"),
    "colour": ("What is {n}'s favourite colour?", "Which colour does {n} like best?"),
    "month": ("In which month was {n} born?", "When is {n}'s birthday?"),
    "fruit": ("What is {n}'s favourite fruit?", "Which fruit does {n} like?"),
    "instrument": ("Which instrument does {n} play?", "What does {n} play?"),
}


@dataclass(frozen=True)
class WorldConfig:
    """Size and seed of a TinyWorld."""

    seed: int = 0
    n_train: int = 160
    n_heldout: int = 120


@dataclass(frozen=True)
class Person:
    """One fictional person and their facts (relation -> value)."""

    name: str
    facts: dict = field(hash=False, compare=True)

    def __getitem__(self, relation: str) -> str:
        return self.facts[relation]


@dataclass(frozen=True)
class World:
    """The generated world: training people, held-out people and the cities' countries."""

    config: WorldConfig
    train: tuple[Person, ...]
    heldout: tuple[Person, ...]
    countries: dict = field(hash=False)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.train + self.heldout)


@dataclass(frozen=True)
class Example:
    """A training or evaluation text: the model conditions on `prompt` and is scored on `completion`."""

    prompt: str
    completion: str
    kind: str
    meta: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def check_relation(relation: str, allowed: tuple[str, ...] = RELATIONS) -> str:
    """Return `relation` or raise a ValueError naming the accepted ones."""
    if relation not in allowed:
        raise ValueError(f"unknown relation {relation!r}; accepted: {', '.join(allowed)}")
    return relation



def random_name(rng: random.Random) -> str:
    """A pronounceable name of 2 or 3 consonant-vowel syllables, e.g. 'Bolami'."""
    n = rng.choice((2, 3, 3))
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(n)).capitalize()


def random_person(rng: random.Random, name: str, relations: tuple[str, ...] = RELATIONS) -> Person:
    """A person with uniformly drawn facts."""
    return Person(name, {r: rng.choice(VALUES[r]) for r in relations})


def make_world(config: WorldConfig = WorldConfig()) -> World:
    """Generate the world for `config` (deterministic)."""
    check_int("n_train", config.n_train)
    check_int("n_heldout", config.n_heldout)
    check_int("seed", config.seed, low=0)
    rng = random.Random(f"world-{config.seed}")
    names: list[str] = []
    while len(names) < config.n_train + config.n_heldout:
        name = random_name(rng)
        if name not in names and name not in CITIES:
            names.append(name)
    people = [random_person(rng, n) for n in names]
    return World(config, tuple(people[: config.n_train]), tuple(people[config.n_train:]), dict(CITIES))


def fresh_name(rng: random.Random, world: World) -> str:
    """A random name that belongs to no person of the world (for reading-practice passages)."""
    taken = world.names
    while True:
        name = random_name(rng)
        if name not in taken and name not in CITIES:
            return name


def sentence(person: Person, relation: str, rng: random.Random) -> str:
    """One sentence stating `relation` of `person`, in a random paraphrase."""
    value = person[relation]
    return rng.choice(SENTENCES[relation]).format(n=person.name, v=value, a=article(value))


def bio(person: Person, rng: random.Random, relations: tuple[str, ...] = PRETRAIN_RELATIONS,
        must: str | None = None, k: int | None = None) -> str:
    """A short passage of k sentences about `person` (always including relation `must`)."""
    chosen = list(relations)
    rng.shuffle(chosen)
    chosen = chosen[: k or len(chosen)]
    if must is not None and must not in chosen:
        chosen[rng.randrange(len(chosen))] = must
    return " ".join(sentence(person, r, rng) for r in chosen)


def question(person: Person, relation: str, rng: random.Random) -> str:
    """A question asking for `relation` of `person`."""
    return rng.choice(QUESTIONS[relation]).format(n=person.name)


def qa_example(person: Person, relation: str, rng: random.Random, context: str | None = None) -> Example:
    """A closed-book (no context) or open-book question-answer example."""
    q = f"Q: {question(person, relation, rng)}\nA:"
    prompt = q if context is None else f"Context: {context}\n{q}"
    return Example(prompt, f" {person[relation]}\n", "open_book" if context else "closed_book",
                   {"name": person.name, "relation": relation})


def open_book_example(target: Person, distractors: list[Person], relation: str, rng: random.Random,
                      relations: tuple[str, ...] = PRETRAIN_RELATIONS) -> Example:
    """A question about `target` whose answer sits in one of 1 + len(distractors) shuffled passages."""
    people = [target, *distractors]
    rng.shuffle(people)
    passages = [bio(p, rng, relations, must=relation, k=rng.randint(2, 3)) for p in people]
    ex = qa_example(target, relation, rng, context=" ".join(passages))
    return Example(ex.prompt, ex.completion, ex.kind, {**ex.meta, "n_passages": len(people)})


def few_shot_block(people: list[Person], query: Person, relation: str) -> Example:
    """'name -> value' lines for `people`, then the query: the relation is defined only by the examples."""
    shots = "".join(f"{p.name} -> {p[relation]}\n" for p in people)
    return Example(f"{shots}{query.name} ->", f" {query[relation]}\n", "few_shot",
                   {"name": query.name, "relation": relation, "k": len(people)})


def people_of(world: World, split: str) -> tuple[Person, ...]:
    """The people of a split ('train' or 'heldout'), or a ValueError naming the accepted splits."""
    if split == "train":
        return world.train
    if split == "heldout":
        return world.heldout
    raise ValueError(f"unknown split {split!r}; accepted: 'train', 'heldout'")


def leaked_names(texts: list[str], names: set[str] | frozenset[str]) -> set[str]:
    """The names that occur as whole words in any of `texts` (a name inside a longer word does not count)."""
    words: set[str] = set()
    for t in texts:
        words.update(re.findall(r"[A-Za-z]+", t))
    return set(names) & words
