"""Policy optimisation for RLHF: sampling replies, their log-probabilities, the exact KL to a reference policy,
REINFORCE with a baseline and a KL penalty (maximise E[r_env + lambda * r_h] - beta * KL(pi || pi_ref)), and PPO's
clipped surrogate objective.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from hubhelpers.evaluation import batches
from hubhelpers.finetune import chat_prompt, release, sft_train, stop_token_ids
from hubhelpers.models import logits_at
from hubhelpers.params import Float, Int, check_fields
from hubhelpers.reward import combined_reward
from hubhelpers.training import TRAIN_FIELDS


def supervised_policy(model, tokenizer, demonstrations: Sequence[dict], config):
    """A fine-tuned copy of `model` (TRL SFTTrainer on chat `demonstrations`), safe to deep-copy; and the trainer."""
    policy = copy.deepcopy(model)
    trainer = sft_train(policy, tokenizer, demonstrations, config)
    return release(policy), trainer


def sample_replies(policy, tokenizer, examples: Sequence[dict], max_new_tokens: int = 24, temperature: float = 1.0,
                   greedy: bool = False) -> dict:
    """Sample one assistant reply per chat example: {'input_ids', 'attention_mask', 'mask', 'texts'}.

    `mask` marks the reply's tokens (up to and including the end-of-turn token) in the left-padded sequences.
    """
    prompts = [chat_prompt(tokenizer, ex) for ex in examples]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left",
                    add_special_tokens=False).to(policy.device)
    stops = stop_token_ids(tokenizer)
    was_training = policy.training
    policy.eval()
    with torch.inference_mode():
        gen = policy.generate(**enc, max_new_tokens=max_new_tokens, do_sample=not greedy,
                              temperature=None if greedy else temperature, top_k=0, top_p=1.0,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=stops)
    policy.train(was_training)
    width = enc["input_ids"].shape[1]
    reply = gen[:, width:]
    is_stop = torch.zeros_like(reply, dtype=torch.bool)
    for s in stops:
        is_stop |= reply == s
    # a reply token counts if no stop token came strictly before it
    before = torch.cumsum(is_stop.int(), 1) - is_stop.int()
    reply_mask = before == 0
    texts = [tokenizer.decode(row[m], skip_special_tokens=True).strip() for row, m in zip(reply, reply_mask)]
    mask = torch.cat([torch.zeros_like(enc["input_ids"], dtype=torch.bool), reply_mask], 1)
    attention = torch.cat([enc["attention_mask"], reply_mask.long()], 1)
    return {"input_ids": gen.clone(), "attention_mask": attention, "mask": mask, "texts": texts}


def token_logprobs_and_logits(model, sample: dict):
    """(log P(token) of each reply token given the ones before, log-softmax over the vocabulary at the reply positions).

    The first has shape (batch, length - 1), shifted by one, and is 0 outside the reply (sample['mask']); the second
    holds only the reply positions, packed in row-major order: shape (positions, vocab), positions =
    sample['mask'][:, 1:].sum(). Every use of them here is at the reply positions, and a padded (batch, length - 1,
    vocab) tensor of 800 replies would take hundreds of megabytes.
    """
    where = sample["mask"][:, 1:]
    logp_at = logits_at(model, sample["input_ids"], sample["attention_mask"], where).float().log_softmax(-1)
    picked_at = logp_at.gather(-1, sample["input_ids"][:, 1:][where][:, None])[:, 0]
    picked = picked_at.new_zeros(where.shape).masked_scatter(where, picked_at)
    return picked, logp_at


def sequence_logprob(model, sample: dict):
    """log pi(reply | prompt): the sum of the reply tokens' log-probabilities, one value per sequence."""
    picked, _ = token_logprobs_and_logits(model, sample)
    return (picked * sample["mask"][:, 1:]).sum(1)


def token_kl(logp_policy, logp_ref, mask):
    """Exact KL(pi || pi_ref) of each reply: sum over its positions t of sum_v pi(v) (log pi(v) - log pi_ref(v)).

    `logp_policy` and `logp_ref` are the packed log-softmax rows of `token_logprobs_and_logits`, one per position
    where `mask` (batch, length - 1) is set; returns shape (batch,).
    """
    where = mask.bool()
    if logp_policy.shape != logp_ref.shape or logp_policy.shape[0] != int(where.sum()):
        raise ValueError(f"need one log-softmax row per masked position ({int(where.sum())}) from each policy, got "
                         f"{tuple(logp_policy.shape)} and {tuple(logp_ref.shape)}")
    per_position = (logp_policy.exp() * (logp_policy - logp_ref)).sum(-1)
    return per_position.new_zeros(where.shape).masked_scatter(where, per_position).sum(1)


def score_replies(policy, reference, tokenizer, examples: Sequence[dict], reward_fn: Callable[[list[dict], list[str]],
                  tuple], max_new_tokens: int = 24, temperature: float = 1.0, batch_size: int = 200) -> dict:
    """One sampled reply per example, scored: {'texts', 'r_env', 'r_h', 'kl'} (the KL to `reference`), per reply.

    Runs `batch_size` examples at a time: the activations of a few hundred short sequences stay small enough to be
    reused from one batch to the next, where those of 800 at once are fresh memory at every layer and take about
    three times as long on a CPU. `reference` is `policy` itself: KL 0, without a second forward pass.
    """
    if not examples:
        raise ValueError("score_replies needs at least one example, got none")
    texts, r_env, r_h, kl = [], [], [], []
    for chunk in batches(list(examples), batch_size):
        sample = sample_replies(policy, tokenizer, chunk, max_new_tokens, temperature)
        env, human = reward_fn(chunk, sample["texts"])
        mask = sample["mask"][:, 1:]
        with torch.no_grad():
            _, logp = token_logprobs_and_logits(policy, sample)
            ref_logp = logp if reference is policy else token_logprobs_and_logits(reference, sample)[1]
        texts += sample["texts"]
        r_env.append(torch.as_tensor(env, dtype=torch.float32))
        r_h.append(torch.as_tensor(human, dtype=torch.float32))
        kl.append(token_kl(logp, ref_logp, mask))
    return {"texts": texts, "r_env": torch.cat(r_env), "r_h": torch.cat(r_h), "kl": torch.cat(kl)}


