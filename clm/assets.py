"""Put the pinned front-end libraries' ``dist/`` files into ``static/vendor/`` (``make assets``).

JavaScript libraries are pinned dependencies, not committed code: ``package.json`` names them and
``package-lock.json`` fixes each one's version, tarball URL and integrity hash. This module turns that lockfile
into ``static/vendor/<name>/{dist/,LICENSE}`` (gitignored). It uses ``npm ci`` where npm exists, else it fetches
the tarball itself and checks it against the lockfile's hash, so a Python-only machine gets the same bytes.
A stamp file records what is installed, so every run after the first is a no-op that works offline.
Standard library only, nothing from Django: it needs no settings, database or Node.js.
"""

import argparse
import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "https://registry.npmjs.org"
STAMP = ".version"
TIMEOUT = 60  # seconds, per download and for `npm ci`


class AssetError(Exception):
    """A failure the user can act on; ``main`` prints it and exits non-zero."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    url: str
    integrity: str

    @property
    def stamp(self) -> str:
        return f"{self.version} {self.integrity}\n"


def read_pins(root: Path) -> list[Pin]:
    """The direct dependencies of ``package.json`` as the lockfile pins them (a stale lockfile is an error)."""
    wanted = json.loads((root / "package.json").read_text()).get("dependencies", {})
    lock = json.loads((root / "package-lock.json").read_text()).get("packages", {})
    if lock.get("", {}).get("dependencies", {}) != wanted:
        raise AssetError("package-lock.json is out of date: run `npm install --ignore-scripts --package-lock-only`")
    pins = []
    for name in sorted(wanted):
        entry = lock.get(f"node_modules/{name}")
        if not entry or "version" not in entry or "integrity" not in entry:
            raise AssetError(f"package-lock.json has no version and integrity for {name}: run npm install again")
        # npm leaves out `resolved` when omit-lockfile-registry-resolved is set; the registry URL is then implied.
        url = entry.get("resolved") or f"{REGISTRY}/{name}/-/{name.rpartition('/')[2]}-{entry['version']}.tgz"
        pins.append(Pin(name, entry["version"], url, entry["integrity"]))
    return pins


def is_current(dest: Path, pin: Pin) -> bool:
    """The stamp is written last, so it only exists next to a complete copy of that exact tarball."""
    stamp = dest / STAMP
    return stamp.is_file() and stamp.read_text() == pin.stamp and (dest / "dist").is_dir()


def replace_dir(dest: Path, fill: Callable[[Path], None]) -> None:
    """Build the new directory beside ``dest`` and rename it into place, so a failed run leaves no half copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        fill(tmp)
        if dest.exists():
            old = tmp.with_name(tmp.name + "-old")
            dest.rename(old)
            tmp.rename(dest)
            shutil.rmtree(old)
        else:
            tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_from_node_modules(root: Path, pin: Pin, dest: Path) -> bool:
    """Copy ``dist/`` and the licence from what ``npm ci`` installed; False if it is not the pinned version."""
    source = root / "node_modules" / pin.name
    manifest = source / "package.json"
    if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != pin.version:
        return False

    def fill(tmp: Path) -> None:
        shutil.copytree(source / "dist", tmp / "dist")
        for licence in sorted(source.glob("LICEN[CS]E*")):
            shutil.copy2(licence, tmp / licence.name)
        (tmp / STAMP).write_text(pin.stamp)

    replace_dir(dest, fill)
    return True


def download(url: str) -> bytes:
    if url.partition(":")[0] not in ("https", "file"):
        raise AssetError(f"refusing to download {url}: only https:// (or file://) URLs are allowed")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 (scheme checked above)
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AssetError(f"cannot download {url}: {reason} (the first `make assets` needs the npm registry)") from exc


def verify(data: bytes, integrity: str, url: str) -> None:
    """Check ``data`` against a Subresource Integrity string, using its strongest algorithm (as npm does)."""
    hashes = [token.split("-", 1) for token in integrity.split() if "-" in token]
    for algorithm in ("sha512", "sha384", "sha256"):
        expected = [digest for name, digest in hashes if name == algorithm]
        if expected:
            actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
            if actual not in expected:
                raise AssetError(f"integrity mismatch for {url}: lockfile says {integrity}, got {algorithm}-{actual}")
            return
    raise AssetError(f"no sha512/sha384/sha256 integrity in the lockfile for {url}: {integrity!r}")


def extract_dist(data: bytes, dest: Path, pin: Pin) -> None:
    """Unpack only ``package/dist/**`` and the licence; any unsafe member refuses the whole tarball."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        for member in members:
            parts = PurePosixPath(member.name).parts
            if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                raise AssetError(f"refusing {pin.url}: unsafe tarball member {member.name!r}")

        def fill(tmp: Path) -> None:
            for member in members:
                rel = PurePosixPath(*PurePosixPath(member.name).parts[1:])  # drop the top folder, "package/"
                is_licence = len(rel.parts) == 1 and rel.name.upper().startswith(("LICENSE", "LICENCE"))
                if member.isfile() and (rel.parts[:1] == ("dist",) or is_licence):
                    target = tmp / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
            if not (tmp / "dist").is_dir():
                raise AssetError(f"{pin.url} has no package/dist/ folder")
            (tmp / STAMP).write_text(pin.stamp)

        replace_dir(dest, fill)


def run_npm_ci(root: Path) -> bool:
    """``npm ci`` installs exactly the lockfile (and checks its hashes); False if npm is missing or fails."""
    npm = shutil.which("npm")
    if npm is None:
        return False
    try:
        result = subprocess.run(  # noqa: S603 (fixed arguments)
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=root, timeout=TIMEOUT * 5
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"npm ci failed ({exc}); fetching the tarballs directly", file=sys.stderr)
        return False
    if result.returncode != 0:
        print("npm ci failed; fetching the tarballs directly", file=sys.stderr)
    return result.returncode == 0


def install(root: Path = ROOT, *, use_npm: bool = True) -> list[str]:
    """Bring ``root/static/vendor`` in line with the lockfile; returns one line per package."""
    vendor = root / "static" / "vendor"
    pins = read_pins(root)
    missing = [pin for pin in pins if not is_current(vendor / pin.name, pin)]
    npm_ok = bool(missing) and use_npm and run_npm_ci(root)
    lines = []
    for pin in pins:
        dest = vendor / pin.name
        if pin not in missing:
            how = "already present"
        elif npm_ok and copy_from_node_modules(root, pin, dest):
            how = "installed (npm ci)"
        else:
            data = download(pin.url)
            verify(data, pin.integrity, pin.url)
            extract_dist(data, dest, pin)
            how = "installed (registry tarball)"
        lines.append(f"{pin.name} {pin.version}: {how} in {dest.relative_to(root)}/")
        print(lines[-1])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clm.assets", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="project root holding package-lock.json")
    parser.add_argument("--no-npm", action="store_true", help="fetch the tarballs even if npm is installed")
    args = parser.parse_args(argv)
    try:
        install(args.root, use_npm=not args.no_npm)
    except AssetError as exc:
        print(f"assets: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, tarfile.TarError) as exc:  # unreadable files, bad JSON, corrupt tarball
        print(f"assets: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
