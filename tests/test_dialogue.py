"""TinyWorld dialogue summarisation data (hubhelpers.dialogue): determinism, format, summaries, held-out split."""

import re

import pytest

from hubhelpers import dialogue as D
from hubhelpers import world as W

TURN = re.compile(r"#Person[12]#: \S.*")
NAME_SHAPED = re.compile(r"([bdfgklmnprstvz][aeiou]){2,3}", re.IGNORECASE)  # what world.random_name makes


def values_in(text: str) -> set[str]:
    """The pretraining values that occur in `text` as whole words."""
    return set(re.findall(r"[A-Za-z]+", text)) & set(W.PRETRAIN_WORDS)


@pytest.fixture(scope="module")
def train(world):
    return D.dialogues(world, 300, seed=0)


@pytest.fixture(scope="module")
def heldout(world):
    return D.dialogues(world, 300, seed=0, split="heldout")


def test_same_arguments_same_dialogues_and_a_longer_set_extends_a_shorter_one(world, train):
    assert D.dialogues(world, 300, seed=0) == train
    assert D.dialogues(world, 20, seed=0) == train[:20]
    assert D.dialogues(world, 20, seed=1) != train[:20]
    assert D.dialogues(world, 20, seed=0, split="heldout") != train[:20]


def test_sizes_turns_and_speakers(train, heldout):
    assert len(train) == len(heldout) == 300
    for d in train + heldout:
        assert isinstance(d, D.Dialogue) and d.turns == tuple(d.text.split("\n"))
        assert D.MIN_TURNS <= len(d.turns) <= D.MAX_TURNS
        assert all(TURN.fullmatch(t) for t in d.turns), d.text
        speakers = [t.split(":")[0] for t in d.turns]
        assert speakers == [D.SPEAKERS[i % 2] for i in range(len(speakers))]  # #Person1# first, then in turn
        assert len(d.text.split()) < 80
        assert 1 <= len(d.names) <= 2 and len(set(d.names)) == len(d.names)
        assert 1 <= len(d.facts) <= 3 and {name for name, _, _ in d.facts} == set(d.names)
        assert all(r in W.PRETRAIN_RELATIONS for _, r, _ in d.facts)
        assert len({(name, r) for name, r, _ in d.facts}) == len(d.facts)  # no fact told twice
    # the generator varies what a learner sees: layouts, sizes and wordings
    assert {len(d.turns) for d in train} == {3, 4, 5, 6}
    assert {len(d.facts) for d in train} == {1, 2, 3} and {len(d.names) for d in train} == {1, 2}
    assert {d.summary[:9] for d in train} == set(D.SPEAKERS)  # either speaker can be the one who tells
    assert len({d.turns[0] for d in train}) > 50


def test_facts_are_the_world_facts_and_the_dialogue_states_exactly_them(world, train, heldout):
    people = {p.name: p for p in world.train + world.heldout}
    for d in train + heldout:
        assert all(people[name][r] == v for name, r, v in d.facts)
        assert values_in(d.text) == {v for _, _, v in d.facts}, d.text  # small talk carries no value
        teller = d.summary.split()[0]
        assert all(t.startswith(teller) for t in d.turns if values_in(t))  # the summary's teller tells every fact


def test_summary_states_exactly_the_facts(world, train, heldout):
    for d in train + heldout:
        assert re.fullmatch(r"#Person([12])# tells #Person(?!\1)[12]# that [^#]+\.", d.summary), d.summary
        assert values_in(d.summary) == {v for _, _, v in d.facts}
        assert W.leaked_names([d.summary], world.names) == set(d.names)
        assert D.summary_facts(d.summary, world) == set(d.facts)
        assert len(re.findall(r"[.!?](\s|$)", d.summary)) <= 2


def test_summary_of_a_known_dialogue():
    bo = W.Person("Bolami", {"city": "Arvel", "job": "baker"})
    ku = W.Person("Kudo", {"pet": "owl"})
    facts = [(bo, "city"), (bo, "job"), (ku, "pet")]
    assert D.summarise(facts[:2], "#Person2#", "#Person1#") == (
        "#Person2# tells #Person1# that Bolami lives in Arvel and works as a baker.")
    assert D.summarise(facts, "#Person1#", "#Person2#") == (
        "#Person1# tells #Person2# that Bolami lives in Arvel and works as a baker, and that Kudo has a pet owl.")


def test_summary_facts_reads_a_model_summary(world):
    name = world.train[0].name
    assert D.summary_facts(f"#Person2# tells #Person1# that {name} lives in Arvel and has a pet cat.", world) == {
        (name, "city", "Arvel"), (name, "pet", "cat")}
    assert D.summary_facts("Someone lives in Arvel.", world) == set()  # a value with no world person before it


def test_heldout_dialogues_mention_only_heldout_people_and_train_ones_never(world, train, heldout):
    train_names, heldout_names = {p.name for p in world.train}, {p.name for p in world.heldout}
    assert W.leaked_names([d.text for d in train], heldout_names) == set()  # whole words: Bolami is not Bolamiko
    assert W.leaked_names([d.text for d in heldout], train_names) == set()
    for d in train + heldout:
        assert W.leaked_names([d.text], world.names) == set(d.names)
    assert {n for d in heldout for n in d.names} <= heldout_names
    assert {n for d in train for n in d.names} <= train_names


def test_no_template_word_can_be_taken_for_a_name():
    templates = [*D.GREETINGS, *D.GREETING_REPLIES, *D.CLOSINGS, *D.REACTIONS, *D.OPEN_PROMPTS, *D.MORE_PROMPTS,
                 *D.NEXT_PROMPTS, *D.OPENERS, *D.SUMMARY_PREDICATES.values()]
    for table in (D.QUESTIONS, D.STATEMENTS, D.SHORT_ANSWERS):
        templates += [t for ts in table.values() for t in ts]
    words = {w for t in templates for w in re.findall(r"[A-Za-z]+", re.sub(r"{\w}", " ", t))}
    assert not {w for w in words if NAME_SHAPED.fullmatch(w) and w[0].isupper()}
    assert not words & set(W.PRETRAIN_WORDS)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "test"}, r"unknown split 'test'; accepted: 'train', 'heldout'"),
    ({"n": 0}, r"n must be an int >= 1, got 0"),
    ({"n": 2.5}, r"n must be an int >= 1, got 2.5"),
    ({"n": 2, "seed": -1}, r"seed must be an int >= 0, got -1"),
])
def test_bad_split_n_or_seed_is_named(world, kwargs, match):
    with pytest.raises(ValueError, match=match):
        D.dialogues(world, **{"n": 3, **kwargs})


def test_summary_prompt_puts_solved_shots_before_the_instruction_and_the_dialogue(world):
    shots = D.dialogues(world, 2, seed=0)
    query = D.dialogues(world, 1, seed=0, split="heldout")[0]
    zero = D.summary_prompt(query.text)
    assert zero == f"Summarize the following conversation.\n\n{query.text}\n\nSummary:"
    two = D.summary_prompt(query.text, shots)
    assert two.endswith(zero) and two.count("Summarize the following conversation.") == 3
    assert all(f"{d.text}\n\nSummary: {d.summary}" in two for d in shots)
