"""The SFT script: typed arguments with --help, and a real 2-process data-parallel run under accelerate on CPU."""

import json
import os
import subprocess
import sys

import pytest

from hubhelpers import sft_cli


def test_help_lists_the_typed_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sft_cli.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in ("--model", "--steps", "--lr", "--batch_size", "--assistant_only", "--output_dir"):
        assert name in text


def test_arguments_are_typed_and_checked():
    args = sft_cli.parse_args(["--steps", "7", "--lr", "0.01", "--assistant_only", "false"])
    assert args.steps == 7 and args.lr == 0.01 and args.assistant_only is False
    with pytest.raises(ValueError, match="--steps"):
        sft_cli.parse_args(["--steps", "0"])
    with pytest.raises(ValueError, match="--lr"):
        sft_cli.parse_args(["--lr", "3"])


@pytest.mark.timeout(240)
def test_two_cpu_processes_train_and_agree(tiny_chat_model_dir, tmp_path):
    out = tmp_path / "sft"
    # the multi-GPU launcher (torchrun + DDP) with the gloo backend on CPU; `accelerate launch --cpu
    # --num_processes 2` would start one process only (accelerate 1.x needs MPI for several CPU processes)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hubhelpers.sft_cli",
           "--cpu", "true", "--model", str(tiny_chat_model_dir), "--output_dir", str(out), "--steps", "6",
           "--batch_size", "4", "--n_train", "64", "--n_eval", "8", "--lr", "0.01", "--save_model", "true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=220)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["examples_per_step"] == 8, summary["distributed_type"]
    assert summary["global_step"] == 6 and summary["losses"]
    assert sorted(r["rank"] for r in summary["processes"]) == [0, 1]
    assert summary["agreed"], summary["processes"]  # both copies of the weights are identical after training
    assert summary["changed"]  # and differ from the starting weights: training happened
    assert len({r["before"] for r in summary["processes"]}) == 1
    assert 0 <= summary["instruction_acc"] <= 1
    assert (out / "model" / "model.safetensors").is_file()
