"""A production-like environment passes `check --deploy` with no warning, with every
secure setting driven by the environment; docs/deploy.md names every variable the
product reads."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "x" * 20 + "-a-production-secret-key-that-is-long-enough-0123456789"
PRODUCTION_LIKE = {
    "DEBUG": "false",
    "SECRET_KEY": SECRET,
    "ALLOWED_HOSTS": "registration.example.org",
    "SITE_URL": "https://registration.example.org",
}
STRIPE = {
    "STRIPE_SECRET_KEY": "sk_test_settings_only_not_a_real_key",
    "STRIPE_WEBHOOK_SECRET": "whsec_settings_only_not_a_real_secret",
}
PRINT_SECURITY = """
import json, django
from django.conf import settings
django.setup()
names = [
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY", "CSRF_COOKIE_SAMESITE", "LANGUAGE_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER", "TRUSTED_PROXY_HOPS", "ALLAUTH_TRUSTED_PROXY_COUNT",
    "CSRF_FAILURE_VIEW",
]
print(json.dumps({name: getattr(settings, name, None) for name in names}))
"""


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py``/``python`` with only these variables: nothing of the test run's
    own environment (its database, broker or keys) leaks in."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


ENVIRONMENTS = {
    "production": {**PRODUCTION_LIKE, "DJANGO_ENV": "production", **STRIPE},
    "https site": PRODUCTION_LIKE,
}


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_check_deploy_finds_nothing_with_production_like_variables(name):
    env = ENVIRONMENTS[name]
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout

    values = json.loads(run(["-c", PRINT_SECURITY], env).stdout.strip().splitlines()[-1])
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "LANGUAGE_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        # Never trusted unless said: without a load balancer the client writes it.
        "TRUSTED_PROXY_HOPS": 0,
        "ALLAUTH_TRUSTED_PROXY_COUNT": 0,
        "CSRF_FAILURE_VIEW": "config.security_log.csrf_failure",
    }


def test_each_secure_setting_can_be_changed_by_its_variable():
    env = {
        **PRODUCTION_LIKE,
        "SECURE_HSTS_SECONDS": "600",
        "SECURE_SSL_REDIRECT": "false",
        "BEHIND_TLS_PROXY": "false",
        "TRUSTED_PROXY_HOPS": "1",
    }
    values = json.loads(run(["-c", PRINT_SECURITY], env).stdout.strip().splitlines()[-1])
    assert values["TRUSTED_PROXY_HOPS"] == values["ALLAUTH_TRUSTED_PROXY_COUNT"] == 1
    env["TRUSTED_PROXY_HOPS"] = "0"
    values = json.loads(run(["-c", PRINT_SECURITY], env).stdout.strip().splitlines()[-1])
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["TRUSTED_PROXY_HOPS"] == values["ALLAUTH_TRUSTED_PROXY_COUNT"] == 0


def test_a_plain_http_site_keeps_cookies_it_can_send():
    """`make stack` serves http://127.0.0.1 with DEBUG off: a Secure cookie would never
    come back, so the secure defaults follow SITE_URL."""
    env = {**PRODUCTION_LIKE, "SITE_URL": "http://127.0.0.1:8000"}
    values = json.loads(run(["-c", PRINT_SECURITY], env).stdout.strip().splitlines()[-1])
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["TRUSTED_PROXY_HOPS"] == 0
    assert values["SESSION_COOKIE_HTTPONLY"] is True


# -- every variable documented ------------------------------------------------------

NOT_PRODUCT = {"tests", "bench", "ops", ".venv", "var", "build", "locale", "node_modules"}


def product_sources() -> list[Path]:
    """manage.py and every package of the product (a folder with ``__init__.py``)."""
    packages = [
        folder
        for folder in ROOT.iterdir()
        if folder.is_dir() and folder.name not in NOT_PRODUCT and (folder / "__init__.py").exists()
    ]
    return [ROOT / "manage.py", *(p for folder in packages for p in folder.rglob("*.py"))]


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def variables_read(source: str) -> set[str]:
    """Names read with django-environ (``env("X")``, ``env.str("X")``, …) or from
    ``os.environ``/``os.getenv``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            called = _name(node.func)
            reads = (
                called == "env"
                or (called.startswith("env.") and called.count(".") == 1)
                or called in {"os.getenv", "os.environ.get", "os.environ.setdefault"}
                or called == "_required_in_production"
            )
            if reads and (name := _first_string(node)):
                found.add(name)
        elif isinstance(node, ast.Subscript) and _name(node.value) == "os.environ":
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.add(key.value)
    return found


def test_the_scanner_finds_every_way_of_reading_a_variable():
    source = (
        'import os\nA = env("A")\nB = env.bool("B", default=False)\nC = os.environ["C"]\n'
        'D = os.environ.get("D")\nE = os.getenv("E")\nF = env.list("F")\n'
        'G = settings.env.str("NOT_A_READ")\n'
    )
    assert variables_read(source) == {"A", "B", "C", "D", "E", "F"}


def test_docs_deploy_names_every_environment_variable_the_product_reads():
    documented = (ROOT / "docs" / "deploy.md").read_text()
    read = set().union(*(variables_read(path.read_text()) for path in product_sources()))
    assert {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL"} <= read  # the scan works
    missing = sorted(name for name in read if f"`{name}`" not in documented)
    assert not missing, f"docs/deploy.md does not describe {missing}"


def test_derived_field_keys_follow_a_secret_key_rotation():
    """Without FIELD_ENCRYPTION_KEYS the field keys come from SECRET_KEY: after a
    rotation the old key (a fallback) still decrypts what it encrypted."""
    show = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps(settings.FIELD_ENCRYPTION_KEYS))"
    )
    env = {**PRODUCTION_LIKE, "SECRET_KEY_FALLBACKS": "an-older-secret-key"}
    keys = json.loads(run(["-c", show], env).stdout.strip().splitlines()[-1])
    assert keys == [f"fields:{SECRET}", "fields:an-older-secret-key"]
    explicit = json.loads(
        run(["-c", show], {**env, "FIELD_ENCRYPTION_KEYS": "new,old"})
        .stdout.strip()
        .splitlines()[-1]
    )
    assert explicit == ["new", "old"]
