"""TinyWorld: a deterministic, seeded generator of a small fictional world and every data set the course needs.

Same `WorldConfig` -> byte-identical output. People are split into *training* people (their facts appear in
pretraining and fine-tuning text) and *held-out* people (their facts appear in no training text: they are
reachable only through a context passage, which is what makes hallucination and retrieval measurable).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field

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


def _article(word: str) -> str:
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


def _check_count(name: str, value: int, minimum: int = 1) -> int:
    """Validate a count argument."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def random_name(rng: random.Random) -> str:
    """A pronounceable name of 2 or 3 consonant-vowel syllables, e.g. 'Bolami'."""
    n = rng.choice((2, 3, 3))
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(n)).capitalize()


def random_person(rng: random.Random, name: str, relations: tuple[str, ...] = RELATIONS) -> Person:
    """A person with uniformly drawn facts."""
    return Person(name, {r: rng.choice(VALUES[r]) for r in relations})


def make_world(config: WorldConfig = WorldConfig()) -> World:
    """Generate the world for `config` (deterministic)."""
    _check_count("n_train", config.n_train)
    _check_count("n_heldout", config.n_heldout)
    if not isinstance(config.seed, int) or config.seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {config.seed!r}")
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
    return rng.choice(SENTENCES[relation]).format(n=person.name, v=value, a=_article(value))


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


def repeat_example(world: World, rng: random.Random, max_words: int = 20) -> Example:
    """A random sequence of value words and fresh names, then the same sequence again (scored on the repeat).

    Copying a sequence seen earlier is how a small model first grows an *induction* circuit (find the earlier
    occurrence of the current token, copy what followed it); reading by name builds on that circuit.
    """
    _check_count("max_words", max_words)
    words = [rng.choice(PRETRAIN_WORDS) if rng.random() < 0.5 else fresh_name(rng, world)
             for _ in range(rng.randint(min(4, max_words), max_words))]
    seq = " ".join(words)
    return Example(f"{seq} |", f" {seq}\n", "repeat")


def _fresh_people(world: World, rng: random.Random, n: int, relation: str) -> list[Person]:
    """n people with fresh names and n different values of `relation` (so every answer is unambiguous)."""
    return [Person(fresh_name(rng, world), {relation: v}) for v in rng.sample(VALUES[relation], n)]


def recall_example(world: World, rng: random.Random, n: int) -> Example:
    """'name: value' lines about n fresh names, then one name again: look a value up by a (multi-token) name."""
    _check_count("n", n)
    relation = rng.choice(PRETRAIN_RELATIONS)
    people = _fresh_people(world, rng, n, relation)
    query = rng.choice(people)
    lines = "".join(f"{p.name}: {p[relation]}\n" for p in people)
    return Example(f"{lines}{query.name}:", f" {query[relation]}\n", "recall", {"name": query.name})


def plain_reading_example(world: World, rng: random.Random, n: int) -> Example:
    """Open-book question over n one-sentence passages in one fixed wording: reading by name without paraphrase."""
    _check_count("n", n)
    relation = rng.choice(PRETRAIN_RELATIONS)
    people = _fresh_people(world, rng, n, relation)
    context = " ".join(SENTENCES[relation][0].format(n=p.name, v=p[relation], a=_article(p[relation]))
                       for p in people)
    query = rng.choice(people)
    prompt = f"Context: {context}\nQ: {QUESTIONS[relation][0].format(n=query.name)}\nA:"
    return Example(prompt, f" {query[relation]}\n", "plain_reading", {"name": query.name, "relation": relation})


MAPPING_INPUTS = VALUES["colour"]
MAPPING_OUTPUTS = VALUES["pet"]


def mapping_block(rng: random.Random, k: int) -> Example:
    """A fresh random colour->animal code defined only by k examples; the query repeats one input."""
    _check_count("k", k)
    inputs = list(MAPPING_INPUTS)
    rng.shuffle(inputs)
    outputs = list(MAPPING_OUTPUTS)
    rng.shuffle(outputs)
    code = dict(zip(inputs, outputs))
    shown = [rng.choice(inputs[:4]) for _ in range(k)]
    query = rng.choice(shown)
    shots = "".join(f"{x} => {code[x]}\n" for x in shown)
    return Example(f"{shots}{query} =>", f" {code[query]}\n", "mapping", {"k": k, "query": query})


# ---------------------------------------------------------------------------------------------------------
# Pretraining mixture
# ---------------------------------------------------------------------------------------------------------

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
    _check_count("n", n)
    rng = random.Random(f"corpus-{world.config.seed}-{seed}")
    return [pretraining_example(world, rng, i / n, mix) for i in range(n)]


# ---------------------------------------------------------------------------------------------------------
# Evaluation sets (fixed seeds; these are what the capability gates score)
# ---------------------------------------------------------------------------------------------------------

