"""TinyWorld dialogue summarisation: short two-speaker chats about world people, each with a reference summary.

The DialogSum analogue of the encoder-decoder lesson. Two anonymous speakers, #Person1# and #Person2#, talk for
3-6 turns about one or two world people; one of them (the *teller*) states 1-3 of their facts (pretraining
relations only), the other asks or reacts. The reference summary states exactly the facts told, e.g.
"#Person2# tells #Person1# that Bolami lives in Arvel and works as a baker." Training dialogues are about
training people only and held-out dialogues about held-out people only, so a summary of a held-out dialogue can be
right only by reading it. Same (world, n, seed, split) -> the same dialogues.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from hubhelpers.params import check_int
from hubhelpers.world import PRETRAIN_RELATIONS, VALUES, Person, World, article, people_of

SPEAKERS = ("#Person1#", "#Person2#")
MIN_TURNS, MAX_TURNS = 3, 6
MAX_FACTS = 3

# Fact-free small talk. No capitalised word here may look like a TinyWorld name (tests check it).
GREETINGS = ("Hi, how are you?", "Hello! How are things?", "Good morning! How is it going?", "Hey, how was your week?")
GREETING_REPLIES = ("Not bad, thanks.", "Pretty good, thank you.", "All good here, thanks.", "Busy, but good.")
CLOSINGS = ("Thanks, good to know.", "Oh, I did not know that.", "Interesting, thanks for telling me.",
            "I see. Thanks!")
REACTIONS = ("Really?", "Oh, nice.", "I see.", "No way!")
# The asker's turn that names a person but asks for no particular fact (the teller then states one).
OPEN_PROMPTS = ("Have you heard from {n} lately?", "Do you know {n}?", "Tell me about {n}.", "What is new with {n}?")
MORE_PROMPTS = ("What else?", "Anything else about {n}?", "What else do you know about {n}?")
NEXT_PROMPTS = ("And what about {n}?", "Do you know {n} too?", "Any news about {n}?")
OPENERS = ("Guess what? {s}.", "Did you know that {s}?", "I heard that {s}.")

QUESTIONS: dict[str, tuple[str, ...]] = {
    "city": ("Where does {n} live?", "Do you know where {n} lives?", "Where does {n} live these days?"),
    "job": ("What does {n} do for a living?", "What is {n}'s job?", "Do you know what {n} does for work?"),
    "pet": ("Does {n} have a pet?", "What pet does {n} keep?", "Which animal does {n} have at home?"),
    "colour": ("What is {n}'s favourite colour?", "Which colour does {n} like best?"),
    "month": ("When is {n}'s birthday?", "In which month was {n} born?", "Do you know when {n} was born?"),
}
# Full statements (clauses without the final stop) and short answers that only follow a question on the relation.
STATEMENTS: dict[str, tuple[str, ...]] = {
    "city": ("{n} lives in {v}", "{n} has a house in {v}", "{n} lives in the town of {v} now"),
    "job": ("{n} works as {a} {v}", "{n} is {a} {v}", "{n} earns a living as {a} {v}"),
    "pet": ("{n} has a pet {v}", "{n} keeps {a} {v} at home", "{n} owns {a} {v}"),
    "colour": ("{n}'s favourite colour is {v}", "{n} likes {v} best", "{n} loves the colour {v}"),
    "month": ("{n} was born in {v}", "{n}'s birthday is in {v}", "{n} celebrates a birthday every {v}"),
}
SHORT_ANSWERS: dict[str, tuple[str, ...]] = {
    "city": ("In {v}.", "Over in {v}."),
    "job": ("{A} {v}.", "{n} is {a} {v}, I think."),
    "pet": ("{A} {v}.", "Just {a} {v}."),
    "colour": ("It is {v}.", "I think it is {v}."),
    "month": ("In {v}.", "It is in {v}."),
}
# One fixed predicate per relation in the reference summaries: a summary states a fact in one way only.
SUMMARY_PREDICATES = {"city": "lives in {v}", "job": "works as {a} {v}", "pet": "has a pet {v}",
                      "colour": "loves the colour {v}", "month": "was born in {v}"}
VALUE_RELATION = {v: r for r in PRETRAIN_RELATIONS for v in VALUES[r]}  # pretraining values are unique
INSTRUCTION = "Summarize the following conversation."  # the prompt of the FLAN-T5 dialogue-summary lab


@dataclass(frozen=True)
class Dialogue:
    """One dialogue (`#PersonN#: ...` lines), its reference summary, the world people and the facts it states."""

    text: str
    summary: str
    names: tuple[str, ...]
    facts: tuple[tuple[str, str, str], ...]  # (name, relation, value), in the order they are told

    @property
    def turns(self) -> tuple[str, ...]:
        """The dialogue's lines, one per turn."""
        return tuple(self.text.split("\n"))


def fill(template: str, person: Person, relation: str | None = None) -> str:
    """`template` with the person's name and, given a relation, its value and article ({v}, {a}, {A})."""
    if relation is None:
        return template.format(n=person.name)
    value = person[relation]
    return template.format(n=person.name, v=value, a=article(value), A=article(value).capitalize())


