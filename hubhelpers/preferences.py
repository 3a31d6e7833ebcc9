"""Learning from preferences: TinyWorld preference data, a reward model (TRL), a REINFORCE loop with a KL
penalty to a reference policy, and DPO (TRL).

The human preference taught here is a *style* the supervised model does not follow by default: asked a plain
question, answer in a full, true sentence that names the person ("Kopo lives in Arvel.") rather than a bare word,
an arrow, a label or a rambling hedge, and never with a false fact. The supervised (SFT) demonstrations mix all
these styles, as demonstrations written by many people do, so the SFT policy produces the preferred one only
some of the time: enough for a policy-gradient method to find it and reinforce it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hubhelpers import world as W
from hubhelpers.evaluation import batches
from hubhelpers.finetune import chat_prompt, release, run_trainer, stop_token_ids, trainer_settings

PREFERRED_STYLE = "sentence"
STYLES = {
    "sentence": "{s}",
    "word": "{v}",
    "arrow": "{n} -> {v}",
    "name_first": "{n}: {v}",
    "topic_first": "{r}: {v}",
    "verbose": "Well, let me think about {n} for a while; it could be many things, maybe {v}.",
}


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------

def check_style(style: str) -> None:
    """Raise ValueError naming `style` and the accepted ones unless it is a key of STYLES."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; accepted: {', '.join(STYLES)}")


def styled_answer(person: W.Person, relation: str, style: str, value: str | None = None) -> str:
    """The answer to a question about `relation` of `person` in `style` (with `value` instead of the true one)."""
    check_style(style)
    W.check_relation(relation)
    v = person[relation] if value is None else value
    s = W.SENTENCES[relation][0].format(n=person.name, v=v, a=W._article(v))
    return STYLES[style].format(s=s, v=v, n=person.name, r=W.TOPIC_WORDS[relation])


def _question(rng: random.Random, people: Sequence[W.Person]) -> tuple[W.Person, str, str]:
    """A random (person, relation, plain question)."""
    p, r = rng.choice(people), rng.choice(W.PRETRAIN_RELATIONS)
    return p, r, W.question(p, r, rng)


DEMONSTRATION_STYLES = ("sentence", "word", "arrow", "name_first")
REJECTION_KINDS = ("style", "false_style", "false_sentence")


def style_demonstrations(world: W.World, n: int, seed: int = 0, styles: tuple[str, ...] = DEMONSTRATION_STYLES
                         ) -> list[dict]:
    """SFT chat examples: a plain question, answered truthfully in a style drawn uniformly from `styles`."""
    W._check_count("n", n)
    for style in styles:
        check_style(style)
    rng = random.Random(f"style-demos-{seed}")
    out = []
    for _ in range(n):
        p, r, q = _question(rng, world.train)
        style = rng.choice(styles)
        out.append({"messages": [{"role": "user", "content": q},
                                 {"role": "assistant", "content": styled_answer(p, r, style)}],
                    "style": style, "relation": r, "name": p.name, "value": p[r]})
    return out