def closed_book_questions(world: World, split: str = "train", n: int = 200, seed: int = 0,
                          relations: tuple[str, ...] = PRETRAIN_RELATIONS) -> list[Example]:
    """n closed-book questions about `split` people ('train' or 'heldout')."""
    people = _split(world, split)
    rng = random.Random(f"closed-{split}-{seed}")
    pairs = [(p, r) for p in people for r in relations]
    rng.shuffle(pairs)
    return [qa_example(p, r, rng) for p, r in (pairs * (1 + n // len(pairs)))[:n]]


def open_book_questions(world: World, n: int = 200, n_passages: int | tuple[int, ...] = (2, 3),
                        seed: int = 0, split: str = "heldout") -> list[Example]:
    """n open-book questions about `split` people; distractor passages are about other people of the split."""
    people = _split(world, split)
    counts = (n_passages,) if isinstance(n_passages, int) else tuple(n_passages)
    for c in counts:
        _check_count("n_passages", c)
    rng = random.Random(f"open-{split}-{seed}")
    out = []
    for i in range(n):
        target = people[i % len(people)]
        others = rng.sample([p for p in people if p is not target], counts[i % len(counts)] - 1)
        out.append(open_book_example(target, others, rng.choice(PRETRAIN_RELATIONS), rng))
    return out


def few_shot_questions(world: World, k: int, n: int = 200, seed: int = 0) -> list[Example]:
    """n few-shot blocks with k examples about training people; the query person is never a shot."""
    _check_count("k", k, minimum=0)
    rng = random.Random(f"fewshot-{seed}")
    out = []
    for _ in range(n):
        people = rng.sample(world.train, k + 1)
        out.append(few_shot_block(people[:k], people[k], rng.choice(PRETRAIN_RELATIONS)))
    return out


def majority_baseline(examples: list[Example]) -> float:
    """Accuracy of always answering the most common gold answer of each relation."""
    by_rel: dict[str, list[str]] = {}
    for ex in examples:
        by_rel.setdefault(ex.meta["relation"], []).append(ex.completion.strip())
    hits = sum(max(vals.count(v) for v in set(vals)) for vals in by_rel.values())
    return hits / len(examples)


def _split(world: World, split: str) -> tuple[Person, ...]:
    """The people of a split, or a ValueError naming the accepted splits."""
    if split == "train":
        return world.train
    if split == "heldout":
        return world.heldout
    raise ValueError(f"unknown split {split!r}; accepted: 'train', 'heldout'")


# ---------------------------------------------------------------------------------------------------------
# Data for the later lessons
# ---------------------------------------------------------------------------------------------------------

# (user template, assistant template) per instruction kind; every kind is checkable by a program, and each states
# the same fact in its own format, so the format must be read from the instruction.
INSTRUCTIONS = {
    "arrow": ("Answer in the form 'name -> answer'. {q}", "{n} -> {v}"),
    "sentence": ("Answer in a full sentence. {q}", "{s}"),
    "name_first": ("Start your answer with the person's name. {q}", "{n}: {v}"),
    "topic_first": ("Say what was asked about, then the answer. {q}", "{r}: {v}"),
}
TOPIC_WORDS = {"city": "town", "job": "job", "pet": "pet", "colour": "colour", "month": "month",
               "fruit": "fruit", "instrument": "instrument"}


def instruction_examples(world: World, n: int, seed: int = 0, split: str = "train",
                         relations: tuple[str, ...] = PRETRAIN_RELATIONS) -> list[dict]:
    """Chat examples {'messages': [...], 'instruction', 'relation', 'name', 'value'} with checkable instructions."""
    _check_count("n", n)
    rng = random.Random(f"instruct-{split}-{seed}")
    people = _split(world, split)
    out = []
    for _ in range(n):
        p, r, kind = rng.choice(people), rng.choice(relations), rng.choice(sorted(INSTRUCTIONS))
        user_t, answer_t = INSTRUCTIONS[kind]
        s = SENTENCES[r][0].format(n=p.name, v=p[r], a=_article(p[r]))
        answer = answer_t.format(v=p[r], s=s, n=p.name, r=TOPIC_WORDS[r])
        user = user_t.format(q=question(p, r, rng))
        out.append({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                    "instruction": kind, "relation": r, "name": p.name, "value": p[r]})
    return out


def preference_pairs(world: World, n: int, seed: int = 0) -> list[dict]:
    """(prompt, chosen, rejected): chosen is the true, concise answer; rejected is false or verbose."""
    _check_count("n", n)
    rng = random.Random(f"prefs-{seed}")
    out = []
    for _ in range(n):
        p, r = rng.choice(world.train), rng.choice(PRETRAIN_RELATIONS)
        wrong = rng.choice([v for v in VALUES[r] if v != p[r]])
        verbose = f" Well, let me think about {p.name} for a while; it could be many things, maybe {p[r]}.\n"
        rejected = rng.choice((f" {wrong}\n", verbose))
        out.append({"prompt": f"Q: {question(p, r, rng)}\nA:", "chosen": f" {p[r]}\n", "rejected": rejected,
                    "name": p.name, "relation": r})
    return out


EXTRACTION_FIELDS = ("name", "city", "job", "pet", "month")


def extraction_documents(world: World, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """Short documents with gold JSON records; some fields are absent (null) in both."""
    _check_count("n", n)
    rng = random.Random(f"extract-{split}-{seed}")
    out = []
    for _ in range(n):
        p = rng.choice(_split(world, split))
        present = [r for r in EXTRACTION_FIELDS[1:] if rng.random() < 0.7] or ["city"]
        rng.shuffle(present)
        text = " ".join(sentence(p, r, rng) for r in present)
        gold = {"name": p.name, **{r: (p[r] if r in present else None) for r in EXTRACTION_FIELDS[1:]}}
        out.append({"text": text, "gold": gold})
    return out


TOPICS = {
    "food": ("bread", "soup", "cake", "pie", "stew", "cheese"),
    "travel": ("road", "boat", "bridge", "map", "journey", "cart"),
    "animals": ("cat", "dog", "owl", "goat", "horse", "rabbit"),
    "weather": ("rain", "snow", "wind", "storm", "sun", "fog"),
}
# Every text names a word of the labelled topic ({w}) *and* a word of another topic ({d}); which one the letter is
# about is said by negation and word order ("about the w, not the d", "not about the d but about the w"), so the
# words alone do not give the label: a bag of words, or an embedding that mostly averages them, is near 0.5.
TOPIC_TEMPLATES = (
    "{n} wrote about the {w}, not the {d}.",
    "{n} wrote not about the {d} but about the {w}.",
    "The {w}, not the {d}, was the subject of {n}'s letter.",
    "{n}'s letter from {c} was never about the {d}; it was about the {w}.",
    "It was the {w} that {n} wrote about, not the {d}.",
    "{n} meant to write about the {d} but wrote about the {w} instead.",
    "Forget the {d}: the letter {n} sent from {c} was about the {w}.",
    "Not the {d} but the {w} filled the letter {n} wrote in {c}.",
)


def classification_texts(world: World, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """Labelled texts {'text', 'label'} over four topics (food, travel, animals, weather).

    The label is the topic the letter is about; each text also names a word of a distractor topic that the
    letter is explicitly *not* about, so the label depends on negation and word order, not on keywords.
    """
    _check_count("n", n)
    rng = random.Random(f"classify-{split}-{seed}")
    labels = sorted(TOPICS)
    out = []
    for _ in range(n):
        label = rng.choice(labels)
        other = rng.choice([t for t in labels if t != label])
        text = rng.choice(TOPIC_TEMPLATES).format(w=rng.choice(TOPICS[label]), d=rng.choice(TOPICS[other]),
                                                  n=rng.choice(_split(world, split)).name,
                                                  c=rng.choice(VALUES["city"]))
        out.append({"text": text, "label": label, "distractor": other})
    return out


def forgetting_domains(world: World, n: int, seed: int = 0) -> dict[str, list[Example]]:
    """Task A (closed-book facts the base model knows) and task B (a reserved relation it never saw)."""
    _check_count("n", n)
    rng = random.Random(f"forget-{seed}")
    a = [qa_example(rng.choice(world.train), rng.choice(PRETRAIN_RELATIONS), rng) for _ in range(n)]
    b = [qa_example(rng.choice(world.train), "fruit", rng) for _ in range(n)]
    return {"A": a, "B": b}


# ---------------------------------------------------------------------------------------------------------
# Leakage check and fingerprint
# ---------------------------------------------------------------------------------------------------------

def leaked_names(texts: list[str], names: set[str] | frozenset[str]) -> set[str]:
    """The names that occur as whole words in any of `texts` (a name inside a longer word does not count)."""
    words: set[str] = set()
    for t in texts:
        words.update(re.findall(r"[A-Za-z]+", t))
    return set(names) & words


def fingerprint(config: WorldConfig = WorldConfig()) -> str:
    """A hash of the generator's output for `config`: it changes whenever the generator changes."""
    world = make_world(config)
    sample = {
        "version": GENERATOR_VERSION,
        "people": [[p.name, p.facts] for p in world.train + world.heldout],
        "corpus": [ex.text for ex in pretraining_corpus(world, 300)],
        "open": [ex.text for ex in open_book_questions(world, 20)],
    }
    return hashlib.sha256(json.dumps(sample, sort_keys=True).encode()).hexdigest()[:16]
