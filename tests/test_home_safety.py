"""Names and folders (issue 23, item 5): the owner table, a private MEMBENCH_HOME, secrets that
no link or other user can plant, and nothing of ours inside the jail's view.

Every test points MEMBENCH_HOME at a folder of its own (monkeypatch), so a refusal here never
touches the shared one.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from benchmark import home, home_guard
from benchmark.submissions.jail import view as jail_view
from benchmark.errors import MembenchError
from benchmark.submissions import api_tokens as tokens
from benchmark.submissions import owners
from benchmark.submissions.api import create_app
from benchmark.submissions.jail import view
from benchmark.submissions.queue import Queue
from benchmark.submissions.worker import WorkerConfig, serve

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    root = tmp_path / "mbhome"
    monkeypatch.setenv("MEMBENCH_HOME", str(root))
    return root


# --- private folders -----------------------------------------------------------------------------

def test_folders_are_created_private(fresh_home):
    for folder in (home.home(), home.queue_dir(), home.secrets_dir(), home.scratch_dir("x", "y"), home.logs_dir("a")):
        assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700, folder


def test_a_link_in_place_of_a_folder_is_refused(fresh_home, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    home.home()
    os.symlink(elsewhere, fresh_home / "secrets")
    with pytest.raises(MembenchError, match="symbolic link"):
        home.secrets_dir()
    with pytest.raises(MembenchError, match="symbolic link"):
        home.read_secret("demo/pydoc-private.seed")
    assert list(elsewhere.iterdir()) == []


def test_membench_home_itself_as_a_link_or_writable_by_others_is_refused(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, tmp_path / "link")
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "link"))
    with pytest.raises(MembenchError, match="symbolic link"):
        home.home()
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("MEMBENCH_HOME", str(shared))
    with pytest.raises(MembenchError, match="writable by other users"):
        home.home()
    above = tmp_path / "open"
    above.mkdir()
    above.chmod(0o777)  # not sticky: another user could swap MEMBENCH_HOME for a link
    monkeypatch.setenv("MEMBENCH_HOME", str(above / "mb"))
    with pytest.raises(MembenchError, match="above MEMBENCH_HOME"):
        home.home()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder of another user")
def test_a_folder_of_another_user_is_refused(fresh_home):
    home.home()
    planted = fresh_home / "queue"
    planted.mkdir(mode=0o700)
    os.chown(planted, 4242, 4242)
    with pytest.raises(MembenchError, match="belongs to uid 4242"):
        home.queue_dir()


def test_secrets_never_follow_a_link_and_refuse_a_planted_file(fresh_home, tmp_path):
    target = tmp_path / "attacker-known"
    target.write_text("12345\n")
    secrets = home.secrets_dir()
    os.symlink(target, secrets / "demo__pydoc-private.seed")
    with pytest.raises(MembenchError, match="cannot be opened"):
        home.read_secret("demo/pydoc-private.seed")
    with pytest.raises(MembenchError):
        home.create_secret("demo/pydoc-private.seed", b"1\n")
    (secrets / "demo__pydoc-private.seed").unlink()
    planted = secrets / "demo__pydoc-private.seed"
    planted.write_text("12345\n")
    planted.chmod(0o644)  # readable (and so plantable) by others: not a secret
    with pytest.raises(MembenchError, match="not a private file"):
        home.read_secret("demo/pydoc-private.seed")
    planted.unlink()
    stored = home.create_secret("demo/pydoc-private.seed", b"777\n")
    assert stored == b"777\n" and home.read_secret("demo/pydoc-private.seed") == b"777\n"
    assert stat.S_IMODE(os.lstat(planted).st_mode) == 0o600
    assert home.create_secret("demo/pydoc-private.seed", b"other\n") == b"777\n"  # never replaced


def test_a_loose_secrets_folder_is_tightened_through_its_descriptor(fresh_home):
    secrets = home.secrets_dir()
    secrets.chmod(0o755)
    home.create_secret("k", b"v")
    assert stat.S_IMODE(os.lstat(secrets).st_mode) == 0o700


# --- nothing of ours inside the jail's view --------------------------------------------------------

@pytest.mark.parametrize("inside", ["/usr/share/membench-test", "python", "site", "interface"])
def test_a_home_inside_a_folder_the_jail_binds_is_refused(inside):
    where = {"python": str(view.python_home() / "membench-home"),
             "site": os.path.join(view.site_entries()[0][0], "mb"),
             "interface": str(REPO / "benchmark" / "api" / "mb")}.get(inside, inside)
    with pytest.raises(MembenchError, match="every sandboxed scorer can read"):
        jail_view.check_outside_jail(home=Path(where))


def test_a_results_folder_holding_a_bound_folder_is_refused(fresh_home):
    with pytest.raises(MembenchError, match="around"):
        jail_view.check_outside_jail(results=REPO)  # the checkout holds benchmark/api, which the jail binds


def test_the_worker_refuses_to_serve_with_its_folders_in_the_jails_view(fresh_home, tmp_path):
    queue = Queue(tmp_path / "q")
    job = queue.submit_folder(REPO / "submissions" / "zlib_ratio_blind", split="demo/pydoc", target="demo/neox-tiny")
    cfg = WorkerConfig(results_dir=view.python_home() / "membench-results")
    with pytest.raises(MembenchError, match="every sandboxed scorer can read"):
        serve(queue, cfg, exit_when_empty=True)
    assert queue.get(job)["status"] == "pending"  # nothing was taken
    assert not (view.python_home() / "membench-results").exists()


def test_our_folders_outside_the_view_pass(fresh_home, tmp_path):
    jail_view.check_outside_jail(results=tmp_path / "results", queue=tmp_path / "queue")


# --- the owner table --------------------------------------------------------------------------------

def _zip(name: str, author: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{name}/scorer.py", "import numpy as np\nfrom benchmark.api import Scorer\n"
                    f"class S(Scorer):\n    name = '{name}'\n    requires = ()\n"
                    "    def score(self, inputs):\n        return np.zeros(len(inputs.texts))\n")
        zf.writestr(f"{name}/submission.yaml", f"name: {name}\nversion: '1'\nauthors: ['{author}']\n"
                    f"description: x\nthreat_model: x\ncapabilities: []\nlicense: MIT\n")
    return buf.getvalue()


def _published(results_dir: Path, name: str, kind: str, owner: str | None) -> None:
    folder = results_dir / "demo" / "pydoc"
    folder.mkdir(parents=True, exist_ok=True)
    scorer = {"name": name, "kind": kind, **({"owner": owner} if owner else {})}
    (folder / f"{name}-{kind}.json").write_text(json.dumps({"scorer": scorer}))


@pytest.mark.parametrize("name,kind,owner,status", [
    ("loss", None, None, 403),                      # a built-in
    ("blind_mine", None, None, 403),                # a baseline's prefix
    ("maintainers", None, None, 403),               # a reserved word
    ("lab_scorer", "submission", None, 403),        # the maintainers' own published submission
    ("lab_attack", "attack", "maintainers", 403),   # a record of the maintainers of another kind
    ("carols", "submission", "carol", 403),         # another submitter's
    ("fresh_name", None, None, 201),
])
def test_the_owner_table_answers_the_api(fresh_home, tmp_path, name, kind, owner, status):
    if kind is not None:
        _published(home.results_dir(), name, kind, owner)
    queue = Queue(tmp_path / "q")
    token, _ = tokens.add(queue, "mallory", per_day=100)
    app = create_app(tmp_path / "q")
    app.state.submission_queue = queue
    with TestClient(app) as client:
        r = client.post("/api/submissions?split=demo/pydoc&target=demo/neox-tiny", content=_zip(name, "m"),
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status, r.text


def test_the_repositorys_published_names_are_the_maintainers(fresh_home):
    """Names on the repository's leaderboard (e.g. the example submissions) are nobody else's."""
    taken = owners.holders("min_k_30", owners.published_dirs())
    if not taken:
        pytest.skip("the repository publishes no min_k_30 record")
    with pytest.raises(owners.ReservedName):
        owners.check("min_k_30", "mallory")
    owners.check("min_k_30", owners.MAINTAINERS)  # the maintainers may run their own again


def test_validate_and_evaluate_consult_the_owner_table(fresh_home, tmp_path):
    from benchmark.evaluate import RunSpec
    from benchmark.submissions.sandboxed import evaluate, validate

    _published(home.results_dir(), "carols", "submission", "carol")
    folder = tmp_path / "sub"
    with zipfile.ZipFile(io.BytesIO(_zip("carols", "m"))) as zf:
        zf.extractall(folder)
    spec = RunSpec.build("demo/neox-tiny", "demo/pydoc", scorers=(), results_dir=tmp_path / "r", progress=False)
    report = validate(folder / "carols", spec, log_path=tmp_path / "log", owner="mallory")
    assert not report["ok"] and "another submitter" in report["error"]
    with pytest.raises(owners.NameTaken):
        evaluate(folder / "carols", spec, log_path=tmp_path / "log", owner="mallory")


# --- the jail's mount table names no host path --------------------------------------------------------

MOUNT_PROBE = '''\
import sys
import numpy as np
from benchmark.api import Scorer

class S(Scorer):
    name = "mount_probe"
    requires = ()

    def __init__(self, forbidden=()):
        self.forbidden = list(forbidden)

    def score(self, inputs):
        seen = open("/proc/self/mountinfo").read() + open("/proc/1/mountinfo").read()
        seen += " ".join([sys.prefix, sys.base_prefix, sys.executable] + sys.path)
        print("LEAKS", [p for p in self.forbidden if p in seen])
        return np.zeros(len(inputs.texts))
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="folders are staged (overlays, no host path) only when the harness "
                                               "runs as root; unprivileged bwrap binds them (README: residual)")
def test_the_jails_mount_table_shows_no_host_path(tmp_path):
    from benchmark.submissions import isolation_problem
    from benchmark.submissions.jail import Limits
    from benchmark.submissions.sandbox import run_scorer

    if isolation_problem() is not None:
        pytest.skip(f"no full jail here: {isolation_problem()}")
    import sys

    folder = tmp_path / "mount_probe"
    folder.mkdir()
    (folder / "scorer.py").write_text(MOUNT_PROBE)
    forbidden = sorted({str(REPO), os.environ["MEMBENCH_HOME"], os.path.realpath(os.environ["MEMBENCH_HOME"]),
                        sys.prefix, os.path.realpath(sys.base_prefix), str(Path.home()), str(tmp_path)}
                       - {"/", "/usr", "/usr/local"})
    log = tmp_path / "log"
    run = run_scorer(folder, uids=["a", "b"], texts=["x", "y"], features=None, params={"forbidden": forbidden},
                     class_name=None, declared=(), access=None, log_path=log,
                     limits=Limits(memory_mb=768, disk_mb=64, wall_s=30, nproc=24, cpu_s=60))
    assert run.sandboxed
    assert "LEAKS []" in log.read_text(), log.read_text()[-3000:]
