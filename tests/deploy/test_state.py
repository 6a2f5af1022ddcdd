"""Deploy records and the per-project lock, on a real directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from vhostd.config.model import Config, DeploySettings
from vhostd.deploy.project import DeployRequest, deploy_project, undeploy_project
from vhostd.deploy.state import ProjectRecord, all_records, load_record, project_lock, save_record
from vhostd.errors import VhostdError


def test_records_are_listed_by_name_and_survive_a_round_trip(tmp_path: Path) -> None:
    for name in ("b", "a"):
        save_record(str(tmp_path), ProjectRecord(name, "repo", "main", "compose", (f"{name}.test",),
                                                 f"http://{name}.test/", str(tmp_path / name)))
    assert [r.name for r in all_records(str(tmp_path))] == ["a", "b"]
    assert load_record(str(tmp_path), "a") == all_records(str(tmp_path))[0]
    assert load_record(str(tmp_path), "zzz") is None
    assert all_records(str(tmp_path / "none")) == []


def test_one_command_at_a_time_per_project(tmp_path: Path) -> None:
    config = Config(deploy=DeploySettings(projects_dir=str(tmp_path)))
    with project_lock(str(tmp_path), "shop"):
        with pytest.raises(VhostdError, match="being deployed or undeployed by another command"):
            deploy_project(config, DeployRequest(repo="/nowhere", name="shop"))
        other = DeployRequest(repo=str(tmp_path / "missing"), name="other")
        with pytest.raises(VhostdError, match="deploy of other failed"):
            deploy_project(config, other)  # other projects are not blocked
    assert sorted(p.name for p in (tmp_path / ".deploys").iterdir()) == []  # no lock left over
    with pytest.raises(VhostdError, match="no deployed project 'shop'"):
        undeploy_project(config, "shop")
