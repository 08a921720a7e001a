"""The SLURM example (examples/slurm/train.sbatch), run by bash against stubs of `srun`,
`scontrol` and `accelerate`: one `accelerate launch` per node, each with its own machine rank,
the first host as the rendezvous, and train.py's arguments intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.launch import launch_command_parser

from mling.train import parse_args
from mling.training.recipe_cli import recipe_overrides

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "slurm" / "train.sbatch"
TRAIN_ARGS = [
    "--config", "b7-base",
    "--train-data", "pairs dir/",  # a space survives the trip through srun and bash -c
    "--tokenizer", "vocab/",
    "--output-dir", "runs/b7",
    "--batch-size", "16384",
    "--eval-args", "--multi30k m30k --images imgs",
]  # fmt: skip

# srun: one task per node, in order, each with that node's SLURM_NODEID / SLURM_PROCID, as
# SLURM sets them for a step with --ntasks-per-node=1. Its own options are logged.
SRUN = """#!/bin/bash
while [[ $1 == -* ]]; do echo "$1" >> "$FAKE_LOG/srun"; shift; done
for ((node = 0; node < SLURM_NNODES; node++)); do
    SLURM_NODEID=$node SLURM_PROCID=$node "$@" || exit
done
"""
SCONTROL = """#!/bin/bash
[[ "$1 $2" == "show hostnames" && "$3" == "$SLURM_JOB_NODELIST" ]] || exit 1
printf '%s\\n' $FAKE_HOSTS
"""
# accelerate: one JSON line per call, the node it ran on and its arguments
ACCELERATE = f"""#!/bin/bash
exec {sys.executable} -c '
import json, os, sys
with open(os.path.join(os.environ["FAKE_LOG"], "launches"), "a") as log:
    log.write(json.dumps({{"node": int(os.environ["SLURM_NODEID"]), "argv": sys.argv[1:]}}) + "\\n")
' "$@"
"""


def submit(tmp_path: Path, nodes: int, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the script as the batch step of a job on `nodes` nodes gpu01..; returns the run and
    the folder of the stubs' logs."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir(exist_ok=True)
    log.mkdir(exist_ok=True)
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL), ("accelerate", ACCELERATE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    hosts = [f"gpu{i:02d}" for i in range(1, nodes + 1)]
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "GPUS_PER", "MAIN_"))}
    batch_env = {
        **keep,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "FAKE_HOSTS": " ".join(hosts),
        "SLURM_JOB_NODELIST": f"gpu[01-{nodes:02d}]",
        "SLURM_NNODES": str(nodes),
        "SLURM_GPUS_ON_NODE": "8",
        "SLURM_NODEID": "0",  # the batch step runs on the first node
        "SLURM_PROCID": "0",
        **env,
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), *TRAIN_ARGS],
        cwd=tmp_path,
        env=batch_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, log


def launches(log: Path) -> list[tuple[int, object]]:
    """(node, accelerate's parsed launch arguments) for each call, in call order."""
    calls = [json.loads(line) for line in (log / "launches").read_text().splitlines()]
    parser = launch_command_parser()
    for call in calls:
        assert call["argv"][0] == "launch"
    return [(call["node"], parser.parse_args(call["argv"][1:])) for call in calls]


@pytest.mark.parametrize("nodes", [2, 4])
def test_one_launch_per_node_with_its_own_rank(tmp_path, nodes):
    done, log = submit(tmp_path, nodes)
    assert done.returncode == 0, done.stderr
    assert (log / "srun").read_text().split() == [f"--nodes={nodes}", "--ntasks-per-node=1"]
    calls = launches(log)
    assert [node for node, _ in calls] == list(range(nodes))
    for node, args in calls:
        assert args.machine_rank == node  # expanded by each task, not once by the batch step
        assert args.num_machines == nodes
        assert args.num_processes == nodes * 8  # every GPU of every node
        assert args.main_process_ip == "gpu01"  # the first host of the allocation
        assert args.main_process_port == 29500
        assert args.rdzv_backend == "c10d"
        assert args.multi_gpu
        assert args.module and args.training_script == "mling.train"
        assert args.training_script_args == TRAIN_ARGS
        train_args = parse_args(args.training_script_args)
        assert train_args.train_data == ["pairs dir/"] and train_args.config == "b7-base"
        assert recipe_overrides(train_args) == {
            "batch_size": "16384",
            "eval_args": "--multi30k m30k --images imgs",
        }


def test_gpus_per_node_and_port_can_be_set(tmp_path):
    done, log = submit(tmp_path, 2, GPUS_PER_NODE="4", MAIN_PROCESS_PORT="31337")
    assert done.returncode == 0, done.stderr
    for _, args in launches(log):
        assert args.num_processes == 8 and args.main_process_port == 31337


def test_no_gpus_is_one_line_before_any_launch(tmp_path):
    done, log = submit(tmp_path, 2, SLURM_GPUS_ON_NODE="")
    assert done.returncode != 0
    assert "GPUS_PER_NODE" in done.stderr and done.stderr.count("\n") == 1
    assert not (log / "launches").exists()
