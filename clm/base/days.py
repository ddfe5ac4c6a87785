"""Day boundaries: every area counts days in UTC, from 00:00:00 to 23:59:59.999999."""

from datetime import UTC, date, datetime, time


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def day_end(day: date) -> datetime:
    return datetime.combine(day, time.max, UTC)
