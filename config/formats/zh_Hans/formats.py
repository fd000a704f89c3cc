"""Simplified Chinese: Django's formats, and a day with its weekday after the date,
as Chinese writes it (no comma between them)."""

WEEKDAY_DATE_FORMAT = "Y年n月j日 l"  # 2026年5月4日 星期一
WEEKDAY_DATETIME_FORMAT = "Y年n月j日 l H:i"  # 2026年5月4日 星期一 16:30
