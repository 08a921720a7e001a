"""The stage runner: a stage's log and seconds, a failure in one line naming it and its log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from mling.common.stages import (
    ENTRY_POINTS,
    Command,
    StageFailed,
    StageRunner,
    entry_point,
    python_module,
)

REPO = Path(__file__).resolve().parents[1]


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_stage_leaves_its_log_and_its_seconds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    stages = StageRunner("demo.py", Path("out/logs"), total=2)
    prints = "import time; time.sleep(0.3); print('ελληνικά, 日本語'); print('synthetic.py: 3')"
    command = Command(tuple(python(prints)), "data/synthetic.py --pairs 3", "synthetic.py:")
    seconds = stages.run("synthetic", command)
    assert 0.3 <= seconds < 30
    log = Path("out/logs/synthetic.log")
    assert log.read_text(encoding="utf-8") == "ελληνικά, 日本語\nsynthetic.py: 3\n"
    assert stages.seconds == {"synthetic": seconds}
    (record,) = stages.stages
    assert (record.name, record.log, record.code) == ("synthetic", log, 0)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[1/2] synthetic: data/synthetic.py --pairs 3"
    assert out[1].endswith(" s. synthetic.py: 3")


def test_a_failed_stage_is_one_line_naming_it_and_its_log_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stages = StageRunner("demo.py", "out/logs", echo=False)
    fails = "import sys; print('a traceback line'); sys.exit('filter.py: no caption column')"
    with pytest.raises(StageFailed) as failed:
        stages.run("filter", python(fails))
    message = str(failed.value.code)
    assert message.splitlines() == [message]
    assert message.startswith("demo.py: stage filter failed (exit 1); see out/logs/filter.log")
    assert message.endswith("it ends: filter.py: no caption column")
    assert stages.stages[0].code == 1 and "a traceback line" in stages.stages[0].log.read_text()


def test_a_missing_command_is_one_line_too(tmp_path):
    stages = StageRunner("bench.py", tmp_path / "logs", echo=False)
    with pytest.raises(StageFailed) as failed:
        stages.run("vocab", ["mling-no-such-program", "--help"])
    message = str(failed.value.code)
    assert message.splitlines() == [message]
    assert "stage vocab could not start (mling-no-such-program:" in message
    assert message.endswith(f"see {tmp_path / 'logs' / 'vocab.log'}")
    assert "mling-no-such-program" in (tmp_path / "logs" / "vocab.log").read_text()


def test_stages_run_together_and_a_failure_stops_the_others(tmp_path):
    stages = StageRunner("demo.py", tmp_path, echo=False)
    together = [stages.stage(f"train-{k}", python("import time; time.sleep(0.5)")) for k in "ab"]
    seen: list[set[str]] = []
    started = time.perf_counter()
    seconds = stages.run_together(together, watch=lambda running: seen.append(set(running)))
    assert set(seconds) == {"train-a", "train-b"}
    assert time.perf_counter() - started < 0.5 * 2  # side by side, not one after the other
    assert {"train-a", "train-b"} in seen
    slow = stages.stage("slow", python("import time; time.sleep(60)"))
    fails = stages.stage("fails", python("raise SystemExit(3)"))
    started = time.perf_counter()
    with pytest.raises(StageFailed, match="stage fails failed \\(exit 3\\)"):
        stages.run_together([slow, fails], every=0.1)
    assert time.perf_counter() - started < 30  # the slow one was stopped, not waited for
    assert slow.code is None  # it never finished


def test_an_entry_point_runs_as_its_module_without_the_working_directory():
    command = entry_point("data/filter.py", "--input", "pairs")
    assert command.argv == (sys.executable, "-P", "-m", "mling.filtering.pipeline", "--input",
                            "pairs")  # fmt: skip
    assert (command.shown, command.closing) == ("data/filter.py --input pairs", "filter.py:")
    repository_module = python_module("benchmarks.bench_vocab", isolated=False)
    assert repository_module.argv[1:] == ("-m", "benchmarks.bench_vocab")


@pytest.mark.parametrize("script", sorted(ENTRY_POINTS))
def test_each_entry_point_is_the_module_its_door_calls(script):
    module = ENTRY_POINTS[script]
    door = REPO / script
    if door.parent.name == "mling":  # mling/train.py, mling/export.py: their own doors
        assert module == f"mling.{door.stem}"
    else:
        assert f"from {module} import main" in door.read_text(encoding="utf-8")
