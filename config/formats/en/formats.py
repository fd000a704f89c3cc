"""English: times as "5:17 PM", not Django's "5:17 p.m.", whose last full stop
doubles the one of a sentence that ends with a time ("booked for 5:17 p.m..")."""

TIME_FORMAT = "g:i A"  # 5:17 PM
DATETIME_FORMAT = "N j, Y, g:i A"  # Nov. 29, 2026, 5:17 PM
SHORT_DATETIME_FORMAT = "m/d/Y g:i A"  # 11/29/2026 5:17 PM
WEEKDAY_DATE_FORMAT = "l, N j, Y"  # Monday, May 4, 2026; Monday, Nov. 30, 2026
WEEKDAY_DATETIME_FORMAT = "l, N j, Y, g:i A"  # Monday, May 4, 2026, 4:30 PM
