"""Forgetting helpers: the weighted (rehearsal) loss, the L2 anchor, the two-task training loop and LoRA."""

import copy

import pytest
import torch

from hubhelpers import forgetting as G
from hubhelpers.lora import BLOCK_LINEARS, lora_model
from hubhelpers.tasks import forgetting_domains
from hubhelpers.training import encode_examples, example_mean_loss


@pytest.fixture(scope="module")
def tasks(world):
    return forgetting_domains(world, 24, seed=0)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_weighted_loss_is_the_convex_combination(tiny, tasks, alpha):
    model, tok = tiny
    batch_a, batch_b = encode_examples(tok, tasks["A"][:6]), encode_examples(tok, tasks["B"][:6])
    with torch.no_grad():
        expected = alpha * example_mean_loss(model, batch_a) + (1 - alpha) * example_mean_loss(model, batch_b)
        got = G.weighted_loss(model, batch_a, batch_b, alpha)
    assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_bad_alpha_raises_naming_it(bad):
    with pytest.raises(ValueError, match="alpha"):
        G.check_alpha(bad)
    with pytest.raises(ValueError, match="alpha"):
        G.ForgetConfig(alpha=bad)


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="anchor.*-1"):
        G.ForgetConfig(anchor=-1.0)
    with pytest.raises(ValueError, match="steps.*0"):
        G.ForgetConfig(steps=0)
    with pytest.raises(ValueError, match="rank r.*0"):
        lora_model(None, r=0, alpha=1.0, target_modules=BLOCK_LINEARS)


def test_l2_anchor_is_zero_at_init_and_the_sum_of_squares_after(tiny):
    model, _ = tiny
    moved = copy.deepcopy(model)
    anchor = G.snapshot(moved)
    assert G.l2_anchor(moved, anchor).item() == 0.0
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.01)
    n = sum(p.numel() for p in model.parameters())
    assert G.l2_anchor(moved, anchor).item() == pytest.approx(n * 0.01 ** 2, rel=1e-3)


def test_training_on_b_lowers_its_loss(tiny, tasks):
    model, tok = tiny
    model = copy.deepcopy(model)
    before = G.task_loss(model, tok, tasks["B"])
    cfg = G.ForgetConfig(steps=30, batch_size=8, lr=3e-3, warmup_steps=3, alpha=0.5, anchor=0.01)
    run = G.train_tasks(model, tok, tasks["A"], tasks["B"], cfg,
                        evaluate=lambda m: {"loss_b": G.task_loss(m, tok, tasks["B"])}, progress=False)
    assert G.task_loss(model, tok, tasks["B"]) < before
    steps, losses = run.series("loss_b")
    assert steps[0] == 0 and steps[-1] == 30 and losses[0] == pytest.approx(before, rel=1e-5)
    assert len(run.history) == 30


def test_task_loss_equals_the_batch_loss(tiny, tasks):
    model, tok = tiny
    with torch.no_grad():
        direct = float(example_mean_loss(model, encode_examples(tok, tasks["A"][:10])))
    assert G.task_loss(model, tok, tasks["A"][:10], batch_size=10) == pytest.approx(direct, rel=1e-5)


def test_lora_freezes_the_base(tiny, tasks):
    model, tok = tiny
    wrapped = lora_model(copy.deepcopy(model), r=4, alpha=8.0, target_modules=BLOCK_LINEARS)
    frozen = {n: p.detach().clone() for n, p in wrapped.named_parameters() if not p.requires_grad}
    G.train_tasks(wrapped, tok, tasks["A"], tasks["B"], G.ForgetConfig(steps=5, batch_size=8, warmup_steps=1),
                  progress=False)
    assert all("lora_" in n for n, p in wrapped.named_parameters() if p.requires_grad)
    assert all(torch.equal(p, frozen[n]) for n, p in wrapped.named_parameters() if n in frozen)


def test_split_by_person_keeps_people_apart(tasks):
    first, second = G.split_by_person(tasks["A"], 0.5, seed=1)
    assert first and second and len(first) + len(second) == len(tasks["A"])
    assert not {e.meta["name"] for e in first} & {e.meta["name"] for e in second}
    with pytest.raises(ValueError, match="fraction.*1.5"):
        G.split_by_person(tasks["A"], 1.5)


def test_replayed_marks_the_facts_the_replay_asks_about(tasks):
    evals, replay = tasks["A"][:12], tasks["A"][:5]
    mask = G.replayed(evals, replay)
    assert mask[:5] == [True] * 5
    facts = {(e.meta["name"], e.meta["relation"]) for e in replay}
    assert mask[5:] == [(e.meta["name"], e.meta["relation"]) in facts for e in evals[5:]]
    assert G.replayed(tasks["B"][:6], tasks["A"]) == [False] * 6  # another relation is another fact


def test_accuracy_split_scores_each_group(tasks):
    examples = tasks["A"][:4]
    answers = [examples[0].completion, "wrong", f" {examples[2].completion.strip().upper()}.", "wrong"]
    assert G.accuracy_split(examples, answers, [True, True, False, False]) == (0.5, 0.5)
    assert G.accuracy_split(examples, answers, [True, False, True, False]) == (1.0, 0.0)
    inside, outside = G.accuracy_split(examples, answers, [True] * 4)
    assert inside == 0.5 and outside != outside  # nan: no example outside
    with pytest.raises(ValueError, match="length"):
        G.accuracy_split(examples, answers[:3], [True] * 4)


def test_answer_share_counts_answers_among_values():
    assert G.answer_share([" plum", "Pear.", "cat", "plumber"], ["plum", "pear"]) == 0.5
    with pytest.raises(ValueError, match="none"):
        G.answer_share([], ["plum"])
