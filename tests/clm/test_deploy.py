"""The production configuration: Django's deploy checks pass, a missing SECRET_KEY is refused, and
docker-compose.yml is valid (see docs/DEPLOY.md).

Every check runs in a subprocess with an environment built here from scratch, so nothing of the test
run's own settings (DEBUG=1, DATABASE_URL, REDIS_URL, ...) leaks into what is checked. No database is used.
"""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # seconds per subprocess


def base_env() -> dict[str, str]:
    """Only what a process needs to start; everything the settings read is added by the caller."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("HOME", "LANG", "LC_ALL", "SYSTEMROOT"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def production_env(tmp_path: Path) -> dict[str, str]:
    """Like the docker-compose deployment, minus the services: SQLite in tmp_path, embedded broker."""
    return {
        **base_env(),
        "DJANGO_SETTINGS_MODULE": "clm.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "clm.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "CLM_DATA_DIR": str(tmp_path),
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed command lines
        args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "manage.py", *args], env)


def test_deploy_checks_pass_with_production_settings(tmp_path):
    env = production_env(tmp_path)
    assert len(env["SECRET_KEY"]) >= 50
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in result.stdout, output
    assert "warning" not in output.lower(), output


def test_missing_secret_key_is_refused_when_debug_is_off(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "ImproperlyConfigured" in result.stderr, result.stderr
    assert "SECRET_KEY" in result.stderr, result.stderr


def compose_env(tmp_path: Path, **values: str) -> tuple[dict[str, str], Path]:
    """The host environment for docker-compose, and an empty --env-file so a developer's .env plays no part."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return {**base_env(), **values}, env_file


def test_docker_compose_file_is_valid(tmp_path):
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        reason = "docker-compose is not installed (Debian: apt-get install --no-install-recommends docker-compose)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {reason}: .ci/run must install it")
        pytest.skip(reason)

    env, env_file = compose_env(tmp_path, SECRET_KEY="x", ALLOWED_HOSTS="x")
    command = [docker_compose, "--env-file", str(env_file), "-f", "docker-compose.yml", "config"]
    result = run([*command, "-q"], env)
    assert result.returncode == 0, result.stdout + result.stderr

    # Rendered, the web command keeps gunicorn 27 from opening a control socket under ~/.gunicorn.
    rendered = run(command, env)
    assert rendered.returncode == 0, rendered.stderr
    assert "--no-control-socket" in rendered.stdout

    # The required variables really are required: no silent empty SECRET_KEY.
    env, env_file = compose_env(tmp_path, ALLOWED_HOSTS="x")
    missing = run([*command, "-q"], env)
    assert missing.returncode != 0
    assert "set SECRET_KEY" in missing.stdout + missing.stderr
