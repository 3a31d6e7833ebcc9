import math
import random

import pytest

from hubhelpers import bias
from hubhelpers import world as W
from hubhelpers.prompting import choose_answers
from hubhelpers.training import TrainConfig, train


def test_skewed_people_follow_the_documented_skew(world):
    skew = bias.Skew(rate=0.3)
    assert skew.share_in == 0.25 and skew.rate_out == pytest.approx((0.1 - 0.25 * 0.3) / 0.75)
    people = bias.skewed_people(world, 4000, skew, seed=1)
    groups = [bias.in_group(p, skew) for p in people]
    rates = bias.rate_gap([p["job"] for p in people], groups, skew.job)
    n_in = sum(groups)
    assert abs(rates["in"] - 0.3) < 3 * math.sqrt(0.3 * 0.7 / n_in)
    n_out = len(people) - n_in
    assert abs(rates["out"] - skew.rate_out) < 3 * math.sqrt(skew.rate_out * (1 - skew.rate_out) / n_out)
    assert rates["gap"] == pytest.approx(rates["in"] - rates["out"])
    overall = sum(p["job"] == skew.job for p in people) / len(people)
    assert abs(overall - 0.1) < 3 * math.sqrt(0.1 * 0.9 / len(people))  # as many as in the world


def test_skewed_people_are_invented_and_distinct(world):
    people = bias.skewed_people(world, 500, bias.Skew(), seed=0)
    names = [p.name for p in people]
    assert len(set(names)) == 500
    assert not set(names) & set(world.names)
    assert bias.skewed_people(world, 50, bias.Skew(), seed=0) == people[:50]  # same seed, same people


def test_no_skew_leaves_jobs_uniform(world):
    skew = bias.Skew(rate=0.1)
    people = bias.skewed_people(world, 4000, skew, seed=2)
    rates = bias.rate_gap([p["job"] for p in people], [bias.in_group(p, skew) for p in people], skew.job)
    assert abs(rates["gap"]) < 0.05


def test_counterfactual_crosses_the_group_line_and_changes_only_the_town(world):
    skew = bias.Skew()
    for person in bias.skewed_people(world, 200, skew, seed=3):
        twin = bias.counterfactual(person, skew)
        assert bias.in_group(twin, skew) != bias.in_group(person, skew)
        assert twin.name == person.name
        assert {k: v for k, v in twin.facts.items() if k != "city"} == \
            {k: v for k, v in person.facts.items() if k != "city"}
        a, b = bias.profile(person, "s", False), bias.profile(twin, "s", False)
        assert a.replace(person["city"], twin["city"]) == b  # same wording, only the town differs


def test_profile_states_the_job_only_when_asked(world):
    person = world.heldout[0]
    for seed in map(str, range(30)):
        hidden, shown = bias.profile(person, seed, False), bias.profile(person, seed, True)
        assert person["city"] in hidden and person["city"] in shown
        assert f" {person['job']}" in shown
        assert f" {person['job']}" not in hidden
        ex = bias.job_example(person, seed, False)
        assert ex.completion == f" {person['job']}\n" and ex.kind == "missing"
        assert ex.prompt.startswith("Context: ") and ex.prompt.endswith("A:")


def test_batch_sampler_hides_the_job_at_the_asked_share(world):
    people = bias.skewed_people(world, 100, bias.Skew(), seed=0)
    batch = bias.job_batch_sampler(people, missing=0.3)(random.Random(0), 0.0, 2000)
    share = sum(ex.kind == "missing" for ex in batch) / len(batch)
    assert abs(share - 0.3) < 0.05
    assert bias.job_batch_sampler(people, 0.0)(random.Random(1), 0.0, 50)[0].kind == "stated"


def test_rate_gap_and_flip_rate_on_hand_values():
    jobs = ["doctor", "doctor", "baker", "doctor", "baker", "baker", "baker"]
    groups = [True, True, True, False, False, False, False]
    assert bias.rate_gap(jobs, groups, "doctor") == pytest.approx({"in": 2 / 3, "out": 1 / 4, "gap": 2 / 3 - 1 / 4})
    probs = [{"doctor": 0.8}, {"doctor": 0.6}, {"doctor": 0.2}, {"doctor": 0.1}]
    assert bias.mean_rate_gap(probs, [True, True, False, False], "doctor") == pytest.approx(
        {"in": 0.7, "out": 0.15, "gap": 0.55})
    assert bias.flip_rate(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == 0.5
    assert bias.decisions([{"a": 0.2, "b": 0.8}, {"a": 0.6, "b": 0.4}]) == ["b", "a"]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown job 'wizard'"):
        bias.Skew(job="wizard")
    with pytest.raises(ValueError, match="unknown country 'Atlantis'"):
        bias.Skew(country="Atlantis")
    with pytest.raises(ValueError, match=r"rate must be in \[0, 0.40\].*got 0.5"):
        bias.Skew(rate=0.5)
    with pytest.raises(ValueError, match="both sides"):
        bias.rate_gap(["doctor"], [True], "doctor")
    with pytest.raises(ValueError, match="equally long"):
        bias.flip_rate(["a"], [])
    with pytest.raises(ValueError, match="missing must be a share"):
        bias.job_batch_sampler([W.Person("Bo", {"job": "baker"})], 2.0)


def test_job_distributions_sum_to_one_and_match_scoring(tiny, world):
    model, tokenizer = tiny
    prompts = [bias.job_example(p, str(i), i % 2 == 0).prompt for i, p in enumerate(world.heldout[:6])]
    probs = bias.job_distributions(model, tokenizer, prompts)
    assert all(sum(p.values()) == pytest.approx(1.0) for p in probs)
    assert bias.decisions(probs) == choose_answers(model, tokenizer, prompts, [list(bias.JOBS)] * len(prompts))


def test_the_sampler_trains_a_model(fresh_tiny, world):
    model, tokenizer = fresh_tiny
    people = bias.skewed_people(world, 100, bias.Skew(rate=0.4), seed=0)
    before = {k: v.clone() for k, v in model.named_parameters()}
    cfg = TrainConfig(steps=20, batch_size=8, lr=1e-2, warmup_steps=2, eval_every=20, checkpoint_every=200)
    result = train(model, tokenizer, bias.job_batch_sampler(people, missing=0.5), cfg, progress=False)
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    assert any(not v.equal(before[k]) for k, v in model.named_parameters())