@dataclass(frozen=True)
class RLConfig:
    """Hyper-parameters of the REINFORCE loop: maximise E[r_env + lam * r_h] - beta * KL(pi || pi_ref)."""

    steps: int = 60
    batch_size: int = 32  # replies per step: batch_size // group_size prompts, group_size replies to each
    group_size: int = 1  # 1: baseline = the batch's mean reward; k > 1: the other k - 1 replies' mean (RLOO)
    lr: float = 3e-4
    lam: float = 1.0
    beta: float = 0.1
    max_new_tokens: int = 20
    temperature: float = 1.0
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        shared = {name: TRAIN_FIELDS[name] for name in ("steps", "batch_size", "lr", "grad_clip", "seed")}
        check_fields(self, {**shared, "lam": Float(at_least=0), "beta": Float(at_least=0), "max_new_tokens": Int(1),
                            "temperature": Float(0), "group_size": Int(1, at_most="batch_size")})
        if self.batch_size % self.group_size:
            raise ValueError(f"RLConfig.batch_size={self.batch_size} must be a multiple of "
                             f"group_size={self.group_size} (group_size replies to each prompt)")


@dataclass
class RLResult:
    """Per-step means of the rewards and the KL to the reference, plus the last batch's replies."""

    history: list[dict] = field(default_factory=list)
    last_replies: list[str] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        return [h[key] for h in self.history]


def baseline_advantage(reward: torch.Tensor, group_size: int = 1) -> torch.Tensor:
    """reward - baseline: the batch's mean (group_size 1), or the mean of the other replies to the same prompt.

    With group_size k the batch holds consecutive groups of k replies to one prompt; each reply's baseline is the
    mean reward of the other k - 1 (the leave-one-out baseline of RLOO), which removes what the prompt alone decides.
    """
    if group_size == 1:
        return reward - reward.mean()
    groups = reward.view(-1, group_size)  # (prompts, k)
    others = (groups.sum(1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


def reinforce(policy, reference, tokenizer, examples: Sequence[dict], reward_fn: Callable[[list[dict], list[str]],
              tuple], cfg: RLConfig, progress: bool = True) -> RLResult:
    """Optimise `policy` in place by REINFORCE with a baseline and a KL penalty to the frozen `reference`.

    Each step samples cfg.group_size replies to each of cfg.batch_size // cfg.group_size prompts; the baseline is
    the batch's mean reward (group_size 1) or the mean of the other replies to the same prompt (`baseline_advantage`).

    reward_fn(batch examples, reply texts) -> (r_env, r_h) float tensors; the loop maximises
    E[r_env + lam * r_h] - beta * KL(pi || pi_ref). The reward term is estimated by REINFORCE from the sampled
    replies. The KL term is a loss term, exact over the vocabulary at every position of the sampled reply
    (`token_kl`), and differentiated directly. PPO-based RLHF instead adds the sampled tokens' log-ratio
    -beta * log(pi / pi_ref) to the reward; GRPO adds to the loss the estimate pi_ref / pi - log(pi_ref / pi) - 1
    at each sampled token. Both use the sampled tokens only, not the whole vocabulary.
    """
    if not examples:
        raise ValueError("reinforce needs at least one prompt example, got none")
    reference.eval()
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
    rng = random.Random(f"reinforce-{cfg.seed}")
    result = RLResult()
    for step in tqdm(range(cfg.steps), disable=not progress, desc="policy steps", mininterval=0.5):
        batch = [ex for ex in (rng.choice(examples) for _ in range(cfg.batch_size // cfg.group_size))
                 for _ in range(cfg.group_size)]  # group_size consecutive copies of each prompt
        sample = sample_replies(policy, tokenizer, batch, cfg.max_new_tokens, cfg.temperature)
        r_env, r_h = reward_fn(batch, sample["texts"])
        policy.train()
        picked, logp = token_logprobs_and_logits(policy, sample)
        with torch.no_grad():
            _, ref_logp = token_logprobs_and_logits(reference, sample)
        mask = sample["mask"][:, 1:].float()
        logp_seq = (picked * mask).sum(1)
        reward = combined_reward(r_env, r_h, cfg.lam)
        advantage = baseline_advantage(reward, cfg.group_size)
        kl = token_kl(logp, ref_logp, mask)  # (batch,), differentiable through logp
        loss = -(advantage * logp_seq).mean() + cfg.beta * kl.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.grad_clip)
        opt.step()
        result.history.append({"step": step + 1, "reward": float(reward.mean()), "r_env": float(r_env.mean()),
                               "r_h": float(r_h.mean()), "kl": float(kl.detach().mean()),
                               "length": float(mask.sum(1).mean())})
    policy.eval()
    result.last_replies = sample["texts"]
    return result


def ppo_clip_objective(ratio: torch.Tensor, advantage: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """PPO's clipped surrogate, elementwise and to be maximised: min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)."""
    Float(0, 1).check("eps", eps, {})
    return torch.minimum(ratio * advantage, ratio.clamp(1 - eps, 1 + eps) * advantage)
