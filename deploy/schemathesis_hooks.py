"""What the APIs' OpenAPI documents say in words, taught to schemathesis (loaded by
deploy/schemathesis.sh through SCHEMATHESIS_HOOKS), so that the data it calls valid is what a
correct client would send:

- the custom string formats: `npi` (ten digits whose last is the Luhn check digit over the 80840
  prefix) and `iana-time-zone`;
- the documented date ranges: dates from 1900 to today (a date of birth is not in the future; the
  other dates allow more, so this range suits them all), instants from an hour to 300 days ahead
  where schemathesis draws them from the format (a session is booked at most a year ahead), and a
  key's `expires_at` in the future (bodies with another are filtered out, as some phases draw
  instants without the format's strategy);
- the documented rules between fields: a coverage's `valid_to` and a referral's `expires_on` are not
  before `valid_from` and `issued_on`; a report's range runs from `from` to `to` (defaults: eleven
  months back to the end of this month) over at most 1,830 days, and `group_by` names each
  dimension once;
- `Idempotency-Key` names one request: a client never sends one key with two different bodies, so
  each call gets a fresh key.
"""

import datetime
import uuid

import schemathesis
from hypothesis import strategies as st


def npi(base: int) -> str:
    """The NPI whose first nine digits are `base`: Luhn over the digits with 24 added for the
    80840 prefix (the CMS NPI check digit)."""
    digits = f"{base:09d}"
    total = 24
    for position, character in enumerate(reversed(digits)):
        digit = int(character)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return digits + str((10 - total % 10) % 10)


assert npi(123456789) == "1234567893", "the check digit matches the CMS example"

TIME_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "UTC",
]

today = datetime.date.today()
now = datetime.datetime.now(datetime.timezone.utc)

schemathesis.openapi.format("npi", st.integers(0, 999_999_999).map(npi))
schemathesis.openapi.format("iana-time-zone", st.sampled_from(TIME_ZONES))
schemathesis.openapi.format(
    "date",
    st.dates(datetime.date(1900, 1, 1), today).map(datetime.date.isoformat),
)
schemathesis.openapi.format(
    "date-time",
    st.datetimes(
        (now + datetime.timedelta(hours=1)).replace(tzinfo=None),
        (now + datetime.timedelta(days=300)).replace(tzinfo=None),
    ).map(lambda instant: instant.isoformat(timespec="seconds") + "Z"),
)

ORDERED = [("valid_from", "valid_to"), ("issued_on", "expires_on")]


@schemathesis.hook
def filter_body(context, body):
    if not isinstance(body, dict):
        return True
    expires_at = body.get("expires_at")
    if isinstance(expires_at, str):
        try:
            instant = datetime.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            return True
        if instant.tzinfo is None or instant <= datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1):
            return False
    for first, last in ORDERED:
        start, end = body.get(first), body.get(last)
        if isinstance(start, str) and isinstance(end, str) and end < start:
            return False
    return True


MAX_RANGE_DAYS = 1830


def default_range():
    first = today.replace(day=1)
    month = first.month - 11
    year = first.year + (month - 1) // 12
    start = first.replace(year=year, month=(month - 1) % 12 + 1)
    following = (first.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return start, following - datetime.timedelta(days=1)


@schemathesis.hook
def filter_query(context, query):
    if not isinstance(query, dict):
        return True
    start, end = default_range()
    try:
        if isinstance(query.get("from"), str):
            start = datetime.date.fromisoformat(query["from"])
        if isinstance(query.get("to"), str):
            end = datetime.date.fromisoformat(query["to"])
    except ValueError:
        return True
    if end < start or (end - start).days > MAX_RANGE_DAYS:
        return False
    group_by = query.get("group_by")
    if isinstance(group_by, str):
        names = group_by.split(",")
        if len(names) != len(set(names)):
            return False
    return True


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key):
        headers["Idempotency-Key"] = str(uuid.uuid4())
