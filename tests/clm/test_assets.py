"""`python -m clm.assets`: the registry-tarball path, offline re-runs and the refusals, all without npm or network."""

import base64
import hashlib
import io
import json
import tarfile
import urllib.request
from pathlib import Path

import pytest

from clm import assets

NAME = "fake-chart"
VERSION = "1.2.3"


def make_tarball(files: dict[str, bytes]) -> bytes:
    """An npm-style .tgz: every member under `package/` unless the name says otherwise."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


GOOD = {
    "package/package.json": b'{"name": "fake-chart"}',
    "package/LICENSE": b"MIT licence text",
    "package/README.md": b"not copied",
    "package/dist/x.js": b"console.log('x');",
    "package/dist/sub/y.min.js": b"y();",
}


def make_project(root: Path, tarball: bytes, *, integrity: str | None = None, version: str = VERSION) -> Path:
    """package.json + package-lock.json pinning NAME to a tarball served from a file:// URL."""
    tgz = root / f"{NAME}-{version}.tgz"
    tgz.write_bytes(tarball)
    deps = {NAME: version}
    (root / "package.json").write_text(json.dumps({"name": "t", "private": True, "dependencies": deps}))
    entry = {"version": version, "resolved": tgz.as_uri(), "integrity": integrity or sri(tarball)}
    lock = {"lockfileVersion": 3, "packages": {"": {"dependencies": deps}, f"node_modules/{NAME}": entry}}
    (root / "package-lock.json").write_text(json.dumps(lock))
    return root / "static" / "vendor" / NAME


@pytest.fixture(autouse=True)
def no_npm(monkeypatch):
    """Every test takes the no-npm path, whatever the machine has installed."""
    monkeypatch.setattr(assets.shutil, "which", lambda name: None)


def test_fetch_installs_dist_licence_and_stamp(tmp_path):
    tarball = make_tarball(GOOD)
    dest = make_project(tmp_path, tarball)

    lines = assets.install(tmp_path)

    assert lines == [f"{NAME} {VERSION}: installed (registry tarball) in static/vendor/{NAME}/"]
    assert (dest / "dist" / "x.js").read_bytes() == b"console.log('x');"
    assert (dest / "dist" / "sub" / "y.min.js").read_bytes() == b"y();"
    assert (dest / "LICENSE").read_text() == "MIT licence text"
    assert (dest / ".version").read_text() == f"{VERSION} {sri(tarball)}\n"
    assert sorted(p.name for p in dest.iterdir()) == [".version", "LICENSE", "dist"]
    assert [p.name for p in dest.parent.iterdir()] == [NAME]  # no temporary folders left behind


def test_second_run_is_offline_noop(tmp_path, monkeypatch, capsys):
    dest = make_project(tmp_path, make_tarball(GOOD))
    assets.install(tmp_path)
    stamp = (dest / ".version").stat().st_mtime_ns

    def offline(*args, **kwargs):
        raise AssertionError("no network on the second run")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(assets, "run_npm_ci", offline)
    capsys.readouterr()

    assert assets.main(["--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{NAME} {VERSION}: already present in static/vendor/{NAME}/\n"
    assert (dest / ".version").stat().st_mtime_ns == stamp


def test_new_pin_replaces_the_old_copy(tmp_path):
    dest = make_project(tmp_path, make_tarball({**GOOD, "package/dist/old.js": b"old"}), version="1.0.0")
    assets.install(tmp_path)
    make_project(tmp_path, make_tarball(GOOD))

    assets.install(tmp_path)

    assert (dest / ".version").read_text().startswith(f"{VERSION} ")
    assert not (dest / "dist" / "old.js").exists()


def test_integrity_mismatch_writes_nothing(tmp_path, capsys):
    dest = make_project(tmp_path, make_tarball(GOOD), integrity=sri(b"some other tarball"))

    assert assets.main(["--root", str(tmp_path), "--no-npm"]) == 1

    assert "integrity mismatch" in capsys.readouterr().err
    assert not dest.parent.exists()


def test_path_traversal_member_is_refused(tmp_path, capsys):
    dest = make_project(tmp_path, make_tarball({**GOOD, "package/dist/../../escape.js": b"evil"}))

    assert assets.main(["--root", str(tmp_path)]) == 1

    assert "unsafe tarball member 'package/dist/../../escape.js'" in capsys.readouterr().err
    assert not dest.parent.exists()
    assert not list(tmp_path.rglob("escape.js"))


def test_offline_first_run_says_so(tmp_path, capsys):
    make_project(tmp_path, make_tarball(GOOD))
    (tmp_path / f"{NAME}-{VERSION}.tgz").unlink()  # the "registry" is unreachable

    assert assets.main(["--root", str(tmp_path)]) == 1

    assert "cannot download" in capsys.readouterr().err


def test_stale_lockfile_is_an_error(tmp_path, capsys):
    make_project(tmp_path, make_tarball(GOOD))
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {NAME: "9.9.9"}}))

    assert assets.main(["--root", str(tmp_path)]) == 1

    assert "package-lock.json is out of date" in capsys.readouterr().err


def fake_npm_ci(monkeypatch, *, returncode: int, version: str = VERSION) -> list[list[str]]:
    """Pretend npm exists; its `npm ci` lays out node_modules/NAME like the real one would."""
    calls = []

    def run(cmd, cwd, timeout):
        calls.append(cmd)
        package = Path(cwd) / "node_modules" / NAME
        (package / "dist").mkdir(parents=True)
        (package / "dist" / "x.js").write_text("from npm")
        (package / "LICENSE.md").write_text("MIT")
        (package / "package.json").write_text(json.dumps({"version": version}))
        return assets.subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setattr(assets.shutil, "which", lambda name: "/fake/bin/npm")
    monkeypatch.setattr(assets.subprocess, "run", run)
    return calls


def test_npm_ci_path_copies_from_node_modules(tmp_path, monkeypatch):
    dest = make_project(tmp_path, make_tarball(GOOD))
    calls = fake_npm_ci(monkeypatch, returncode=0)

    assert assets.install(tmp_path) == [f"{NAME} {VERSION}: installed (npm ci) in static/vendor/{NAME}/"]

    assert calls == [["/fake/bin/npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]]
    assert (dest / "dist" / "x.js").read_text() == "from npm"
    assert (dest / "LICENSE.md").read_text() == "MIT"
    assert (dest / ".version").read_text().startswith(f"{VERSION} sha512-")


@pytest.mark.parametrize(("returncode", "version"), [(1, VERSION), (0, "0.0.1")])
def test_failed_or_wrong_npm_ci_falls_back_to_the_tarball(tmp_path, monkeypatch, returncode, version):
    dest = make_project(tmp_path, make_tarball(GOOD))
    fake_npm_ci(monkeypatch, returncode=returncode, version=version)

    assert assets.install(tmp_path) == [f"{NAME} {VERSION}: installed (registry tarball) in static/vendor/{NAME}/"]

    assert (dest / "dist" / "x.js").read_bytes() == b"console.log('x');"


def test_project_lockfile_pins_every_dependency():
    pins = assets.read_pins(assets.ROOT)

    assert [pin.name for pin in pins] == ["chart.js", "chartjs-chart-matrix", "chartjs-chart-sankey"]
    for pin in pins:
        assert pin.url.startswith(f"https://registry.npmjs.org/{pin.name}/-/")
        assert pin.integrity.startswith("sha512-")
