"""Activation letters per second against bare WeasyPrint.

Runs the real pipeline on a throwaway SQLite database: letters split into chunks,
each chunk sealed, queued and rendered by the (in-process) Celery task into storage,
then joined into one PDF. The baseline, measured in the same process, is WeasyPrint
rendering the same number of minimal one-line pages in chunks of the same size.
Memory is sampled after every chunk: the resident size must not grow with the run.

    python bench/letters.py [--letters N]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(count: int, workdir: Path) -> dict[str, object]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from weasyprint import HTML

    from documents import services as document_services
    from documents.letters import Letter
    from registration.activation import code_display, code_generate

    call_command("migrate", verbosity=0)
    settings.MEDIA_ROOT = str(workdir / "media")
    chunk = settings.ACTIVATION_LETTER_CHUNK
    letters = [
        Letter(
            kind="guardian" if n % 7 else "student",
            sourced_id=f"par-{n:06d}",
            name=("María José Núñez-Peña", "Siobhan O'Brien", "Thị Hoa Nguyễn")[n % 3],
            street1=f"{100 + n} Alameda de las Pulgas",
            street2="Apt 4" if n % 5 == 0 else "",
            city="Riverside",
            state="CA",
            postal_code=f"{95201 + n % 7}",
            language="es" if n % 4 == 0 else "en",
            code=code_display(code_generate()),
            expires_on=datetime.date(2027, 2, 26),
            children=["Sofía", "Mateo"][: 1 + n % 2],
            household=f"hh-{n:06d}",
        )
        for n in range(count)
    ]

    # Warm up both paths (fonts, stylesheets) so neither pays it in the timing.
    document_services.letters_pdf(letters[:2])
    HTML(string="<p>warm</p>").write_pdf()

    samples: list[float] = []
    real_render = document_services.letter_chunk_render

    def sampled_render(**kwargs: object) -> None:
        real_render(**kwargs)  # type: ignore[arg-type]
        samples.append(rss_mib())

    document_services.letter_chunk_render = sampled_render  # type: ignore[assignment]
    from documents import tasks

    tasks.letter_chunk_render = sampled_render  # type: ignore[assignment]

    started = time.perf_counter()
    run = document_services.letter_run_start(letters=letters)
    pages = document_services.letter_run_join(run=run, out=workdir / "letters.pdf")
    letters_seconds = time.perf_counter() - started
    assert pages == count, (pages, count)

    started = time.perf_counter()
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        body = "".join(
            f'<p style="page-break-after: always">Page {start + i + 1}</p>' for i in range(size)
        )
        HTML(string=f"<html><body>{body}</body></html>").write_pdf()
    baseline_seconds = time.perf_counter() - started

    return {
        "size": count,
        "value": round(count / letters_seconds, 1),
        "baseline": round(count / baseline_seconds, 1),
        "unit": "letters/s",
        "ratio": round(baseline_seconds / letters_seconds, 3),
        "chunk": chunk,
        "letters_seconds": round(letters_seconds, 2),
        "baseline_seconds": round(baseline_seconds, 2),
        "rss_after_first_chunk_mib": round(samples[0], 1),
        "rss_after_middle_chunk_mib": round(samples[len(samples) // 2], 1),
        "rss_after_last_chunk_mib": round(samples[-1], 1),
        "rss_per_chunk_mib": [round(sample) for sample in samples],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pdf_bytes": (workdir / "letters.pdf").stat().st_size,
    }


def run(*, quick: bool) -> list[dict[str, object]]:
    count = 300 if quick else 5_000
    with tempfile.TemporaryDirectory() as temporary:
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite:///{Path(temporary) / 'bench.sqlite3'}",
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        env.pop("CELERY_BROKER_URL", None)
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                "--letters",
                str(count),
                "--workdir",
                temporary,
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    figure = json.loads(result.stdout.strip().splitlines()[-1])
    return [{"name": "letters", "database": "", **figure}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--letters", type=int, default=5_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.measure:
        print(json.dumps(measure(args.letters, args.workdir)))
    else:
        for figure in run(quick=args.quick):
            print(json.dumps(figure))


if __name__ == "__main__":
    main()