def pick_facts(people: tuple[Person, ...], rng: random.Random) -> list[tuple[Person, str]]:
    """1-3 (person, relation) pairs, each person at least once, grouped by person, no relation twice per person."""
    n_facts = rng.randint(len(people), MAX_FACTS)
    counts = [1] * len(people)
    for _ in range(n_facts - len(people)):
        counts[rng.randrange(len(people))] += 1
    return [(p, r) for p, c in zip(people, counts) for r in rng.sample(PRETRAIN_RELATIONS, c)]


def ask(facts: list[tuple[Person, str]], i: int, rng: random.Random) -> tuple[str, bool]:
    """The asker's turn before fact i and whether it asks for that very relation (so a short answer fits)."""
    person, relation = facts[i]
    if rng.random() < 0.6:
        return fill(rng.choice(QUESTIONS[relation]), person), True
    same_person = i > 0 and facts[i - 1][0] is person
    prompts = OPEN_PROMPTS if i == 0 else MORE_PROMPTS if same_person else NEXT_PROMPTS
    return fill(rng.choice(prompts), person), False


def tell(person: Person, relation: str, asked: bool, rng: random.Random) -> str:
    """The teller's turn stating one fact: a short answer after a direct question now and then, else a statement."""
    if asked and rng.random() < 0.5:
        return fill(rng.choice(SHORT_ANSWERS[relation]), person, relation)
    return fill(rng.choice(STATEMENTS[relation]), person, relation) + "."


def shape(n_facts: int, rng: random.Random) -> tuple[bool, bool, bool]:
    """(teller opens, greeting, closing): a random layout whose number of turns lies in [MIN_TURNS, MAX_TURNS]."""
    layouts = []
    for opens in (False, True):
        for greet in (False, True):
            for close in (False, True):
                turns = (2 * n_facts - 1 if opens else 2 * n_facts + 2 * greet) + close
                if not (opens and greet) and MIN_TURNS <= turns <= MAX_TURNS:
                    layouts.append((opens, greet, close))
    return rng.choice(layouts)


def conversation(facts: list[tuple[Person, str]], rng: random.Random) -> tuple[list[str], bool]:
    """The turns (speaker tags added later) and whether the teller speaks first."""
    opens, greet, close = shape(len(facts), rng)
    turns: list[str] = []
    if greet:
        turns += [rng.choice(GREETINGS), rng.choice(GREETING_REPLIES)]
    for i, (person, relation) in enumerate(facts):
        if opens and i == 0:
            turns.append(rng.choice(OPENERS).format(s=fill(rng.choice(STATEMENTS[relation]), person, relation)))
            continue
        line, asked = ask(facts, i, rng)
        if opens and i == 1:
            line = f"{rng.choice(REACTIONS)} {line}"
        turns += [line, tell(person, relation, asked, rng)]
    if close:
        turns.append(rng.choice(CLOSINGS))
    return turns, opens


def join_words(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def summarise(facts: list[tuple[Person, str]], teller: str, listener: str) -> str:
    """The reference summary: '<teller> tells <listener> that X does this and that, and that Y ...'."""
    clauses = []
    for person in dict.fromkeys(p for p, _ in facts):
        predicates = [fill(SUMMARY_PREDICATES[r], p, r) for p, r in facts if p is person]
        clauses.append(f"{person.name} {join_words(predicates)}")
    return f"{teller} tells {listener} that {', and that '.join(clauses)}."


def make_dialogue(people: tuple[Person, ...], rng: random.Random) -> Dialogue:
    """One dialogue about `people` (one or two world people) drawn with `rng`."""
    facts = pick_facts(people, rng)
    turns, opens = conversation(facts, rng)
    teller, listener = SPEAKERS if opens else SPEAKERS[::-1]
    text = "\n".join(f"{SPEAKERS[i % 2]}: {line}" for i, line in enumerate(turns))
    return Dialogue(text, summarise(facts, teller, listener), tuple(p.name for p in people),
                    tuple((p.name, r, p[r]) for p, r in facts))


def dialogues(world: World, n: int, seed: int = 0, split: str = "train") -> list[Dialogue]:
    """n dialogues about people of `split` ('train' or 'heldout'); deterministic in (world, n, seed, split)."""
    people = people_of(world, split)
    check_int("n", n)
    check_int("seed", seed, low=0)
    rng = random.Random(f"dialogue-{split}-{seed}")
    return [make_dialogue(tuple(rng.sample(people, rng.choice((1, 1, 2)))), rng) for _ in range(n)]


def summary_facts(summary: str, world: World) -> set[tuple[str, str, str]]:
    """The (name, relation, value) facts a summary states: each value counts for the world person named before it."""
    names, facts, current = world.names, set(), None
    for word in re.findall(r"[A-Za-z]+", summary):
        if word in names:
            current = word
        elif current is not None and word in VALUE_RELATION:
            facts.add((current, VALUE_RELATION[word], word))
    return facts


def summary_prompt(dialogue: str, shots: tuple[Dialogue, ...] | list[Dialogue] = ()) -> str:
    """The instruction, the dialogue and 'Summary:'; each shot before it as a solved example (k-shot inference)."""
    solved = [f"{INSTRUCTION}\n\n{d.text}\n\nSummary: {d.summary}\n\n\n" for d in shots]
    return "".join(solved) + f"{INSTRUCTION}\n\n{dialogue}\n\nSummary:"
