"""The production configuration: Django's deploy checks pass, a missing SECRET_KEY is refused, sessions, cookies
and response headers are strict, and docker-compose.yml is valid (see docs/DEPLOY.md and docs/SECURITY.md).

Every check runs in a subprocess with an environment built here from scratch, so nothing of the test
run's own settings (DEBUG=1, DATABASE_URL, REDIS_URL, ...) leaks into what is checked. No database is used.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.conftest import missing_dependency

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
        "CLM_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
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


def test_missing_encryption_key_is_refused_when_debug_is_off(tmp_path):
    env = production_env(tmp_path)
    del env["CLM_ENCRYPTION_KEYS"]
    result = manage("check", env=env)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "CLM_ENCRYPTION_KEYS must be set" in result.stderr, result.stderr


def django_script(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh Python with Django set up under `env`; the code prints JSON."""
    setup = "import json, django; django.setup()\n"
    return run([sys.executable, "-c", setup + code], env)


def test_production_settings_make_sessions_and_cookies_strict(tmp_path):
    result = django_script(
        "from django.conf import settings as s\n"
        "names = ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE',"
        " 'CSRF_COOKIE_SAMESITE', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS',"
        " 'SESSION_COOKIE_AGE', 'CLM_SESSION_IDLE_TIMEOUT', 'AUTHENTICATION_BACKENDS', 'AXES_FAILURE_LIMIT']\n"
        "print(json.dumps({name: getattr(s, name) for name in names}))",
        production_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SESSION_COOKIE_SECURE"] and values["CSRF_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_SSL_REDIRECT"] and values["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SESSION_COOKIE_AGE"] == 12 * 3600 and values["CLM_SESSION_IDLE_TIMEOUT"] == 30 * 60
    assert values["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"
    assert values["AXES_FAILURE_LIMIT"] == 5


def test_production_responses_carry_the_security_headers(tmp_path):
    """A page answered by the production configuration (Django's test client in a production-configured process;
    the login page needs no database): HTTPS redirect, HSTS, CSP, referrer policy, no sniffing, no framing."""
    result = django_script(
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='clm.example.com')\n"
        "plain = client.get('/accounts/login/')\n"
        "page = client.get('/accounts/login/', secure=True)\n"
        "print(json.dumps({'plain': [plain.status_code, plain.get('Location')], 'status': page.status_code,"
        " 'headers': dict(page.headers)}))",
        production_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["plain"] == [301, "https://clm.example.com/accounts/login/"]
    assert answer["status"] == 200
    headers = answer["headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy


def compose_env(tmp_path: Path, **values: str) -> tuple[dict[str, str], Path]:
    """The host environment for docker-compose, and an empty --env-file so a developer's .env plays no part."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return {**base_env(), **values}, env_file


def test_docker_compose_file_is_valid(tmp_path):
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        missing_dependency(
            "docker-compose is not installed (Debian: apt-get install --no-install-recommends docker-compose)"
        )

    env, env_file = compose_env(tmp_path, SECRET_KEY="x", ALLOWED_HOSTS="x", CLM_ENCRYPTION_KEYS="x")
    command = [docker_compose, "--env-file", str(env_file), "-f", "docker-compose.yml", "config"]
    result = run([*command, "-q"], env)
    assert result.returncode == 0, result.stdout + result.stderr

    # Rendered, the web command keeps gunicorn 27 from opening a control socket under ~/.gunicorn.
    rendered = run(command, env)
    assert rendered.returncode == 0, rendered.stderr
    assert "--no-control-socket" in rendered.stdout

    # The required variables really are required: no silent empty SECRET_KEY.
    env, env_file = compose_env(tmp_path, ALLOWED_HOSTS="x", CLM_ENCRYPTION_KEYS="x")
    missing = run([*command, "-q"], env)
    assert missing.returncode != 0
    assert "set SECRET_KEY" in missing.stdout + missing.stderr
