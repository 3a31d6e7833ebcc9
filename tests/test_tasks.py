"""Task data for unseen instructions: rewordings of the instruction kinds and answer forms spelled out in the prompt."""

import pytest

from hubhelpers import tasks
from hubhelpers.world import PRETRAIN_RELATIONS, leaked_names


def test_rewording_changes_only_the_instruction(world):
    examples = tasks.instruction_examples(world, 200, seed=4)
    new = tasks.reworded(examples, seed=1)
    assert len(new) == len(examples)
    for old, ex in zip(examples, new):
        kind = ex["instruction"]
        assert ex["wording"] in tasks.INSTRUCTION_REWORDINGS[kind]
        prefix = tasks.INSTRUCTIONS[kind][0].removesuffix("{q}")
        question = old["messages"][0]["content"][len(prefix):]
        assert ex["messages"][0]["content"] == f"{ex['wording']} {question}"
        assert ex["messages"][1] == old["messages"][1]
        assert {k: ex[k] for k in ("instruction", "name", "relation", "value")} == \
               {k: old[k] for k in ("instruction", "name", "relation", "value")}
    assert "wording" not in examples[0]  # the inputs are left as they were
    assert {ex["wording"] for ex in new} == {w for ws in tasks.INSTRUCTION_REWORDINGS.values() for w in ws}


def test_rewordings_never_appear_in_training_data_and_are_seeded(world):
    users = [ex["messages"][0]["content"] for ex in tasks.instruction_examples(world, 1000)]
    for wordings in tasks.INSTRUCTION_REWORDINGS.values():
        assert not any(u.startswith(w) for u in users for w in wordings)
    assert set(tasks.INSTRUCTION_REWORDINGS) == set(tasks.INSTRUCTIONS)
    examples = tasks.instruction_examples(world, 50)
    assert tasks.reworded(examples, seed=2) == tasks.reworded(examples, seed=2)
    assert tasks.reworded(examples, seed=2) != tasks.reworded(examples, seed=3)


def test_reworded_refuses_other_examples(world):
    with pytest.raises(ValueError, match="kinds arrow.*got kind 'topic -> answer'"):
        tasks.reworded(tasks.form_examples(world, 1, ("topic -> answer",)))
    ex = tasks.instruction_examples(world, 1)[0]
    ex = {**ex, "messages": [{"role": "user", "content": "Shout it. " + ex["messages"][0]["content"]},
                             ex["messages"][1]]}
    with pytest.raises(ValueError, match="Shout it"):
        tasks.reworded([ex])


def test_form_reply_fills_the_slots():
    assert tasks.form_reply("answer | topic", "Bela", "pet", "cat") == "cat | pet"
    assert tasks.form_reply("name: answer", "Bela", "city", "Arvel") == "Bela: Arvel"
    assert tasks.form_reply("topic -> answer", "Bela", "city", "Arvel") == "town -> Arvel"
    assert tasks.form_reply("answer = name", "Nametopic", "job", "answer") == "answer = Nametopic"
    with pytest.raises(ValueError, match="'name ~ answer'.*accepted: name -> answer"):
        tasks.form_reply("name ~ answer", "Bela", "pet", "cat")


def test_instruction_forms_are_the_trained_replies_and_new_forms_are_not(world):
    assert len(tasks.FORMS) == len(set(tasks.FORMS)) == len(tasks.FORM_ORDERS) * len(tasks.FORM_JOINERS)
    assert set(tasks.NEW_FORMS) == set(tasks.FORMS) - set(tasks.INSTRUCTION_FORMS.values())
    for ex in tasks.instruction_examples(world, 200, seed=5):
        reply = ex["messages"][1]["content"]
        args = ex["name"], ex["relation"], ex["value"]
        if ex["instruction"] in tasks.INSTRUCTION_FORMS:
            assert tasks.form_reply(tasks.INSTRUCTION_FORMS[ex["instruction"]], *args) == reply
        assert all(tasks.form_reply(f, *args) != reply for f in tasks.NEW_FORMS)


