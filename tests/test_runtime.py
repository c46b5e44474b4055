"""The shared runtime: atomic writes, directory publishing, and cancellation seen by the UI job."""

from __future__ import annotations

import json
import os

import pytest

from ui.jobs import FinetuneJob
from unlearn.runtime import Cancelled, Progress, publish_dir, temp_dir_next_to, write_json


def test_write_json_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "run.json"
    write_json(path, {"a": 1})
    write_json(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]


def test_write_json_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "run.json"
    write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_publish_dir_replaces_a_folder(tmp_path):
    target = tmp_path / "final"
    for version in ("old", "new"):
        tmp = temp_dir_next_to(target)
        (tmp / "weights.txt").write_text(version)
        publish_dir(tmp, target)
    assert (target / "weights.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["final"]


def _run_job(tmp_path, exc: Exception, cancel: bool) -> dict:
    job = FinetuneJob(tmp_path)

    def work(j: FinetuneJob):
        j.on_progress(Progress("labels", 1, 4))
        if cancel:
            j.cancel()
        raise exc

    assert job.try_start("me", tmp_path / "run", work)
    assert job.wait(30)
    return job.snapshot()


def test_job_reports_cancelled_only_for_the_cancel_type(tmp_path):
    snap = _run_job(tmp_path, Cancelled("stopped"), cancel=True)
    assert snap["state"] == "cancelled" and snap["error"] is None
    assert snap["stages"]["labels"]["status"] == "cancelled"

    class CancellationPolicyError(RuntimeError):  # a name with "ancel" is not a cancel
        pass

    snap = _run_job(tmp_path, CancellationPolicyError("boom"), cancel=True)
    assert snap["state"] == "failed" and "boom" in snap["error"]
    snap = _run_job(tmp_path, Cancelled("not asked"), cancel=False)
    assert snap["state"] == "failed"
