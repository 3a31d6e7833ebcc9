"""Instruction fine-tuning (notebook 06) as a command-line script that runs unchanged under `accelerate launch`.

    python -m hubhelpers.sft_cli --model tinyworld --output_dir build/sft                  # one process
    accelerate launch --multi_gpu --num_processes 8 -m hubhelpers.sft_cli --model HuggingFaceTB/SmolLM2-135M
    accelerate launch --multi_gpu --num_processes 2 -m hubhelpers.sft_cli --cpu true      # 2 processes on a CPU

The last line is the multi-GPU path (torchrun starts the processes, DDP averages the gradients) with the gloo
backend on CPU; it is what the tests run. (`accelerate launch --cpu --num_processes 2` starts a single process in
accelerate 1.x unless MPI is set up with --mpirun_hostfile.) On a machine without a GPU, --cpu is implied.

Each process loads the model, TRL's SFTTrainer wraps it for data parallelism (DDP), every process trains on its
own shard of each batch and the gradients are averaged, so all copies stay identical. At the end every process
reports a checksum of its weights; the main process writes `summary.json` (losses, per-process checksums before
and after, whether they agree, instruction accuracy on held-out instructions) and saves the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate.utils import gather_object
from transformers import HfArgumentParser

from hubhelpers import finetune as F
from hubhelpers import world as W
from hubhelpers.models import load_model
from hubhelpers.params import Float, check_int
from hubhelpers.runtime import seed_everything


@dataclass
class SFTScriptArguments:
    """Command-line arguments of the SFT script (each becomes --name; see --help)."""

    model: str = field(default="tinyworld", metadata={"help": "'tinyworld' (shipped), a hub id or a local path"})
    output_dir: str = field(default="build/sft", metadata={"help": "where summary.json and the model go"})
    steps: int = field(default=300, metadata={"help": "optimizer steps"})
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate (cosine schedule, 10%% warm-up)"})
    batch_size: int = field(default=16, metadata={"help": "examples per process and step"})
    n_train: int = field(default=800, metadata={"help": "TinyWorld instruction examples to train on"})
    n_eval: int = field(default=200, metadata={"help": "held-out instructions scored at the end (0: skip)"})
    assistant_only: bool = field(default=True, metadata={"help": "loss on the assistant's tokens only"})
    seed: int = field(default=0, metadata={"help": "seed of data, initialisation and shuffling"})
    cpu: bool = field(default=False, metadata={"help": "train on CPU (gloo) even if a GPU is there"})
    save_model: bool = field(default=True, metadata={"help": "save the fine-tuned model to output_dir/model"})

    def __post_init__(self):
        for name in ("steps", "batch_size", "n_train"):
            check_int(f"--{name}", getattr(self, name))
        check_int("--n_eval", self.n_eval, low=0)
        Float(0, 1).check("--lr", self.lr, {})
        check_int("--seed", self.seed, low=0)


def parse_args(argv: list[str] | None = None) -> SFTScriptArguments:
    """Parse the command line into SFTScriptArguments (typed; --help lists every field)."""
    parser = HfArgumentParser(SFTScriptArguments, description=__doc__.split("\n\n")[0])
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


def weights_checksum(model) -> str:
    """SHA-256 of every parameter's bytes (in name order): equal checksums mean identical weights."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        digest.update(name.encode())
        digest.update(param.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def main(argv: list[str] | None = None) -> dict:
    """Run the fine-tuning; returns the summary (written to output_dir/summary.json by the main process)."""

    args = parse_args(argv)
    seed_everything(args.seed)
    model, tokenizer = load_model(args.model, device="cpu")  # the Trainer moves it to this process's device
    world = W.make_world()
    train, test = F.instruction_splits(world, args.n_train, max(1, args.n_eval), seed=args.seed)
    before = weights_checksum(model)
    use_cpu = args.cpu or not torch.cuda.is_available()  # without it, processes on a CPU would not synchronise
    config = F.sft_config(args.output_dir, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                          assistant_only=args.assistant_only, seed=args.seed, use_cpu=use_cpu,
                          disable_tqdm=int(os.environ.get("RANK", "0")) != 0, ddp_find_unused_parameters=False)
    trainer = F.sft_train(model, tokenizer, train, config)
    state = trainer.accelerator
    model = state.unwrap_model(trainer.model)
    steps, losses = F.logged_losses(trainer)
    reports = gather_object([{"rank": state.process_index, "before": before, "after": weights_checksum(model),
                              "global_step": trainer.state.global_step}])
    summary = {
        "args": asdict(args), "world_size": state.num_processes, "distributed_type": str(state.distributed_type),
        "global_step": trainer.state.global_step, "examples_per_step": args.batch_size * state.num_processes,
        "logged_steps": steps, "losses": losses, "processes": reports,
        "agreed": len({r["after"] for r in reports}) == 1, "changed": all(r["before"] != r["after"] for r in reports),
    }
    if state.is_main_process:
        if args.n_eval:
            acc, by_kind, _ = F.instruction_accuracy(model, tokenizer, test[: args.n_eval])
            summary.update(instruction_acc=acc, instruction_acc_by_kind=by_kind)
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if args.save_model:
            model.save_pretrained(out / "model", safe_serialization=True)
            tokenizer.save_pretrained(out / "model")
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps({k: summary[k] for k in ("world_size", "global_step", "agreed", "changed")}))
    state.wait_for_everyone()
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
