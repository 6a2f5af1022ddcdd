"""The project's git checkout: clone it, or update it in place when deployed again."""

from __future__ import annotations

import os
import shutil

from vhostd.deploy.commands import run, say
from vhostd.errors import VhostdError


def _git(checkout: str, *args: str, step: str) -> str:
    return run(["git", "-C", checkout, *args], step).strip()


def remote_branch_exists(repo: str, branch: str) -> bool:
    out = run(["git", "ls-remote", "--heads", repo, f"refs/heads/{branch}"], f"reading {repo}")
    return bool(out.strip())


def default_branch(repo: str) -> str:
    """The branch the repository's HEAD points to."""
    out = run(["git", "ls-remote", "--symref", repo, "HEAD"], f"reading {repo}")
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/"):
            return line.split()[1][len("refs/heads/"):]
    raise VhostdError(f"{repo} has no default branch; give one with --branch")


def clone(repo: str, branch: str, checkout: str) -> str:
    """Clone `branch` of `repo` into `checkout`; returns the commit."""
    say(f"==> cloning {repo} ({branch})")
    os.makedirs(os.path.dirname(checkout) or ".", exist_ok=True)
    run(["git", "clone", "--progress", "--branch", branch, repo, checkout], "git clone", echo=True)
    return _git(checkout, "rev-parse", "HEAD", step="git rev-parse")


def current_commit(checkout: str) -> str:
    return _git(checkout, "rev-parse", "HEAD", step="git rev-parse")


def current_branch(checkout: str) -> str:
    """The checked-out branch ("" when detached)."""
    name = _git(checkout, "rev-parse", "--abbrev-ref", "HEAD", step="git rev-parse")
    return "" if name == "HEAD" else name


def origin_url(checkout: str) -> str:
    return _git(checkout, "remote", "get-url", "origin", step="git remote")


def update(checkout: str, branch: str) -> str:
    """Fetch and move the checkout to origin's `branch` (local edits are discarded)."""
    say(f"==> updating the checkout ({branch})")
    run(["git", "-C", checkout, "fetch", "--progress", "origin",
         f"+refs/heads/{branch}:refs/remotes/origin/{branch}"], "git fetch", echo=True)
    _git(checkout, "checkout", "-q", "-B", branch, f"origin/{branch}", step="git checkout")
    _git(checkout, "reset", "-q", "--hard", f"origin/{branch}", step="git reset")
    return current_commit(checkout)


def restore(checkout: str, branch: str, commit: str) -> None:
    """Put the checkout back on `commit` (rollback of a failed update)."""
    _git(checkout, "checkout", "-q", "-B", branch, commit, step="git checkout")


def remove(checkout: str) -> None:
    shutil.rmtree(checkout, ignore_errors=True)
