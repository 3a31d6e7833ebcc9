"""Information extraction helpers: schema, parser error kinds, prompts, splits and per-field scores."""

import json

import pytest

from hubhelpers import extraction as X
from hubhelpers import world as W

GOLD = {"name": "Vuma", "city": "Ironmoor", "job": None, "pet": "cat", "month": None}


@pytest.mark.parametrize("text,kind", [
    ('{"name": "Vuma", "city": "Ironmoor", "job": null, "pet": "cat", "month": null}', "ok"),
    ("Vuma is a doctor.", "no_json"),
    ('{"name": "Vuma", "city": ', "invalid_json"),
    ('["Vuma"]', "not_an_object"),
    ('{"city": "Ironmoor"}', "missing_field"),
    ('{"name": "Vuma", "job": 7}', "wrong_type"),
    ('{"name": "Vuma", "colour": "red"}', "unknown_field"),
])
def test_parse_record_names_each_error_kind(text, kind):
    parsed = X.parse_record(text)
    assert parsed.error == kind and parsed.ok == (kind == "ok")
    assert (parsed.record is None) == (kind != "ok")
    if kind != "ok":
        assert parsed.detail


def test_parse_record_finds_the_object_inside_text_and_strips_values():
    parsed = X.parse_record(' {"name": " Vuma", "pet": " cat"}\ntrailing words')
    assert parsed.ok and parsed.record == {"name": "Vuma", "city": None, "job": None, "pet": "cat", "month": None}


def test_record_json_round_trips_through_the_parser_with_and_without_the_space():
    spaced, plain = X.record_json(GOLD), X.record_json(GOLD, value_space=False)
    assert '" Vuma"' in spaced and '"Vuma"' in plain
    assert list(json.loads(spaced)) == list(X.FIELDS)
    assert X.parse_record(spaced).record == GOLD == X.parse_record(plain).record
    with pytest.raises(ValueError, match="month"):
        X.record_json({"name": "Vuma"})


def test_error_table_and_valid_rate():
    parsed = [X.parse_record(t) for t in ('{"name": "A"}', "nope", "{bad")]
    table = X.error_table(parsed)
    assert list(table) == list(X.ERROR_KINDS) and sum(table.values()) == 3
    assert table["ok"] == 1 and table["no_json"] == 1 and table["invalid_json"] == 1
    assert X.valid_rate(parsed) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        X.valid_rate([])


def test_field_scores_count_wrong_values_as_fp_and_fn_and_unparsed_as_fn():
    golds = [GOLD, {**GOLD, "job": "baker"}]
    preds = [{**GOLD, "city": "Arvel", "month": "May"}, None]  # wrong city, invented month; second unparsed
    s = X.field_scores(golds, preds)
    assert s["name"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "tp": 1, "fp": 0, "fn": 1})
    assert s["city"]["tp"] == 0 and s["city"]["fp"] == 1 and s["city"]["fn"] == 2
    assert s["month"]["fp"] == 1 and s["month"]["fn"] == 0 and s["month"]["f1"] == 0.0
    assert s["micro"]["tp"] == 2 and s["micro"]["fp"] == 2  # name and pet right once; city and month wrong
    perfect = X.field_scores([GOLD], [dict(GOLD)])
    assert perfect["micro"]["f1"] == 1.0 and perfect["job"]["f1"] == 0.0  # job never relevant nor predicted


def test_field_scores_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="2 and 1"):
        X.field_scores([GOLD], [GOLD, GOLD])
    with pytest.raises(ValueError, match="colour"):
        X.field_scores([GOLD], [GOLD], fields=("colour",))


def test_prompts_and_training_examples():
    doc = {"text": "Vuma lives in Ironmoor. Vuma owns a cat.", "gold": GOLD}
    prompt = X.extraction_prompt(doc["text"], shots=[doc])
    assert prompt.startswith(X.INSTRUCTION) and prompt.endswith(f"Document: {doc['text']}\nJSON:")
    assert prompt.count("Document:") == 2
    ex = X.extraction_example(doc)
    assert ex.prompt == f"Document: {doc['text']}\nJSON:" and ex.completion == f" {X.record_json(GOLD)}\n"


def test_splits_train_on_fresh_names_and_test_on_heldout_people():
    world = W.make_world(W.WorldConfig(n_train=20, n_heldout=10))
    train, test = X.extraction_splits(world, 50, 8)
    names = [d["gold"]["name"] for d in train]
    assert len(set(names)) == 50 and not set(names) & world.names
    assert {d["gold"]["name"] for d in test} <= {p.name for p in world.heldout}
    assert all(X.parse_record(X.record_json(d["gold"])).record == d["gold"] for d in train[:10])
    assert X.fresh_documents(world, 5, seed=1) == X.fresh_documents(world, 5, seed=1)
    with pytest.raises(ValueError, match="0"):
        X.fresh_documents(world, 0)