def chat_preference_pairs(world: W.World, n: int, seed: int = 0, names: frozenset[str] | None = None,
                          kinds: tuple[str, ...] = ("style", "false_style")) -> list[dict]:
    """Conversational preference pairs: chosen = the true full sentence; rejected = another style or a false fact.

    Each pair's rejected reply is of a kind drawn uniformly from `kinds`: 'style' (the true value in another
    style, verbose included), 'false_style' (a false value in another style) or 'false_sentence' (a false value
    in the preferred sentence). `names` restricts the people asked about (to keep training and held-out pairs apart).
    """
    W._check_count("n", n)
    for kind in kinds:
        if kind not in REJECTION_KINDS:
            raise ValueError(f"unknown rejection kind {kind!r}; accepted: {', '.join(REJECTION_KINDS)}")
    people = [p for p in world.train if names is None or p.name in names]
    if not people:
        raise ValueError("no training person matches `names`")
    rng = random.Random(f"chat-prefs-{seed}")
    others = sorted(s for s in STYLES if s != PREFERRED_STYLE)
    out = []
    for _ in range(n):
        p, r, q = _question(rng, people)
        wrong = rng.choice([v for v in W.VALUES[r] if v != p[r]])
        kind = rng.choice(kinds)
        style = PREFERRED_STYLE if kind == "false_sentence" else rng.choice(others)
        rejected = styled_answer(p, r, style, None if kind == "style" else wrong)
        out.append({"prompt": [{"role": "user", "content": q}],
                    "chosen": [{"role": "assistant", "content": styled_answer(p, r, PREFERRED_STYLE)}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                    "kind": kind, "relation": r, "name": p.name, "value": p[r]})
    return out


def split_people(world: W.World, held_out_fraction: float = 0.25, seed: int = 0) -> tuple[frozenset, frozenset]:
    """(training names, held-out names): a random split of the world's training people."""
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    names = sorted(p.name for p in world.train)
    random.Random(f"split-people-{seed}").shuffle(names)
    k = max(1, round(held_out_fraction * len(names)))
    return frozenset(names[k:]), frozenset(names[:k])


def pair_dataset(pairs: Sequence[dict]):
    """A ``datasets.Dataset`` with the prompt/chosen/rejected columns TRL's preference trainers read."""
    from datasets import Dataset

    if not pairs:
        raise ValueError("pair_dataset needs at least one pair, got none")
    return Dataset.from_dict({k: [p[k] for p in pairs] for k in ("prompt", "chosen", "rejected")})


def as_chat(pair: dict) -> dict:
    """The pair's prompt as a finetune-style chat example (what chat_prompt / chat_responses read)."""
    return {"messages": list(pair["prompt"]), "name": pair["name"], "relation": pair["relation"],
            "value": pair["value"]}


# ---------------------------------------------------------------------------------------------------------
# Rewards
# ---------------------------------------------------------------------------------------------------------

def env_reward(example: dict, reply: str) -> float:
    """Programmatic environment reward: 1 when the reply states the true value and no other value of the relation."""
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", reply)}
    stated = {v.lower() for v in W.VALUES[example["relation"]] if v.lower() in words}
    return float(stated == {example["value"].lower()})


def check_coefficient(name: str, value: float) -> float:
    """`value` if it is a finite number >= 0, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def combined_reward(r_env, r_h, lam: float):
    """r = r_env + lam * r_h (works on floats and tensors)."""
    return r_env + check_coefficient("lam", lam) * r_h


def reward_model_from(model):
    """A sequence-classification model (one score) sharing `model`'s transformer weights, with a fresh head."""
    import copy

    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(model.config)
    config.num_labels = 1
    config.architectures = None
    rm = AutoModelForSequenceClassification.from_config(config)
    base = getattr(model, model.base_model_prefix)
    getattr(rm, rm.base_model_prefix).load_state_dict(base.state_dict())
    return rm.to(model.device)


def supervised_policy(model, tokenizer, demonstrations: Sequence[dict], config):
    """A fine-tuned copy of `model` (TRL SFTTrainer on chat `demonstrations`), safe to deep-copy; and the trainer."""
    import copy

    from hubhelpers.finetune import sft_train

    policy = copy.deepcopy(model)
    trainer = sft_train(policy, tokenizer, demonstrations, config)
    return release(policy), trainer


def reward_config(output_dir: str | Path, steps: int = 100, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                  **overrides):
    """A ``RewardConfig`` for small CPU runs: fp32, no saving, no external loggers."""
    from trl import RewardConfig

    settings = {**trainer_settings(output_dir, steps, lr, batch_size, seed), "max_length": 128}
    return RewardConfig(**{**settings, **overrides})


def train_reward_model(rm, tokenizer, pairs: Sequence[dict], config):
    """Train `rm` in place with TRL's RewardTrainer (loss -log sigmoid(r_chosen - r_rejected)); returns the trainer."""
    from trl import RewardTrainer

    return run_trainer(RewardTrainer, rm, tokenizer, pair_dataset(pairs), config)


def reward_scores(rm, tokenizer, prompts: Sequence[list], replies: Sequence[str], batch_size: int = 64):
    """The reward model's score of each (prompt messages, assistant reply) conversation, as a float tensor."""
    import torch

    if len(prompts) != len(replies) or not prompts:
        raise ValueError(f"need as many prompts as replies (>= 1), got {len(prompts)} and {len(replies)}")
    texts = [tokenizer.apply_chat_template(list(p) + [{"role": "assistant", "content": r}], tokenize=False)
             for p, r in zip(prompts, replies)]
    out = []
    for chunk in batches(texts, batch_size):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="right",
                        add_special_tokens=False).to(rm.device)
        with torch.inference_mode():
            out.append(rm(**enc).logits[:, 0].float().cpu())
    return torch.cat(out)


def pair_accuracy(rm, tokenizer, pairs: Sequence[dict]) -> float:
    """Fraction of pairs whose chosen reply the reward model scores above the rejected one."""
    prompts = [p["prompt"] for p in pairs]
    chosen = reward_scores(rm, tokenizer, prompts, [p["chosen"][0]["content"] for p in pairs])
    rejected = reward_scores(rm, tokenizer, prompts, [p["rejected"][0]["content"] for p in pairs])
    return float((chosen > rejected).float().mean())


