// Reads one iCalendar feed the way Thunderbird does: Mozilla's ical.js parses it. Run by
// testbed/src/feed_readers.rs as `node read_feed.mjs URL` with CALPLANEBOT_ICALJS set to the
// file URL of ical.js's ES module (installed pinned under <workspace>/.node, which this script,
// living in the source tree, cannot resolve by package name).
//
// Prints one JSON object (the shape feed_readers.rs's `FeedJson` describes) on stdout. Values
// are what ical.js gives: TEXT unescaped, but properties ical.js has no type for (NAME,
// X-WR-CALNAME, COLOR, X-*) exactly as written, escapes included.
//
// Exit status: 0 read; 2 the HTTP GET failed or did not answer 200; 3 ical.js could not parse
// the body (its own message on stderr); 1 anything else.

const [url] = process.argv.slice(2);
const ICAL = (await import(process.env.CALPLANEBOT_ICALJS)).default;

function fail(code, message) {
  process.stderr.write(message + "\n");
  process.exit(code);
}

let response;
let body;
try {
  // Node's own fetch (Node 18 and later); it follows redirects, as calendar apps do.
  response = await fetch(url, { headers: { "User-Agent": "calplanebot-testbed ical.js" } });
  body = await response.text();
} catch (error) {
  fail(2, `GET ${url}: ${error.message}${error.cause ? ` (${error.cause.message})` : ""}`);
}
if (response.status !== 200) {
  fail(2, `GET ${url}: HTTP ${response.status}`);
}

// A DATE or DATE-TIME as "YYYY-MM-DD" (DATE) or RFC 3339 (DATE-TIME; "Z" when UTC).
function timeString(time) {
  if (time === null || time === undefined) return null;
  return time.toString();
}

function text(component, name) {
  const value = component.getFirstPropertyValue(name);
  if (value === null || value === undefined) return null;
  return value.toString();
}

let feed;
try {
  const calendar = new ICAL.Component(ICAL.parse(body));
  if (calendar.name !== "vcalendar") {
    throw new Error(`the top component is ${calendar.name}, not vcalendar`);
  }
  const events = calendar.getAllSubcomponents("vevent").map((component) => {
    const event = new ICAL.Event(component);
    const start = component.getFirstPropertyValue("dtstart");
    const end = component.getFirstPropertyValue("dtend");
    return {
      uid: event.uid ?? null,
      summary: event.summary ?? null,
      description: event.description ?? null,
      dtstart: timeString(start),
      dtstart_is_date: Boolean(start && start.isDate),
      dtend: timeString(end),
      dtend_is_date: Boolean(end && end.isDate),
      status: text(component, "status"),
      color: text(component, "color"),
      // CATEGORIES is multi-valued and may repeat: every value of every line, in order.
      categories: component
        .getAllProperties("categories")
        .flatMap((property) => property.getValues().map(String)),
      url: text(component, "url"),
      dtstamp: timeString(component.getFirstPropertyValue("dtstamp")),
      workspace: text(component, "x-calplanebot-workspace"),
      project: text(component, "x-calplanebot-project"),
    };
  });
  feed = {
    reader: "ical.js",
    http_status: response.status,
    content_type: response.headers.get("content-type"),
    calendar: {
      name: text(calendar, "name"),
      x_wr_calname: text(calendar, "x-wr-calname"),
      method: text(calendar, "method"),
      prodid: text(calendar, "prodid"),
      version: text(calendar, "version"),
      calscale: text(calendar, "calscale"),
      refresh_interval: text(calendar, "refresh-interval"),
      x_published_ttl: text(calendar, "x-published-ttl"),
      x_calplanebot_workspace: text(calendar, "x-calplanebot-workspace"),
    },
    events,
  };
} catch (error) {
  fail(3, `ical.js: ${error.name}: ${error.message}`);
}
process.stdout.write(JSON.stringify(feed) + "\n");
