"""Spanish: Django's formats, and a day with its weekday: "lunes, 4 de mayo de 2026",
"lunes, 4 de mayo de 2026 a las 16:30"."""

WEEKDAY_DATE_FORMAT = r"l, j \d\e F \d\e Y"
WEEKDAY_DATETIME_FORMAT = r"l, j \d\e F \d\e Y \a \l\a\s H:i"