# ---------------------------------------------------------------------------------------------------------
# Sampling, log-probabilities and KL
# ---------------------------------------------------------------------------------------------------------

def sample_replies(policy, tokenizer, examples: Sequence[dict], max_new_tokens: int = 24, temperature: float = 1.0,
                   greedy: bool = False) -> dict:
    """Sample one assistant reply per chat example: {'input_ids', 'attention_mask', 'mask', 'texts'}.

    `mask` marks the reply's tokens (up to and including the end-of-turn token) in the left-padded sequences.
    """
    import torch

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
    """(log P(token) of every reply token given the ones before, log-softmax over the vocabulary), shifted by one.

    Shapes (batch, length - 1) and (batch, length - 1, vocab); both are computed at the reply positions
    (sample['mask']) only, where every use of them here is masked, and are 0 elsewhere.
    """
    from .models import logits_at

    where = sample["mask"][:, 1:]
    logp_at = logits_at(model, sample["input_ids"], sample["attention_mask"], where).float().log_softmax(-1)
    picked_at = logp_at.gather(-1, sample["input_ids"][:, 1:][where][:, None])[:, 0]
    picked = picked_at.new_zeros(where.shape).masked_scatter(where, picked_at)
    logp = logp_at.new_zeros((*where.shape, logp_at.shape[-1])).index_put((where,), logp_at)
    return picked, logp


def sequence_logprob(model, sample: dict):
    """log pi(reply | prompt): the sum of the reply tokens' log-probabilities, one value per sequence."""
    picked, _ = token_logprobs_and_logits(model, sample)
    return (picked * sample["mask"][:, 1:]).sum(1)


def token_kl(logp_policy, logp_ref, mask):
    """Exact KL(pi || pi_ref) summed over the masked positions: sum_t sum_v pi(v) (log pi(v) - log pi_ref(v))."""
    per_token = (logp_policy.exp() * (logp_policy - logp_ref)).sum(-1)
    return (per_token * mask).sum(1)


# ---------------------------------------------------------------------------------------------------------
# Policy optimisation: REINFORCE with a baseline and a KL penalty
# ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RLConfig:
    """Hyper-parameters of the REINFORCE loop: maximise E[r_env + lam * r_h] - beta * KL(pi || pi_ref)."""

    steps: int = 60
    batch_size: int = 32
    lr: float = 3e-4
    lam: float = 1.0
    beta: float = 0.1
    max_new_tokens: int = 20
    temperature: float = 1.0
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"RLConfig.{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"RLConfig.lr must be in (0, 1), got {self.lr!r}")
        check_coefficient("lam", self.lam)
        check_coefficient("beta", self.beta)
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ValueError(f"RLConfig.temperature must be > 0, got {self.temperature!r}")


@dataclass
class RLResult:
    """Per-step means of the rewards and the KL to the reference, plus the last batch's replies."""

    history: list[dict] = field(default_factory=list)
    last_replies: list[str] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        return [h[key] for h in self.history]


def reinforce(policy, reference, tokenizer, examples: Sequence[dict], reward_fn: Callable[[list[dict], list[str]],
              tuple], cfg: RLConfig, progress: bool = True) -> RLResult:
    """Optimise `policy` in place by REINFORCE with a mean baseline and a KL penalty to the frozen `reference`.

    reward_fn(batch examples, reply texts) -> (r_env, r_h) float tensors; the loop maximises
    E[r_env + lam * r_h] - beta * KL(pi || pi_ref). The reward term is estimated by REINFORCE from the sampled
    replies; the KL term is differentiated exactly, summed over the vocabulary at every reply position (as GRPO
    puts it in the loss), rather than estimated from the one sampled reply, whose log-ratio is too noisy to hold
    the policy once it has moved.
    """
    import torch
    from tqdm.auto import tqdm

    if not examples:
        raise ValueError("reinforce needs at least one prompt example, got none")
    reference.eval()
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
    rng = random.Random(f"reinforce-{cfg.seed}")
    result = RLResult()
    for step in tqdm(range(cfg.steps), disable=not progress, desc="policy steps", mininterval=0.5):
        batch = [rng.choice(examples) for _ in range(cfg.batch_size)]
        sample = sample_replies(policy, tokenizer, batch, cfg.max_new_tokens, cfg.temperature)
        r_env, r_h = reward_fn(batch, sample["texts"])
        policy.train()
        picked, logp = token_logprobs_and_logits(policy, sample)
        with torch.no_grad():
            _, ref_logp = token_logprobs_and_logits(reference, sample)
        mask = sample["mask"][:, 1:].float()
        logp_seq = (picked * mask).sum(1)
        reward = combined_reward(r_env, r_h, cfg.lam)
        advantage = reward - reward.mean()  # the baseline: the batch's mean reward
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