def test_form_examples_ask_for_the_form_they_answer_in(world):
    forms = ("topic -> answer", "answer | name")
    examples = tasks.form_examples(world, 100, forms, seed=3)
    assert {ex["instruction"] for ex in examples} == set(forms)
    for ex in examples:
        user, reply = ex["messages"]
        assert user["content"].startswith(f"Answer in the form '{ex['instruction']}'. ")
        assert ex["name"] in user["content"]
        assert reply["content"] == tasks.form_reply(ex["instruction"], ex["name"], ex["relation"], ex["value"])
        assert ex["value"] == next(p for p in world.train if p.name == ex["name"])[ex["relation"]]
    assert examples == tasks.form_examples(world, 100, forms, seed=3)
    assert examples != tasks.form_examples(world, 100, forms, seed=4)


@pytest.mark.parametrize("call, match", [
    (lambda w: tasks.form_examples(w, 0), "n must be"),
    (lambda w: tasks.form_examples(w, 5, ()), "forms must be a non-empty selection"),
    (lambda w: tasks.form_examples(w, 5, ("name ~ answer",)), "name ~ answer"),
])
def test_form_examples_bad_input_is_named(world, call, match):
    with pytest.raises(ValueError, match=match):
        call(world)


# --------------------------------------------------------------------------- instruction clusters (notebook 17)
def test_cluster_examples_are_instructions_about_their_split_only(world):
    for cluster in tasks.CLUSTERS:
        for split, other in (("train", world.heldout), ("heldout", world.train)):
            examples = tasks.cluster_examples(world, cluster, 40, seed=3, split=split)
            assert len(examples) == 40 and {ex["cluster"] for ex in examples} == {cluster}
            assert all(ex["source"].startswith(tasks.CLUSTER_INSTRUCTIONS[cluster] + "\n\n") for ex in examples)
            assert all(ex["target"].strip() for ex in examples)
            texts = [ex["source"] + " " + ex["target"] for ex in examples]
            assert not leaked_names(texts, {p.name for p in other}), (cluster, split)
        assert tasks.cluster_examples(world, cluster, 5, seed=1) == tasks.cluster_examples(world, cluster, 5, seed=1)
        assert tasks.cluster_examples(world, cluster, 5, seed=1) != tasks.cluster_examples(world, cluster, 5, seed=2)


def test_cluster_targets_follow_from_their_inputs(world):
    people = {p.name: p for p in world.heldout}
    for ex in tasks.cluster_examples(world, "answer", 30, split="heldout"):
        asked = next(name for name in people if name in ex["source"].split("Question:")[1])
        relation = next(r for r in PRETRAIN_RELATIONS if people[asked][r] == ex["target"])
        assert people[asked][relation] in ex["source"].split("Question:")[0]  # the answer is in the passage
    for ex in tasks.cluster_examples(world, "extract", 30, split="heldout"):
        for pair in ex["target"].split("; "):
            assert pair.split(": ")[1] in ex["source"]
    labels = {ex["target"] for ex in tasks.cluster_examples(world, "classify", 60)}
    assert labels == set(tasks.TOPICS)


def test_unknown_cluster_names_the_accepted_ones(world):
    with pytest.raises(ValueError, match="unknown cluster 'translate'; accepted: summarise, classify, extract, answer"):
        tasks.cluster_examples(world, "translate", 3)


def test_output_format_names_each_clusters_own_targets(world):
    for cluster in tasks.CLUSTERS:
        targets = [ex["target"] for ex in tasks.cluster_examples(world, cluster, 60, split="heldout")]
        assert {tasks.output_format(t) for t in targets} == {cluster}


@pytest.mark.parametrize("text, expected", [
    ("#Person2# tells #Pers", "summarise"),  # cut by the length limit: still a summary
    ("colour: green; pet: cat; month: June; pet:", "extract"),
    (" weather ", "classify"),
    ("August", "answer"),
    ("Bolami lives in Arvel.", None),
    ("the weather", None),
    ("", None),
])
def test_output_format_of_model_like_outputs(text, expected):
    assert tasks.output_format(text) == expected


def test_cluster_options_hold_the_answer_among_the_relations_values_or_the_topics(world):
    for cluster, size in (("answer", None), ("classify", 4)):
        for ex in tasks.cluster_examples(world, cluster, 40, split="heldout"):
            options = tasks.cluster_options(ex)
            assert ex["target"] in options and len(set(options)) == len(options) > 1
            assert size is None or len(options) == size
    with pytest.raises(ValueError, match="cluster 'extract' has no fixed options; accepted: answer, classify"):
        tasks.cluster_options(tasks.cluster_examples(world, "extract", 1)[0])
