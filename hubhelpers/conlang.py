"""TinyWorld in a second, synthetic language: the under-resourced language of notebook 18.

A `Conlang` is drawn from a seed: its own words for every value of the world (jobs, pets, colours, months; city and
person names stay names), its own function words, and a grammar unlike English: verb-final word order (subject,
relation noun, value, verb), a topic suffix on the subject (`Bolami-ne`) and a case suffix on the value that
depends on the relation (`Arvel-sa`, in Arvel). The same seed gives the same language, byte for byte.

Every sentence names the relation before its value, so a sentence cut after the relation noun is a closed-book
question: `Bolami-ne tanu` asks for Bolami's town.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from . import world as W

ONSETS = ("h", "k", "kw", "sh", "th", "w", "y", "ny", "r", "ch")
NUCLEI = ("aa", "ei", "ou", "i", "u", "o")
CODAS = ("", "", "n", "sh", "r")
SUBJECT_SUFFIX = "ne"  # topic marker on the person's name
CASE = {"city": "sa", "job": "ra", "pet": "ku", "colour": "li", "month": "to"}  # on the value, by relation
NOUNS = ("town", "trade", "pet", "colour", "month")  # relation nouns, one per relation of RELATIONS
VERBS = ("live", "work", "keep", "love", "born")
RELATIONS = W.PRETRAIN_RELATIONS  # what the language can say: the facts of the pretraining text


def word(rng: random.Random, syllables: int) -> str:
    """A word of `syllables` onset-nucleus(-coda) syllables, e.g. 'kwounshei'."""
    return "".join(rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(syllables))


@dataclass(frozen=True)
class Conlang:
    """A synthetic language: English word -> its word, for values, relation nouns and verbs."""

    seed: int
    lexicon: dict = field(hash=False)

    def value(self, relation: str, value: str) -> str:
        """The value in its case form: a translated word (or a city's name) plus the relation's suffix."""
        stem = value if relation == "city" else self.lexicon[value]
        return f"{stem}-{CASE[relation]}"

    def prompt(self, person: W.Person, relation: str) -> str:
        """The sentence up to its value: '<name>-ne <relation noun>' (a closed-book question)."""
        W.check_relation(relation, RELATIONS)
        return f"{person.name}-{SUBJECT_SUFFIX} {self.lexicon[NOUNS[RELATIONS.index(relation)]]}"

    def sentence(self, person: W.Person, relation: str) -> str:
        """'<name>-ne <noun> <value>-<case> <verb>.': verb-final, the value in its case."""
        verb = self.lexicon[VERBS[RELATIONS.index(relation)]]
        return f"{self.prompt(person, relation)} {self.value(relation, person[relation])} {verb}."

    def bio(self, person: W.Person, rng: random.Random, k: int | None = None) -> str:
        """k sentences (all by default) about `person`, in a random order."""
        chosen = list(RELATIONS)
        rng.shuffle(chosen)
        return " ".join(self.sentence(person, r) for r in chosen[: k or len(chosen)])


def make_conlang(seed: int = 0) -> Conlang:
    """The language drawn from `seed` (deterministic): one distinct word per English word it needs."""
    rng = random.Random(f"conlang-{seed}")
    english = [v for r in RELATIONS if r != "city" for v in W.VALUES[r]] + list(NOUNS) + list(VERBS)
    taken: set[str] = set()
    lexicon = {}
    for en in english:
        new = word(rng, rng.choice((1, 2, 2, 3)))
        while new in taken or len(new) < 3:
            new = word(rng, rng.choice((2, 3)))
        taken.add(new)
        lexicon[en] = new
    return Conlang(seed, lexicon)
