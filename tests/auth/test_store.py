"""store: add/rm/list on real files; atomic 0640 writes; interop with the real htpasswd tool."""

from __future__ import annotations

import os
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from vhostd.auth import store
from vhostd.auth.htpasswd import parse_htpasswd
from vhostd.errors import VhostdError

from .conftest import htpasswd_line, require_htpasswd


def htpasswd_verifies(path: str, user: str, password: str) -> bool:
    result = subprocess.run([require_htpasswd(), "-vb", path, user, password], capture_output=True)
    return result.returncode == 0


def test_add_creates_dir_and_a_0640_bcrypt_file_the_real_tool_accepts(tmp_path) -> None:
    directory = str(tmp_path / "htpasswd")
    password = store.add_user(directory, "preview.example", "alice", "s3cret", cost=4)
    assert password == "s3cret"
    path = os.path.join(directory, "preview.example")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    text = open(path).read()
    assert text.startswith("alice:$2y$04$") and text.endswith("\n")
    assert htpasswd_verifies(path, "alice", "s3cret")
    assert not htpasswd_verifies(path, "alice", "s3creT")
    assert os.listdir(directory) == ["preview.example"], "no temp file left behind"


def test_generated_password_is_strong_and_works(tmp_path) -> None:
    password = store.add_user(str(tmp_path), "site", "bob", cost=4)
    assert len(password) >= 20
    assert password != store.add_user(str(tmp_path), "site", "carol", cost=4)
    assert htpasswd_verifies(str(tmp_path / "site"), "bob", password)


def test_changing_a_password_replaces_the_line_in_place_and_keeps_other_lines(tmp_path) -> None:
    path = tmp_path / "site"
    des = htpasswd_line(["-d"], "legacy", "x")
    path.write_text(f"# team\nalice:{{SHA}}5en6G6MezRroT3XKqkdPOmY/BfQ=\n{des}\nbob:{{SHA}}x")
    store.add_user(str(tmp_path), "site", "alice", "new", cost=4)
    lines = path.read_text().splitlines()
    assert lines[0] == "# team" and lines[1].startswith("alice:$2y$")
    assert lines[2] == des, "a refused line is the owner's to fix; we keep it"
    assert lines[3] == "bob:{SHA}x"
    assert htpasswd_verifies(str(path), "alice", "new")


def test_remove_and_list(tmp_path) -> None:
    directory = str(tmp_path)
    for user in ("a", "b", "c"):
        store.add_user(directory, "site", user, "pw", cost=4)
    assert store.list_users(directory, "site") == (("a", "b", "c"), ())
    assert store.remove_user(directory, "site", "b") == 2
    assert store.list_users(directory, "site")[0] == ("a", "c")
    assert store.remove_user(directory, "site", "a") == 1
    assert store.remove_user(directory, "site", "c") == 0
    assert (tmp_path / "site").read_text() == "", "an empty file still protects (nobody logs in)"


def test_list_reports_refused_lines(tmp_path) -> None:
    (tmp_path / "site").write_text("plain:text\n" + htpasswd_line(["-m"], "ok", "pw") + "\n")
    users, problems = store.list_users(str(tmp_path), "site")
    assert users == ("ok",)
    assert problems[0].where == f"{tmp_path / 'site'}:1"


@pytest.mark.parametrize(
    "call",
    [
        lambda d: store.remove_user(d, "missing", "a"),
        lambda d: store.list_users(d, "missing"),
        lambda d: store.add_user(d, "../escape", "a", "pw", cost=4),
        lambda d: store.add_user(d, ".hidden", "a", "pw", cost=4),
        lambda d: store.add_user(d, "site", "bad:user", "pw", cost=4),
        lambda d: store.add_user(d, "site", "a", "", cost=4),
        lambda d: store.add_user(d, "site", "a", "p" * 73, cost=4),
    ],
)
def test_errors_are_vhostd_errors(tmp_path, call) -> None:
    with pytest.raises(VhostdError):
        call(str(tmp_path))


def test_remove_unknown_user_is_an_error_and_leaves_the_file(tmp_path) -> None:
    store.add_user(str(tmp_path), "site", "a", "pw", cost=4)
    before = (tmp_path / "site").read_text()
    with pytest.raises(VhostdError, match="no user 'zed'"):
        store.remove_user(str(tmp_path), "site", "zed")
    assert (tmp_path / "site").read_text() == before


def test_concurrent_adds_lose_no_user(tmp_path) -> None:
    directory = str(tmp_path)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(lambda n: store.add_user(directory, "site", f"u{n}", "pw", cost=4), range(24))
        )
    entries, problems = parse_htpasswd((tmp_path / "site").read_text(), "site")
    assert problems == ()
    assert sorted(user for user, _ in entries) == sorted(f"u{n}" for n in range(24))


def test_rewrite_is_atomic_for_a_reader_holding_the_old_file(tmp_path) -> None:
    store.add_user(str(tmp_path), "site", "a", "pw", cost=4)
    with open(tmp_path / "site") as old:
        store.add_user(str(tmp_path), "site", "b", "pw", cost=4)
        assert old.read().count("\n") == 1, "the old inode is untouched; the name moved"
    assert (tmp_path / "site").read_text().count("\n") == 2
