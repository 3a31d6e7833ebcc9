"""Preference learning: data, reward model (TRL), rewards, KL, the REINFORCE loop and DPO helpers on a tiny model."""

import copy

import pytest
import torch

from hubhelpers import dpo, reward, rl
from hubhelpers import preferences as P
from hubhelpers import world as W


def test_pairs_prefer_the_true_sentence_and_keep_people_apart(world):
    train_names, heldout_names = P.split_people(world, seed=1)
    assert train_names and heldout_names and not train_names & heldout_names
    pairs = P.chat_preference_pairs(world, 60, seed=2, names=heldout_names)
    assert {p["name"] for p in pairs} <= heldout_names
    assert {p["kind"] for p in pairs} == {"style", "false_style"}
    for p in pairs:
        ex = P.as_chat(p)
        chosen, rejected = p["chosen"][0]["content"], p["rejected"][0]["content"]
        assert P.style_of(ex, chosen) == "sentence" and P.env_reward(ex, chosen) == 1.0
        assert P.style_of(ex, rejected) != "sentence" or P.env_reward(ex, rejected) == 0.0
        assert chosen != rejected


def test_demonstrations_answer_truthfully_in_every_style(world):
    demos = P.style_demonstrations(world, 200, seed=3)
    assert {d["style"] for d in demos} == set(P.DEMONSTRATION_STYLES)
    for d in demos:
        reply = d["messages"][1]["content"]
        assert P.env_reward(d, reply) == 1.0
        assert P.style_of(d, reply) == d["style"]


def test_env_reward_checks_the_fact(world):
    p = world.train[0]
    ex = {"relation": "city", "value": p["city"], "name": p.name}
    wrong = next(c for c in W.VALUES["city"] if c != p["city"])
    assert P.env_reward(ex, f"{p.name} lives in {p['city']}.") == 1.0
    assert P.env_reward(ex, f"{p.name} lives in {wrong}.") == 0.0
    assert P.env_reward(ex, f"{p['city']} or {wrong}") == 0.0  # hedging between values is not an answer
    assert P.env_reward(ex, "") == 0.0


def test_combined_reward_and_bad_coefficients():
    assert reward.combined_reward(1.0, 2.0, 0.5) == 2.0
    assert torch.equal(reward.combined_reward(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 4.0]), 0.0),
                       torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="-0.5"):
        reward.combined_reward(1.0, 1.0, -0.5)
    with pytest.raises(ValueError, match="beta.*-1"):
        rl.RLConfig(beta=-1.0)
    with pytest.raises(ValueError, match="lam.*nan"):
        rl.RLConfig(lam=float("nan"))
    with pytest.raises(ValueError, match="beta.*0"):
        dpo.dpo_config("unused", beta=0.0)
    with pytest.raises(ValueError, match="sft_weight.*-0.1"):
        dpo.dpo_config("unused", sft_weight=-0.1)
    with pytest.raises(ValueError, match="style 'shout'"):
        P.styled_answer(W.make_world().train[0], "city", "shout")


def test_dpo_config_adds_the_chosen_nll_only_when_asked(tmp_path):
    plain, rpo = dpo.dpo_config(tmp_path), dpo.dpo_config(tmp_path, sft_weight=0.2)
    assert plain.loss_type in ("sigmoid", ["sigmoid"])
    assert rpo.loss_type == ["sigmoid", "sft"] and rpo.loss_weights == [1.0, 0.2]


def test_kl_is_zero_for_identical_policies_and_positive_otherwise(tiny, world):
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 6, seed=4)]
    torch.manual_seed(0)
    sample = rl.sample_replies(model, tok, examples, max_new_tokens=5)
    mask = sample["mask"][:, 1:].float()
    assert mask.sum(1).min() >= 1  # every reply has at least one token
    with torch.no_grad():
        _, logp = rl.token_logprobs_and_logits(model, sample)
        same = rl.token_kl(logp, rl.token_logprobs_and_logits(copy.deepcopy(model), sample)[1], mask)
        other = copy.deepcopy(model)
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
        moved = rl.token_kl(logp, rl.token_logprobs_and_logits(other, sample)[1], mask)
    assert torch.allclose(same, torch.zeros_like(same), atol=1e-6)
    assert (moved > 0).all()


