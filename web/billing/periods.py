"""Calendar arithmetic for billing periods: months that keep their day, clamped at the month's end."""

from __future__ import annotations

import calendar
import datetime


def add_months(moment: datetime.datetime, months: int) -> datetime.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_interval(moment: datetime.datetime, interval: str, count: int = 1) -> datetime.datetime:
    if interval == "year":
        return add_months(moment, 12 * count)
    if interval == "month":
        return add_months(moment, count)
    if interval == "week":
        return moment + datetime.timedelta(weeks=count)
    return moment + datetime.timedelta(days=count)


def month_index(start: datetime.datetime, moment: datetime.datetime) -> int:
    """Which month of a subscription `moment` falls in: 0 for the first, -1 before it starts."""
    if moment < start:
        return -1
    months = (moment.year - start.year) * 12 + moment.month - start.month
    while add_months(start, months) > moment:
        months -= 1
    return months


def from_timestamp(value: int | None) -> datetime.datetime | None:
    return datetime.datetime.fromtimestamp(value, datetime.UTC) if value is not None else None
