"""PPO's clipped surrogate objective (hubhelpers.rl.ppo_clip_objective): values, slopes, and its link to REINFORCE;
the baseline of the REINFORCE loop, and score_replies, the evaluation of a policy's sampled replies."""

import copy

import pytest
import torch

from hubhelpers import preferences as P
from hubhelpers import rl


def test_clipped_objective_is_the_pessimistic_piecewise_line():
    ratio = torch.tensor([0.5, 0.8, 1.0, 1.1, 1.5])
    pos = rl.ppo_clip_objective(ratio, torch.full_like(ratio, 2.0), eps=0.2)
    neg = rl.ppo_clip_objective(ratio, torch.full_like(ratio, -2.0), eps=0.2)
    assert torch.allclose(pos, torch.tensor([1.0, 1.6, 2.0, 2.2, 2.4]))  # A > 0: capped at (1 + eps) * A
    assert torch.allclose(neg, torch.tensor([-1.6, -1.6, -2.0, -2.2, -3.0]))  # A < 0: floored at (1 - eps) * A
    for out, adv in ((pos, 2.0), (neg, -2.0)):
        assert (out <= ratio * adv + 1e-7).all()  # never above the unclipped surrogate


@pytest.mark.parametrize("adv", [1.5, -0.5])
def test_slope_is_zero_where_the_clip_binds_and_the_advantage_elsewhere(adv):
    eps = 0.1
    ratio = torch.linspace(0.05, 2.0, 97, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(rl.ppo_clip_objective(ratio, torch.full_like(ratio, adv), eps).sum(), ratio)
    binds = ratio > 1 + eps if adv > 0 else ratio < 1 - eps
    assert binds.any() and (~binds).any()
    assert torch.equal(slope[binds], torch.zeros_like(slope[binds]))
    assert torch.allclose(slope[~binds], torch.full_like(slope[~binds], adv))


def test_at_ratio_one_the_gradient_is_reinforce(tiny, world):
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 4, seed=3)]
    torch.manual_seed(0)
    sample = rl.sample_replies(model, tok, examples, max_new_tokens=5)
    mask = sample["mask"][:, 1:].float()
    advantage = torch.tensor([[1.0], [-2.0], [0.5], [0.5]])
    picked, _ = rl.token_logprobs_and_logits(model, sample)
    ratio = torch.exp(picked - picked.detach())
    weights = [p for p in model.parameters() if p.requires_grad]
    g_ppo = torch.autograd.grad((rl.ppo_clip_objective(ratio, advantage) * mask).sum(), weights, retain_graph=True)
    g_pg = torch.autograd.grad((advantage * picked * mask).sum(), weights)
    assert any(g.abs().max() > 0 for g in g_pg)
    for a, b in zip(g_ppo, g_pg):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("eps", [0.0, 1.0, -0.2, float("nan")])
def test_bad_clip_range_is_named(eps):
    with pytest.raises(ValueError, match="eps"):
        rl.ppo_clip_objective(torch.ones(2), torch.ones(2), eps)


def test_the_leave_one_out_baseline_compares_each_reply_with_its_siblings():
    reward = torch.tensor([1.0, 0.0, 2.0, 5.0, 5.0, 8.0])
    assert torch.allclose(rl.baseline_advantage(reward), reward - reward.mean())  # group 1: the batch mean
    adv = rl.baseline_advantage(reward, group_size=3)  # two prompts, three replies each
    assert torch.allclose(adv, torch.tensor([1.0 - 1.0, 0.0 - 1.5, 2.0 - 0.5, 5.0 - 6.5, 5.0 - 6.5, 8.0 - 5.0]))
    # a constant shift of one prompt's rewards (an easy prompt) does not change its replies' advantages
    shifted = reward + torch.tensor([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
    assert torch.allclose(rl.baseline_advantage(shifted, 3), adv)
    assert not torch.allclose(rl.baseline_advantage(shifted), rl.baseline_advantage(reward))


def test_the_group_size_must_divide_the_batch():
    with pytest.raises(ValueError, match="batch_size=32.*group_size=5"):
        rl.RLConfig(batch_size=32, group_size=5)
    with pytest.raises(ValueError, match="group_size"):
        rl.RLConfig(group_size=0)
    assert rl.RLConfig(batch_size=32, group_size=4).group_size == 4


def test_score_replies_scores_every_reply_in_chunks(tiny, world):
    """One reply per example, scored chunk by chunk: the reward function sees each chunk; KL 0 against itself."""
    model, tok = tiny
    examples = [P.as_chat(p) for p in P.chat_preference_pairs(world, 5, seed=3)]
    seen = []

    def reward_fn(batch, texts):
        seen.append(len(batch))
        return torch.ones(len(texts)), torch.tensor([float(len(t)) for t in texts])

    torch.manual_seed(0)
    same = rl.score_replies(model, model, tok, examples, reward_fn, max_new_tokens=4, batch_size=2)
    assert seen == [2, 2, 1] and len(same["texts"]) == 5
    assert same["r_env"].tolist() == [1.0] * 5 and same["r_h"].tolist() == [float(len(t)) for t in same["texts"]]
    assert torch.equal(same["kl"], torch.zeros(5))  # the policy against itself, without a second forward pass
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert (rl.score_replies(model, other, tok, examples, reward_fn, max_new_tokens=4, batch_size=2)["kl"] > 0).all()
    with pytest.raises(ValueError, match="at least one example"):
        rl.score_replies(model, model, tok, [], reward_fn)
