"""The product's own date and time formats, per language (``FORMAT_MODULE_PATH``).

Each ``<locale>/formats.py`` holds only what differs from Django's formats for that
language; everything else comes from Django. ``WEEKDAY_DATE_FORMAT`` and
``WEEKDAY_DATETIME_FORMAT`` are the product's own names, for a day with its weekday
(a visit to the school office), and every language of ``settings.LANGUAGES`` has them.
"""