def test_kl_per_reply_equals_the_sum_over_all_logits_at_the_reply_positions(tiny, world):
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 6, seed=4)]
    torch.manual_seed(0)
    sample = rl.sample_replies(model, tok, examples, max_new_tokens=5)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
        full_p, full_q = (m(input_ids=sample["input_ids"], attention_mask=sample["attention_mask"]).logits[:, :-1]
                          .log_softmax(-1) for m in (model, other))
        mask = sample["mask"][:, 1:]
        direct = ((full_p.exp() * (full_p - full_q)).sum(-1) * mask).sum(1)  # (batch,)
        logp, other_logp = (rl.token_logprobs_and_logits(m, sample)[1] for m in (model, other))
        got = rl.token_kl(logp, other_logp, mask.float())
    assert torch.allclose(got, direct, atol=1e-5) and (got > 0).all()
    with pytest.raises(ValueError, match="one log-softmax row per masked position"):
        rl.token_kl(full_p[mask], full_q[mask][:-1], mask)


def test_reply_token_logprobs_equal_all_logits_at_reply_positions(tiny, world):
    """Computed at the reply positions only, they equal the all-logits computation there (values and gradients)."""
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 6, seed=4)]
    torch.manual_seed(0)
    sample = rl.sample_replies(model, tok, examples, max_new_tokens=5)
    where = sample["mask"][:, 1:]
    fast, slow = copy.deepcopy(model), copy.deepcopy(model)
    picked, logp = rl.token_logprobs_and_logits(fast, sample)
    full = slow(input_ids=sample["input_ids"], attention_mask=sample["attention_mask"]).logits[:, :-1].log_softmax(-1)
    full_picked = full.gather(-1, sample["input_ids"][:, 1:, None])[..., 0]
    assert logp.shape == (int(where.sum()), full.shape[-1])  # the reply positions only, packed
    assert torch.allclose(logp, full[where], atol=1e-5) and torch.allclose(picked[where], full_picked[where], atol=1e-5)
    assert not picked[~where].any()  # 0 outside the replies
    (picked * where).sum().backward()
    (full_picked * where).sum().backward()
    for (name, a), b in zip(fast.named_parameters(), slow.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_reply_logprobs_equal_a_direct_computation(tiny, world):
    model, tok = tiny
    pair = P.chat_preference_pairs(world, 1, seed=5)[0]
    reply = pair["chosen"][0]["content"]
    got = dpo.reply_logprobs(model, tok, [pair["prompt"]], [reply])[0]
    head = tok.apply_chat_template(pair["prompt"], tokenize=False, add_generation_prompt=True)
    n_head = len(tok(head, add_special_tokens=False)["input_ids"])
    ids = tok(head + reply + "<|end|>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1)
    direct = logp[torch.arange(n_head - 1, ids.shape[1] - 1), ids[0, n_head:]].sum()
    assert torch.allclose(got, direct, atol=1e-4)


def test_reward_model_loss_falls_and_it_ranks_trained_pairs(tiny, world, tmp_path):
    model, tok = tiny
    pairs = P.chat_preference_pairs(world, 8, seed=6)
    torch.manual_seed(0)
    rm = reward.reward_model_from(model)
    assert rm.config.num_labels == 1
    config = reward.reward_config(tmp_path, steps=30, lr=3e-3, batch_size=8, disable_tqdm=True, logging_steps=1)
    trainer = reward.train_reward_model(rm, tok, pairs, config)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    assert losses[-1] < losses[0]
    assert reward.pair_accuracy(rm, tok, pairs) == 1.0
    copy.deepcopy(rm)  # released from the trainer: a deep copy runs its own weights
    assert "forward" not in rm.__dict__


@pytest.mark.parametrize("group_size", [1, 4])
def test_reinforce_increases_a_toy_reward(tiny, world, group_size):
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 16, seed=7)]
    vowels = set("aeiou")

    def toy_reward(batch, texts):  # the share of vowels among the reply's letters
        r = [sum(c in vowels for c in t) / max(1, sum(c.isalpha() for c in t)) for t in texts]
        return torch.tensor(r), torch.zeros(len(texts))

    torch.manual_seed(0)
    policy, reference = copy.deepcopy(model), copy.deepcopy(model)
    cfg = rl.RLConfig(steps=40, batch_size=16, group_size=group_size, lr=1e-2, lam=0.0, beta=0.0, max_new_tokens=4,
                      seed=0)
    run = rl.reinforce(policy, reference, tok, examples, toy_reward, cfg, progress=False)
    rewards = run.series("reward")
    assert sum(rewards[-8:]) / 8 > sum(rewards[:8]) / 8 + 0.1
    assert run.series("kl")[-1] > 0
    assert any((a - b).abs().max() > 0 for a, b in zip(policy.parameters(), reference.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(reference.parameters(), model.parameters()))


def test_the_kl_penalty_holds_the_policy_near_the_reference(tiny, world):
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 16, seed=7)]

    def toy_reward(batch, texts):  # the share of vowels among the reply's letters
        r = [sum(c in "aeiou" for c in t) / max(1, sum(c.isalpha() for c in t)) for t in texts]
        return torch.tensor(r), torch.zeros(len(texts))

    final_kl = {}
    for beta in (0.0, 1.0):
        torch.manual_seed(0)
        policy = copy.deepcopy(model)
        cfg = rl.RLConfig(steps=30, batch_size=16, lr=1e-2, lam=0.0, beta=beta, max_new_tokens=4, seed=0)
        final_kl[beta] = sum(rl.reinforce(policy, model, tok, examples, toy_reward, cfg,
                                          progress=False).series("kl")[-5:]) / 5
    assert final_kl[1.0] < 0.5 * final_kl[0.0]


