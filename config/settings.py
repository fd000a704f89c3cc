"""Settings, read from the environment.

With no variables at all the product runs as an embedded demo: SQLite under
``var/``, Celery tasks run in-process, email written to files under ``var/mail``,
DEBUG on. ``DJANGO_ENV=production`` turns every secure setting on and refuses to
start without ``SECRET_KEY`` and ``ALLOWED_HOSTS``. ``docs/deploy.md`` lists every
variable (a test fails when a variable read here is missing there).
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

ENVIRONMENTS = ("development", "production")
DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in ENVIRONMENTS:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be one of {', '.join(ENVIRONMENTS)}; it is {DJANGO_ENV!r}."
    )
PRODUCTION = DJANGO_ENV == "production"


def _required_in_production(name: str) -> None:
    if PRODUCTION and not env.str(name, default=""):
        raise ImproperlyConfigured(
            f"{name} must be set when DJANGO_ENV=production. "
            "See docs/deploy.md for every environment variable."
        )


_required_in_production("SECRET_KEY")
_required_in_production("ALLOWED_HOSTS")

# The development key is public by design: it only ever signs local demo sessions.
SECRET_KEY = env.str(
    "SECRET_KEY", default="development-only-key-never-used-in-production-0123456789abcdef"
)
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 characters long; generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
    )
# Earlier keys, still accepted for signatures (sessions, password reset links) while
# SECRET_KEY is rotated: see docs/deploy.md.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The district this installation serves; shown on every page, letter and email.
DISTRICT_NAME = env.str("DISTRICT_NAME", default="Riverside Unified School District")
DISTRICT_SHORT_NAME = env.str("DISTRICT_SHORT_NAME", default="Riverside Unified")
DISTRICT_HELP_EMAIL = env.str("DISTRICT_HELP_EMAIL", default="registration@riverside.example.org")
DISTRICT_HELP_PHONE = env.str("DISTRICT_HELP_PHONE", default="+1 650 555 0100")
DISTRICT_WEBSITE = env.str("DISTRICT_WEBSITE", default="https://www.riverside.example.org")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "simple_history",
    "phonenumber_field",
    "registration",
    "workflow",
    "formtools",
    "payments",
    "documents",
    "finance",
    "outbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "config.errors.ErrorIdMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.security_log.RefusalLogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "registration.access.StaffMFAMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "registration.context_processors.district",
                "registration.context_processors.staff_role",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL names another one.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server read while an import writes; the busy timeout makes a
    # second writer wait instead of failing at once.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = ":memory:"
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "registration.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# Sign-in with django-allauth: by email, verified email, no open sign-up (accounts
# come from activation codes and from the registrar).
ACCOUNT_ADAPTER = "registration.accounts.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
}
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"{DISTRICT_SHORT_NAME}: "
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "after_sign_in"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
# Staff sign in with a second factor (TOTP); secrets are encrypted at rest.
MFA_ADAPTER = "registration.accounts.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = DISTRICT_SHORT_NAME
# Accept the code of the previous and next 30 seconds too (clocks drift).
MFA_TOTP_TOLERANCE = 1

# Sessions end after 30 idle minutes; every request starts the 30 minutes again.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
# Sessions live in the database and cache a family's wizard answers: encrypted.
SESSION_SERIALIZER = "config.encryption.EncryptedJSONSerializer"
SESSION_EXPIRY_WARNING_SECONDS = 120

# Account activation by code (see registration/activation.py).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
ACTIVATION_CODE_DAYS = env.int("ACTIVATION_CODE_DAYS", default=90)
ACTIVATION_STUDENT_MIN_GRADE = env.str("ACTIVATION_STUDENT_MIN_GRADE", default="06")
ACTIVATION_RESEND_DAYS = env.int("ACTIVATION_RESEND_DAYS", default=14)
# Reminders to households that have not finished registering: at most one per
# household in this many days, however many sends the registrar starts.
REMINDER_MIN_DAYS = env.int("REMINDER_MIN_DAYS", default=3)
if REMINDER_MIN_DAYS < 1:
    raise ImproperlyConfigured(f"REMINDER_MIN_DAYS must be at least 1; it is {REMINDER_MIN_DAYS}.")
ACTIVATION_LOCKOUT_FAILURES = 5
ACTIVATION_LOCKOUT_MINUTES = 30
# Attempts per IP address: (count, seconds) windows.
ACTIVATION_IP_LIMITS = [(10, 60), (40, 3600)]
# Webhook deliveries per sending address: Stripe's bursts fit well under it, a flood
# of forged deliveries does not (429; Stripe retries whatever it was refused).
STRIPE_WEBHOOK_IP_LIMITS = [(env.int("STRIPE_WEBHOOK_PER_MINUTE", default=1200), 60)]
ACTIVATION_LETTER_CHUNK = env.int("ACTIVATION_LETTER_CHUNK", default=250)
# The printer's file is split into files of at most this many letters: joining a tagged
# PDF holds it whole in memory, about 0.4 MB a letter (2 GB at 5,000).
ACTIVATION_LETTERS_PER_FILE = env.int("ACTIVATION_LETTERS_PER_FILE", default=2000)
if ACTIVATION_LETTERS_PER_FILE < 1:
    raise ImproperlyConfigured(
        f"ACTIVATION_LETTERS_PER_FILE must be at least 1; it is {ACTIVATION_LETTERS_PER_FILE}."
    )
# Keys derived for separate purposes; set them explicitly to rotate SECRET_KEY alone.
ACTIVATION_CODE_KEY = env.str("ACTIVATION_CODE_KEY", default="") or f"activation:{SECRET_KEY}"
# Derived keys follow a SECRET_KEY rotation: the old key (in SECRET_KEY_FALLBACKS) still
# decrypts until `reencrypt_fields` has run. Production should set its own keys.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    f"fields:{key}" for key in [SECRET_KEY, *SECRET_KEY_FALLBACKS]
]

# Stripe: payments/stripe_gateway.py is the only module that talks to it. Without
# variables the keys are local test values (no real key is ever committed) and the
# webhook secret is generated once per install under var/.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="") or "sk_test_local_not_a_real_key"
# "stripe": real Stripe Checkout with that key. "local": no key, so payments go through
# the local TEST checkout page (/payments/test-checkout/…), which takes no money but
# sends signed events to the same webhook.
STRIPE_MODE = "stripe" if env.str("STRIPE_SECRET_KEY", default="") else "local"
if PRODUCTION and STRIPE_MODE == "local":
    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY must be set when DJANGO_ENV=production: without it families "
        "would pay on the local TEST checkout, which takes no real money."
    )
if not STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
    raise ImproperlyConfigured("STRIPE_SECRET_KEY must be a Stripe secret key (sk_… or rk_…).")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=20.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# Reconciliation of payouts (finance/services.py): a ledger payment or refund older
# than this many days that is in no payout is a mismatch; the daily run looks at the
# payouts of the last FINANCE_RECONCILE_DAYS days.
FINANCE_UNPAID_OUT_DAYS = env.int("FINANCE_UNPAID_OUT_DAYS", default=7)
FINANCE_RECONCILE_DAYS = env.int("FINANCE_RECONCILE_DAYS", default=35)
if FINANCE_UNPAID_OUT_DAYS < 1 or FINANCE_RECONCILE_DAYS < 1:
    raise ImproperlyConfigured(
        "FINANCE_UNPAID_OUT_DAYS and FINANCE_RECONCILE_DAYS must be at least 1."
    )


def _stripe_webhook_secret_local() -> str:
    """A secret of this install's own, kept in var/ (readable by its owner only)."""
    import os
    import secrets
    import tempfile

    path = VAR_DIR / "stripe-webhook-secret"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: processes starting together agree.
        descriptor, written = tempfile.mkstemp(dir=VAR_DIR)  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(f"whsec_{secrets.token_urlsafe(32)}\n")
            os.link(written, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(written)
    return path.read_text().strip()


STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
if PRODUCTION and env.str("STRIPE_SECRET_KEY", default="") and not STRIPE_WEBHOOK_SECRET:
    raise ImproperlyConfigured(
        "STRIPE_WEBHOOK_SECRET must be set with STRIPE_SECRET_KEY: it is the signing "
        "secret (whsec_…) of the webhook endpoint /payments/stripe/webhook/."
    )
if not STRIPE_WEBHOOK_SECRET and not PRODUCTION:
    STRIPE_WEBHOOK_SECRET = _stripe_webhook_secret_local()
if STRIPE_WEBHOOK_SECRET and not STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
    raise ImproperlyConfigured("STRIPE_WEBHOOK_SECRET must be a webhook signing secret (whsec_…).")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("es", _("Spanish")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Our own date and time formats where Django's do not suit (English times as "5:17 PM").
FORMAT_MODULE_PATH = "config.formats"
TIME_ZONE = env.str("TIME_ZONE", default="America/Los_Angeles")
USE_I18N = True
USE_TZ = True
PHONENUMBER_DEFAULT_REGION = env.str("PHONENUMBER_DEFAULT_REGION", default="US")
PHONENUMBER_DB_FORMAT = "E164"

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
if not PRODUCTION:
    # Outside production WhiteNoise serves straight from the source folders.
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    WHITENOISE_USE_FINDERS = True
    WHITENOISE_AUTOREFRESH = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Proofs of residence and signed confirmations: never served by URL, only through
# views that check who asks. Keep it off the web server's document root.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "private")
ADDRESS_PROOF_MAX_BYTES = env.int("ADDRESS_PROOF_MAX_BYTES", default=10 * 1024 * 1024)
ADDRESS_PROOF_MAX_FILES = env.int("ADDRESS_PROOF_MAX_FILES", default=5)

# Email: files under var/mail unless EMAIL_URL names a server (smtp+tls://user:pw@host:587).
# The file backend writes one file per message into EMAIL_FILE_PATH.
_email = env.email_url("EMAIL_URL", default="filemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default=f"{DISTRICT_SHORT_NAME} <no-reply@riverside.example.org>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery: a real broker when CELERY_BROKER_URL is set, otherwise tasks run in-process.
CELERY_TASK_ALWAYS_EAGER = not env.str("CELERY_BROKER_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# WeasyPrint's caches grow a little with every document: recycle worker processes.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=50)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
# A task a worker took but never acknowledged (the worker died) goes to another
# worker after this many seconds: longer than any task runs and than the longest
# retry delay (600 s), or a slow task would run twice.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
_LONGEST_TASK_WAIT = max(CELERY_TASK_TIME_LIMIT, 600)  # config.celery.ProductTask
if PRODUCTION and CELERY_VISIBILITY_TIMEOUT <= _LONGEST_TASK_WAIT:
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must be longer than CELERY_TASK_TIME_LIMIT and 600 s."
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
# Tasks are acknowledged late. When the broker connection drops, running tasks finish
# (rather than being cancelled between claiming an email and sending it, which would
# lose it); Redis gives the unacknowledged message again after the visibility
# timeout, and the claims make that second run send nothing twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The outbox (``outbox.services``): a task its web process could not publish after
# the commit is published by ``outbox_dispatch`` after this many seconds.
OUTBOX_GRACE_SECONDS = env.int("OUTBOX_GRACE_SECONDS", default=30)
CELERY_TIMEZONE = TIME_ZONE
# Retention (``python manage.py purge_expired``, daily in beat): proofs of residence
# after their address change closed, wizard drafts after their campaign closed,
# activation codes after they were spent or expired.
RETENTION_PROOF_DAYS = env.int("RETENTION_PROOF_DAYS", default=30)
RETENTION_DRAFT_DAYS = env.int("RETENTION_DRAFT_DAYS", default=90)
RETENTION_CODE_DAYS = env.int("RETENTION_CODE_DAYS", default=30)
# Outbox messages after they were dispatched, and the claims of emails sent once.
RETENTION_OUTBOX_DAYS = env.int("RETENTION_OUTBOX_DAYS", default=7)

# The staff dashboard is counted in the background; older counts are shown while a
# new count runs. 0: count on every view (small districts, tests).
DASHBOARD_MAX_AGE_SECONDS = env.int("DASHBOARD_MAX_AGE_SECONDS", default=60)
# District-wide summaries (data quality lists, activation rates) likewise: counted in
# the background, the last count shown while a new one runs. 0: count on every view.
SUMMARY_MAX_AGE_SECONDS = env.int("SUMMARY_MAX_AGE_SECONDS", default=300)

CELERY_BEAT_SCHEDULE = {
    "email-new-codes-to-households-nobody-activated": {
        "task": "registration.tasks.activation_resend_due_task",
        "schedule": 24 * 60 * 60,
    },
    "expire-activation-codes": {
        "task": "registration.tasks.activation_codes_expire_task",
        "schedule": 60 * 60,
    },
    "purge-what-is-kept-too-long": {
        "task": "workflow.tasks.purge_expired_task",
        "schedule": 24 * 60 * 60,
    },
    "count-the-staff-dashboard": {
        "task": "workflow.tasks.dashboards_count_task",
        "schedule": 5 * 60,
    },
    "requeue-unsent-reminders": {
        "task": "workflow.tasks.reminders_requeue_task",
        "schedule": 15 * 60,
    },
    "reconcile-stripe-payouts": {
        "task": "finance.tasks.payouts_reconcile_task",
        "schedule": 24 * 60 * 60,
    },
}

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# Security. Production, and any site whose SITE_URL is https, turns on everything
# `check --deploy` asks for; each setting can still be changed by its variable.
HTTPS = PRODUCTION or SITE_URL.startswith("https://")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# No script of ours reads the CSRF cookie: forms carry the token in a hidden field.
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
# A failed CSRF check is logged (who, where; never the token) and explained.
CSRF_FAILURE_VIEW = "config.security_log.csrf_failure"
X_FRAME_OPTIONS = "DENY"
# Where forms may send the browser besides this site (Stripe's hosted Checkout page).
CSP_FORM_ACTION_EXTRA = env.list("CSP_FORM_ACTION_EXTRA", default=["https://checkout.stripe.com"])
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
# Load balancers probe /healthz over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=HTTPS)
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
# TLS ends at the load balancer, which says so in X-Forwarded-Proto.
BEHIND_TLS_PROXY = env.bool("BEHIND_TLS_PROXY", default=HTTPS)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many load balancers in front of the web servers append to X-Forwarded-For: the
# visitor's address (rate limits, logs) is read from there instead of the socket.
# Set it only where they are: without one, the header is whatever the client wrote,
# and trusting it would let anyone choose the address their guesses are counted on.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=0)
# django-allauth's rate limits (sign-in, password reset) read the address the same way;
# otherwise every family behind the load balancer would share one address and one limit.
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_HOPS

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# How many households the demo district has when `make run` builds it.
DEMO_HOUSEHOLDS = env.int("DEMO_HOUSEHOLDS", default=240)
