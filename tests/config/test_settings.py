"""Settings come from the environment: embedded defaults with no variables at all,
PostgreSQL and Redis when named, and a production mode that refuses to start
half-configured and passes `check --deploy` with no warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x" * 20 + "-a-production-secret-key-that-is-long-enough-0123456789"

PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
from config.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "host": db.get("HOST", ""),
    "debug": settings.DEBUG, "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "broker": app.conf.broker_url, "email": settings.EMAIL_BACKEND,
    "email_path": str(getattr(settings, "EMAIL_FILE_PATH", "")),
    "ssl_redirect": getattr(settings, "SECURE_SSL_REDIRECT", False),
    "session_secure": settings.SESSION_COOKIE_SECURE, "hsts": settings.SECURE_HSTS_SECONDS,
}))
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "DJANGO_ENV",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DEBUG",
            "EMAIL_URL",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
        }
    }
    clean["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def settings_with(**env: str) -> dict:
    result = run(["-c", PRINT_SETTINGS], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_no_variables_at_all_gives_the_embedded_demo():
    values = settings_with()
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"] == str(ROOT / "var" / "db.sqlite3")
    assert values["debug"] is True
    assert values["eager"] is True
    assert values["email"] == "django.core.mail.backends.filebased.EmailBackend"
    assert values["email_path"] == str(ROOT / "var" / "mail")


def test_database_url_selects_postgresql():
    values = settings_with(DATABASE_URL="postgres://app:secret@db.internal:5432/registration")
    assert values["engine"] == "django.db.backends.postgresql"
    assert (values["name"], values["host"]) == ("registration", "db.internal")


def test_a_broker_url_turns_off_in_process_tasks():
    values = settings_with(CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
    assert values["eager"] is False
    assert values["broker"] == "redis://127.0.0.1:6379/0"


def test_production_refuses_to_start_without_a_secret_key():
    result = run(
        ["manage.py", "check"], DJANGO_ENV="production", ALLOWED_HOSTS="registration.example.org"
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DJANGO_ENV=production" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = run(["manage.py", "check"], DJANGO_ENV="production", SECRET_KEY=SECRET)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set when DJANGO_ENV=production" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = run(
        ["manage.py", "check"],
        DJANGO_ENV="production",
        SECRET_KEY="short",
        ALLOWED_HOSTS="registration.example.org",
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters long" in result.stderr


def test_an_unknown_environment_is_refused():
    result = run(["manage.py", "check"], DJANGO_ENV="staging")
    assert result.returncode != 0
    assert "DJANGO_ENV must be one of development, production" in result.stderr


STRIPE = {
    "STRIPE_SECRET_KEY": "sk_test_settings_only_not_a_real_key",
    "STRIPE_WEBHOOK_SECRET": "whsec_settings_only_not_a_real_secret",
}


def test_production_passes_check_deploy_without_a_warning():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_ENV="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="registration.example.org",
        **STRIPE,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout
    values = settings_with(
        DJANGO_ENV="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="registration.example.org",
        **STRIPE,
    )
    assert values["debug"] is False
    assert values["ssl_redirect"] is True and values["session_secure"] is True
    assert values["hsts"] >= 31_536_000