def test_dpo_raises_the_implicit_reward_margin_on_its_pairs(tiny, world, tmp_path):
    model, tok = tiny
    pairs = P.chat_preference_pairs(world, 8, seed=8)
    prompts = [p["prompt"] for p in pairs]
    chosen, rejected = [p["chosen"][0]["content"] for p in pairs], [p["rejected"][0]["content"] for p in pairs]
    policy = copy.deepcopy(model)
    ref_c, ref_r = dpo.reply_logprobs(policy, tok, prompts, chosen), dpo.reply_logprobs(policy, tok, prompts, rejected)
    dpo.dpo_train(policy, tok, pairs, dpo.dpo_config(tmp_path, steps=20, lr=3e-3, batch_size=8, disable_tqdm=True))
    new_c, new_r = dpo.reply_logprobs(policy, tok, prompts, chosen), dpo.reply_logprobs(policy, tok, prompts, rejected)
    margin = (new_c - ref_c) - (new_r - ref_r)  # DPO's implicit reward of chosen minus rejected, over beta
    assert (margin > 0).all()
    assert dpo.preference_rate(policy, tok, pairs) >= dpo.preference_rate(model, tok, pairs)


def test_style_is_the_exact_shape_so_garbled_text_is_other(world):
    p = world.train[0]
    ex = {"relation": "job", "value": p["job"], "name": p.name}
    wrong = next(v for v in W.VALUES["job"] if v != p["job"])
    assert P.style_of(ex, f"{p.name} works as {W.article(wrong)} {wrong}.") == "sentence"  # false, but well-formed
    assert P.style_of(ex, wrong) == "word"
    for garbled in (f"{p.name} works as a was works as a owns a pet horse.", f"{p.name} works a {p['job']}.",
                    f"{p.name}x works as a {p['job']}.", f"{p['job']}ary", ""):
        assert P.style_of(ex, garbled) == "other", garbled
    with pytest.raises(ValueError, match="style 'shout'"):
        P.style_pattern("shout", p.name, "job")


def test_dpo_with_the_chosen_nll_also_raises_the_chosen_replies_likelihood(tiny, world, tmp_path):
    model, tok = tiny
    pairs = P.chat_preference_pairs(world, 8, seed=8)
    prompts, chosen = [p["prompt"] for p in pairs], [p["chosen"][0]["content"] for p in pairs]
    policy = copy.deepcopy(model)
    before = dpo.reply_logprobs(policy, tok, prompts, chosen)
    dpo.dpo_train(policy, tok, pairs, dpo.dpo_config(tmp_path, steps=20, lr=3e-3, batch_size=8, sft_weight=1.0,
                                                     disable_tqdm=True))
    assert dpo.reply_logprobs(policy, tok, prompts, chosen).mean() > before.mean() + 1.0