# ---------------------------------------------------------------------------------------------------------
# DPO
# ---------------------------------------------------------------------------------------------------------

def dpo_config(output_dir: str | Path, steps: int = 100, lr: float = 1e-3, batch_size: int = 16, beta: float = 0.1,
               seed: int = 0, **overrides):
    """A ``DPOConfig`` for small CPU runs (sigmoid DPO loss with temperature `beta`)."""
    from trl import DPOConfig

    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    settings = {**trainer_settings(output_dir, steps, lr, batch_size, seed), "beta": beta, "max_length": 128}
    return DPOConfig(**{**settings, **overrides})


def dpo_train(model, tokenizer, pairs: Sequence[dict], config):
    """Train `model` in place with TRL's DPOTrainer (its frozen copy is the reference); returns the trainer."""
    from trl import DPOTrainer

    return run_trainer(DPOTrainer, model, tokenizer, pair_dataset(pairs), config)


def reply_logprobs(model, tokenizer, prompts: Sequence[list], replies: Sequence[str], batch_size: int = 64):
    """log pi(reply | prompt) of each assistant reply (its tokens and the end-of-turn token), as a tensor."""
    import torch

    if len(prompts) != len(replies) or not prompts:
        raise ValueError(f"need as many prompts as replies (>= 1), got {len(prompts)} and {len(replies)}")
    rows = []
    for p, r in zip(prompts, replies):
        head = tokenizer(tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"]
        full = tokenizer(tokenizer.apply_chat_template(list(p) + [{"role": "assistant", "content": r}],
                                                       tokenize=False), add_special_tokens=False)["input_ids"]
        end = tokenizer.convert_tokens_to_ids("<|end|>")
        stop = full.index(end, len(head)) + 1 if end in full[len(head):] else len(full)
        rows.append((full[:stop], len(head)))
    out = []
    for chunk in batches(rows, batch_size):
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i, _ in chunk])
        att = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk])
        mask = torch.tensor([[0] * h + [1] * (len(i) - h) + [0] * (width - len(i)) for i, h in chunk]).bool()
        sample = {"input_ids": ids.to(model.device), "attention_mask": att.to(model.device),
                  "mask": mask.to(model.device)}
        with torch.inference_mode():
            out.append(sequence_logprob(model, sample).cpu())
    return torch.cat(out)


def preference_rate(model, tokenizer, pairs: Sequence[dict]) -> float:
    """Fraction of pairs where the policy gives the chosen reply a higher probability than the rejected one."""
    prompts = [p["prompt"] for p in pairs]
    chosen = reply_logprobs(model, tokenizer, prompts, [p["chosen"][0]["content"] for p in pairs])
    rejected = reply_logprobs(model, tokenizer, prompts, [p["rejected"][0]["content"] for p in pairs])
    return float((chosen > rejected).float().mean())


def style_pattern(style: str, name: str, relation: str) -> str:
    """The regular expression of a reply in `style` about `name`: the exact shape, any value of `relation`."""
    check_style(style)
    values = "|".join(re.escape(v) for v in W.VALUES[relation])
    pattern = re.escape(STYLES[style].replace("{s}", W.SENTENCES[relation][0]))
    for field_, regex in (("{n}", re.escape(name)), ("{v}", f"(?:{values})"), ("{a}", "an?"),
                          ("{r}", re.escape(W.TOPIC_WORDS[relation]))):
        pattern = pattern.replace(re.escape(field_), regex)
    return pattern


def style_of(example: dict, reply: str) -> str:
    """Which style a reply is in (one of STYLES, or 'other'): its exact shape, stating any value of the relation.

    Run-on or garbled text ("Kopo works as a was works as a owns a pet horse.") is 'other', not a sentence.
    """
    text = reply.strip()
    for style in STYLES:
        if re.fullmatch(style_pattern(style, example["name"], example["relation"]), text):
            return style
    return "other"


def preferred_rate(examples: Sequence[dict], replies: Sequence[str]) -> float:
    """Fraction of replies that are a full sentence stating the true value (the preferred behaviour)."""
    hits = [style_of(ex, r) == PREFERRED_STYLE and env_reward(ex, r) == 1.0 for ex, r in zip(examples, replies)]
    return sum(hits) / max(1, len(hits))
