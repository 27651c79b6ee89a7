"""Reads one iCalendar feed with Python `icalendar`, the parser of many calendar tools.

Run by testbed/src/feed_readers.rs as `<workspace>/.venv/bin/python read_feed.py URL`. Prints
one JSON object (the shape feed_readers.rs's `FeedJson` describes) on stdout. Values are what
icalendar gives: TEXT unescaped, but properties icalendar has no type for (NAME, X-WR-CALNAME,
COLOR, X-*) exactly as written, escapes included.

icalendar itself is lenient: a line it cannot parse is dropped and a bad value becomes a
`vBroken`, each noted in the component's `errors`. This reader is strict: any such note fails
the read, with icalendar's own message.

Exit status: 0 read; 2 the HTTP GET failed or did not answer 200; 3 icalendar could not parse
the body (its own message on stderr); 1 anything else.
"""

import datetime
import json
import sys
import urllib.error
import urllib.request

import icalendar


def fail(code, message):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def fetch(url):
    # No proxies: the feed server is on loopback, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        url, headers={"User-Agent": "calplanebot-testbed icalendar"}
    )
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        fail(2, f"GET {url}: HTTP {error.code}")
    except (urllib.error.URLError, OSError) as error:
        fail(2, f"GET {url}: {error}")


def time_string(prop):
    """A DATE as YYYY-MM-DD, a DATE-TIME as RFC 3339 ("Z" when UTC), and whether it is a DATE."""
    if prop is None:
        return None, False
    value = prop.dt
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() == datetime.timedelta(0):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ"), False
        return value.isoformat(), False
    if isinstance(value, datetime.date):
        return value.isoformat(), True
    return str(value), False


def first(component, name):
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def text(component, name):
    value = first(component, name)
    if value is None:
        return None
    if isinstance(getattr(value, "dt", None), datetime.timedelta):
        # REFRESH-INTERVAL;VALUE=DURATION: back to its ISO 8601 form.
        return icalendar.vDuration(value.dt).to_ical().decode()
    return str(value)


def categories(component):
    value = component.get("categories")
    if value is None:
        return []
    lines = value if isinstance(value, list) else [value]
    return [str(category) for line in lines for category in line.cats]


def event_json(event):
    dtstart, dtstart_is_date = time_string(first(event, "dtstart"))
    dtend, dtend_is_date = time_string(first(event, "dtend"))
    dtstamp, _ = time_string(first(event, "dtstamp"))
    return {
        "uid": text(event, "uid"),
        "summary": text(event, "summary"),
        "description": text(event, "description"),
        "dtstart": dtstart,
        "dtstart_is_date": dtstart_is_date,
        "dtend": dtend,
        "dtend_is_date": dtend_is_date,
        "status": text(event, "status"),
        "color": text(event, "color"),
        "categories": categories(event),
        "url": text(event, "url"),
        "dtstamp": dtstamp,
        "workspace": text(event, "x-calplanebot-workspace"),
        "project": text(event, "x-calplanebot-project"),
    }


def main():
    url = sys.argv[1]
    status, content_type, body = fetch(url)
    if status != 200:
        fail(2, f"GET {url}: HTTP {status}")
    try:
        calendar = icalendar.Calendar.from_ical(body)
        errors = [
            f"{component.name}: {prop or '(line)'}: {message}"
            for component in calendar.walk()
            for prop, message in component.errors
        ]
        if errors:
            raise ValueError("; ".join(errors))
        feed = {
            "reader": "icalendar",
            "http_status": status,
            "content_type": content_type,
            "calendar": {
                "name": text(calendar, "name"),
                "x_wr_calname": text(calendar, "x-wr-calname"),
                "method": text(calendar, "method"),
                "prodid": text(calendar, "prodid"),
                "version": text(calendar, "version"),
                "calscale": text(calendar, "calscale"),
                "refresh_interval": text(calendar, "refresh-interval"),
                "x_published_ttl": text(calendar, "x-published-ttl"),
                "x_calplanebot_workspace": text(calendar, "x-calplanebot-workspace"),
            },
            "events": [event_json(event) for event in calendar.walk("VEVENT")],
        }
    except Exception as error:  # icalendar raises ValueError and its own kinds
        fail(3, f"icalendar: {type(error).__name__}: {error}")
    # ASCII with \u escapes: independent of the locale stdout is opened with.
    json.dump(feed, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
