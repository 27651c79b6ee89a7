//! Plane's rich text (TipTap HTML) → plain text, for an event's DESCRIPTION.
//!
//! A small, linear, total converter rather than an HTML parser crate: the input is one known
//! editor's output, and whatever arrives (malformed, hostile, megabytes long) must degrade into
//! readable text without ever panicking.

/// Plain text of Plane's rich text (TipTap HTML), for DESCRIPTION.
///
/// Block elements and `<br>` become line breaks; list items become `- item`, `1. item` or
/// `[x] item`, nested lists indented two spaces per level; links keep their target as
/// `text (url)`; whitespace collapses as a browser would, except inside `<pre>`. Linear in the
/// input and total on any input: malformed HTML degrades, it never panics.
pub fn html_to_text(html: &str) -> String {
    // HTML §13.2.3.5 preprocessing: CRLF and lone CR are LF.
    let normalized;
    let html = if html.contains('\r') {
        normalized = html.replace("\r\n", "\n").replace('\r', "\n");
        normalized.as_str()
    } else {
        html
    };
    let bytes = html.as_bytes();
    let mut writer = TextWriter::default();
    let mut i = 0;
    let mut text_from = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => {
                writer.text(&html[text_from..i]);
                match decode_entity(&html[i..]) {
                    Some((c, len)) => {
                        writer.push_char(c);
                        i += len;
                    }
                    None => {
                        writer.push_char('&');
                        i += 1;
                    }
                }
                text_from = i;
            }
            b'<' => {
                writer.text(&html[text_from..i]);
                i = markup(html, i, &mut writer);
                text_from = i;
            }
            _ => i += 1,
        }
    }
    writer.text(&html[text_from..]);
    writer.finish()
}

/// Handles the markup starting at `html[at] == '<'`; returns where text resumes.
fn markup(html: &str, at: usize, writer: &mut TextWriter) -> usize {
    let bytes = html.as_bytes();
    let rest = &bytes[at..];
    if rest.starts_with(b"<!--") {
        return find(bytes, at + 4, b"-->").map_or(bytes.len(), |end| end + 3);
    }
    match rest.get(1) {
        // <!DOCTYPE …>, <?xml …?>
        Some(b'!' | b'?') => skip_past(bytes, at, b'>'),
        Some(b'/') => match rest.get(2) {
            Some(c) if c.is_ascii_alphabetic() => {
                let end = tag_name_end(bytes, at + 2);
                writer.end_tag(&html[at + 2..end].to_ascii_lowercase());
                skip_past(bytes, end, b'>')
            }
            // `</>` or `</ …>`: a bogus comment in HTML.
            _ => skip_past(bytes, at, b'>'),
        },
        Some(c) if c.is_ascii_alphabetic() => match parse_start_tag(html, at + 1) {
            // A tag cut off by the end of the input is dropped, as browsers do.
            None => bytes.len(),
            Some(tag) => {
                writer.start_tag(&tag);
                match tag.name.as_str() {
                    // Raw text whose content is never shown.
                    "script" | "style" => skip_raw_text(bytes, tag.end, tag.name.as_bytes()),
                    _ => tag.end,
                }
            }
        },
        // `<` not starting a tag is text.
        _ => {
            writer.push_char('<');
            at + 1
        }
    }
}

struct StartTag {
    name: String,
    attributes: Vec<(String, String)>,
    /// Just after the closing `>`.
    end: usize,
}

impl StartTag {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_html_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn tag_name_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| is_html_space(b) || b == b'/' || b == b'>')
        .map_or(bytes.len(), |off| from + off)
}

/// Parses `name attr="v" attr='v' attr=v attr>` from just after `<`; `None` when the input
/// ends inside the tag.
fn parse_start_tag(html: &str, from: usize) -> Option<StartTag> {
    let bytes = html.as_bytes();
    let mut i = tag_name_end(bytes, from);
    let name = html[from..i].to_ascii_lowercase();
    let mut attributes = Vec::new();
    loop {
        while i < bytes.len() && (is_html_space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        match bytes.get(i) {
            None => return None,
            Some(b'>') => {
                return Some(StartTag {
                    name,
                    attributes,
                    end: i + 1,
                });
            }
            Some(_) => {}
        }
        let start = i;
        // The first character is always part of the name (it may even be `=`).
        i += 1;
        while i < bytes.len() && !is_html_space(bytes[i]) && !matches!(bytes[i], b'/' | b'>' | b'=')
        {
            i += 1;
        }
        let attribute = html[start..i].to_ascii_lowercase();
        while i < bytes.len() && is_html_space(bytes[i]) {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && is_html_space(bytes[i]) {
                i += 1;
            }
            match bytes.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let close = bytes[i + 1..].iter().position(|&b| b == quote)? + i + 1;
                    value = decode_entities(&html[i + 1..close]);
                    i = close + 1;
                }
                _ => {
                    let start = i;
                    while i < bytes.len() && !is_html_space(bytes[i]) && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = decode_entities(&html[start..i]);
                }
            }
        }
        attributes.push((attribute, value));
    }
}

/// Index just after the first `byte` at or after `from`, or the end.
fn skip_past(bytes: &[u8], from: usize, byte: u8) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == byte)
        .map_or(bytes.len(), |off| from + off + 1)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|off| from + off)
}

/// Skips the content of `<script>`/`<style>` up to and including its end tag.
fn skip_raw_text(bytes: &[u8], from: usize, name: &[u8]) -> usize {
    let mut i = from;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'<') {
        let lt = i + off;
        let after = &bytes[lt + 1..];
        if after.first() == Some(&b'/')
            && after.len() > name.len()
            && after[1..=name.len()].eq_ignore_ascii_case(name)
        {
            return skip_past(bytes, lt, b'>');
        }
        i = lt + 1;
    }
    bytes.len()
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        match decode_entity(&rest[amp..]) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[amp + len..];
            }
            None => {
                out.push('&');
                rest = &rest[amp + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes the character reference at the start of `text` (which starts with `&`): the
/// character and the length consumed, or `None` when it is not one we know (then the `&` is
/// kept literally). The terminating `;` is required.
fn decode_entity(text: &str) -> Option<(char, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(1) == Some(&b'#') {
        let hex = matches!(bytes.get(2), Some(b'x' | b'X'));
        let start = if hex { 3 } else { 2 };
        let digits = bytes[start.min(bytes.len())..]
            .iter()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        let end = start + digits;
        if digits == 0 || bytes.get(end) != Some(&b';') {
            return None;
        }
        // HTML: zero, surrogates and values beyond Unicode become U+FFFD.
        let code = if digits > 8 {
            None
        } else {
            u32::from_str_radix(&text[start..end], if hex { 16 } else { 10 }).ok()
        };
        let c = code
            .filter(|&c| c != 0)
            .and_then(char::from_u32)
            .unwrap_or('\u{fffd}');
        return Some((c, end + 1));
    }
    let name_len = bytes[1..]
        .iter()
        .take(32)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let end = 1 + name_len;
    if name_len == 0 || bytes.get(end) != Some(&b';') {
        return None;
    }
    named_entity(&text[1..end]).map(|c| (c, end + 1))
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "laquo" => '«',
        "raquo" => '»',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "bull" => '•',
        "middot" => '·',
        "deg" => '°',
        "times" => '×',
        "divide" => '÷',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "larr" => '←',
        "rarr" => '→',
        "uarr" => '↑',
        "darr" => '↓',
        "harr" => '↔',
        "check" => '✓',
        _ => return None,
    })
}

/// Elements that shape the text; every other tag (`span`, `strong`, `em`, `code`,
/// `mention-component`, …) is transparent.
fn structural_tag(name: &str) -> Option<&'static str> {
    const TAGS: &[&str] = &[
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "li",
        "a",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "td",
        "th",
        "caption",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "figure",
        "figcaption",
        "dl",
        "dt",
        "dd",
        "details",
        "summary",
        "address",
    ];
    TAGS.iter().copied().find(|&tag| tag == name)
}

/// Open elements kept for rendering; deeper nesting is flattened, which bounds the work per
/// line (and so keeps the conversion linear).
const MAX_OPEN: usize = 64;

struct Open {
    tag: &'static str,
    kind: OpenKind,
    /// `TextWriter::progress` when the element opened, to tell an empty one.
    progress: u64,
}

enum OpenKind {
    /// A paragraph-like block; `<p></p>` and empty headings stand for a blank line.
    Block {
        blank_if_empty: bool,
    },
    List {
        ordered: bool,
        task: bool,
        next: u64,
    },
    Item {
        marker: String,
        marker_done: bool,
    },
    Quote,
    Pre,
    Anchor,
}

struct Link {
    href: String,
    text: String,
}

/// Builds the text line by line: a line's prefix (list markers, indentation, `> `) is written
/// when its first character arrives, so empty blocks leave no stray markers.
#[derive(Default)]
struct TextWriter {
    out: String,
    line: String,
    line_has_content: bool,
    /// Collapsed whitespace waiting for the next character on the same line.
    pending_space: bool,
    /// A blank line waiting for the next line (never leading, never trailing, never two).
    pending_blank: bool,
    open: Vec<Open>,
    pre_depth: usize,
    /// HTML drops a newline right after `<pre>`.
    skip_newline: bool,
    /// Grows with every character and line break written.
    progress: u64,
    link: Option<Link>,
}

impl TextWriter {
    fn text(&mut self, text: &str) {
        for c in text.chars() {
            self.push_char(c);
        }
    }

    fn push_char(&mut self, c: char) {
        if self.pre_depth > 0 {
            if std::mem::take(&mut self.skip_newline) && c == '\n' {
                return;
            }
            match c {
                '\n' => self.line_break(),
                '\t' => self.content('\t'),
                '\u{a0}' => self.content(' '),
                c if c < ' ' || c == '\u{7f}' => {}
                c => self.content(c),
            }
            return;
        }
        match c {
            // HTML's ASCII whitespace collapses to one space between words.
            ' ' | '\t' | '\n' | '\r' | '\u{c}' => {
                if self.line_has_content {
                    self.pending_space = true;
                }
            }
            // &nbsp; is a space that does not collapse.
            '\u{a0}' => self.content(' '),
            c if c < ' ' || c == '\u{7f}' => {}
            c => self.content(c),
        }
    }

    fn content(&mut self, c: char) {
        if !self.line_has_content {
            self.start_line();
        } else if self.pending_space {
            self.line.push(' ');
            if let Some(link) = &mut self.link {
                link.text.push(' ');
            }
        }
        self.pending_space = false;
        self.line.push(c);
        if let Some(link) = &mut self.link {
            link.text.push(c);
        }
        self.progress += 1;
    }

    fn start_line(&mut self) {
        for open in &mut self.open {
            match &mut open.kind {
                OpenKind::Quote => self.line.push_str("> "),
                OpenKind::Item {
                    marker,
                    marker_done,
                } => {
                    if *marker_done {
                        self.line.push_str("  ");
                    } else {
                        self.line.push_str(marker);
                        self.line.push(' ');
                        *marker_done = true;
                    }
                }
                OpenKind::Block { .. }
                | OpenKind::List { .. }
                | OpenKind::Pre
                | OpenKind::Anchor => {}
            }
        }
        self.line_has_content = true;
    }

    fn finish_line(&mut self) {
        let len = self.line.trim_end().len();
        self.line.truncate(len);
        if self.line.is_empty() {
            self.blank_line();
        } else {
            if !self.out.is_empty() {
                self.out.push('\n');
                if self.pending_blank {
                    self.out.push('\n');
                }
            }
            self.pending_blank = false;
            self.out.push_str(&self.line);
        }
        self.line.clear();
        self.line_has_content = false;
        self.pending_space = false;
        self.progress += 1;
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() {
            self.pending_blank = true;
        }
        self.progress += 1;
    }

    /// `<br>`, or a newline inside `<pre>`.
    fn line_break(&mut self) {
        if self.line_has_content {
            self.finish_line();
        } else {
            self.blank_line();
        }
    }

    /// The edge of a block: the current line ends.
    fn boundary(&mut self) {
        if self.line_has_content {
            self.finish_line();
        }
    }

    fn push_open(&mut self, tag: &'static str, kind: OpenKind) -> bool {
        if self.open.len() >= MAX_OPEN {
            return false;
        }
        self.open.push(Open {
            tag,
            kind,
            progress: self.progress,
        });
        true
    }

    fn start_tag(&mut self, tag: &StartTag) {
        let name = tag.name.as_str();
        match name {
            "br" => {
                self.line_break();
                return;
            }
            "img" => {
                if let Some(alt) = tag.attribute("alt") {
                    self.push_char(' ');
                    self.text(alt);
                    self.push_char(' ');
                }
                return;
            }
            _ => {}
        }
        let Some(element) = structural_tag(name).or((name == "hr").then_some("hr")) else {
            return;
        };
        if element == "a" {
            // Links do not nest: a new one closes the open one.
            self.end_tag("a");
            // Line breaks or control characters in a URL would break the description's lines.
            let href = tag
                .attribute("href")
                .map(|h| h.chars().filter(|c| !c.is_control()).collect::<String>());
            let href = href.filter(|h| {
                let h = h.trim().to_ascii_lowercase();
                h.starts_with("http://") || h.starts_with("https://") || h.starts_with("mailto:")
            });
            if self.push_open("a", OpenKind::Anchor) {
                self.link = href.map(|href| Link {
                    href: href.trim().to_owned(),
                    text: String::new(),
                });
            }
            return;
        }
        // A block start closes an open paragraph (HTML: "close a p element").
        if self.open.last().is_some_and(|open| open.tag == "p") {
            self.close_top();
        }
        if element == "li" {
            // An open item of the same list ends where the next one starts.
            let innermost = self.open.iter().rposition(|open| {
                matches!(open.kind, OpenKind::Item { .. } | OpenKind::List { .. })
            });
            if let Some(index) = innermost
                && matches!(self.open[index].kind, OpenKind::Item { .. })
            {
                self.close_down_to(index);
            }
        }
        self.boundary();
        let kind = match element {
            "hr" => return,
            "ul" | "ol" => OpenKind::List {
                ordered: element == "ol",
                task: tag
                    .attribute("data-type")
                    .is_some_and(|t| t.eq_ignore_ascii_case("taskList")),
                next: tag
                    .attribute("start")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(1),
            },
            "li" => OpenKind::Item {
                marker: self.item_marker(tag),
                marker_done: false,
            },
            "blockquote" => OpenKind::Quote,
            "pre" => OpenKind::Pre,
            "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => OpenKind::Block {
                blank_if_empty: true,
            },
            _ => OpenKind::Block {
                blank_if_empty: false,
            },
        };
        let is_pre = matches!(kind, OpenKind::Pre);
        if self.push_open(element, kind) && is_pre {
            self.pre_depth += 1;
            self.skip_newline = true;
        }
    }

    /// `- `, `N. ` or a task box `[x] ` / `[ ] ` for a new list item.
    fn item_marker(&mut self, tag: &StartTag) -> String {
        let checked = tag.attribute("data-checked");
        let list = self
            .open
            .iter_mut()
            .rev()
            .find_map(|open| match &mut open.kind {
                OpenKind::List {
                    ordered,
                    task,
                    next,
                } => Some((*ordered, *task, next)),
                _ => None,
            });
        let task_item = checked.is_some()
            || tag
                .attribute("data-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("taskItem"));
        if task_item || matches!(list, Some((_, true, _))) {
            return if checked.is_some_and(|c| c.eq_ignore_ascii_case("true")) {
                "[x]".to_owned()
            } else {
                "[ ]".to_owned()
            };
        }
        match list {
            Some((true, _, next)) => {
                let number = *next;
                *next = next.saturating_add(1);
                format!("{number}.")
            }
            Some((false, _, _)) | None => "-".to_owned(),
        }
    }

    fn end_tag(&mut self, name: &str) {
        // HTML treats `</br>` as `<br>`.
        if name == "br" {
            self.line_break();
            return;
        }
        let Some(element) = structural_tag(name) else {
            return;
        };
        if let Some(index) = self.open.iter().rposition(|open| open.tag == element) {
            self.close_down_to(index);
        }
    }

    /// Closes the open elements from the innermost down to `index`, inclusive.
    fn close_down_to(&mut self, index: usize) {
        while self.open.len() > index {
            self.close_top();
        }
    }

    fn close_top(&mut self) {
        // An item that never got content still shows its marker.
        if let Some(Open {
            kind: OpenKind::Item {
                marker_done: false, ..
            },
            ..
        }) = self.open.last()
        {
            self.start_line();
            self.finish_line();
        }
        let Some(open) = self.open.pop() else {
            return;
        };
        match open.kind {
            OpenKind::Block { blank_if_empty } => {
                if self.line_has_content {
                    self.finish_line();
                } else if blank_if_empty
                    && self.progress == open.progress
                    && !self.open.iter().any(|o| {
                        matches!(
                            o.kind,
                            OpenKind::Item {
                                marker_done: false,
                                ..
                            }
                        )
                    })
                {
                    self.blank_line();
                }
            }
            OpenKind::List { .. } | OpenKind::Item { .. } | OpenKind::Quote => self.boundary(),
            OpenKind::Pre => {
                self.boundary();
                self.pre_depth -= 1;
                self.skip_newline = false;
            }
            OpenKind::Anchor => {
                if let Some(link) = self.link.take() {
                    let text = link.text.trim();
                    let bare = link.href.strip_prefix("mailto:").unwrap_or(&link.href);
                    if text.is_empty() {
                        self.text(&link.href);
                    } else if text != link.href && text != bare {
                        self.push_char(' ');
                        self.content('(');
                        self.text(&link.href);
                        self.content(')');
                    }
                }
            }
        }
    }

    fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.close_top();
        }
        self.boundary();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn html_paragraphs_breaks_and_headings() {
        assert_eq!(html_to_text("<p></p>"), "");
        assert_eq!(html_to_text(""), "");
        assert_eq!(html_to_text("<p>a</p><p>b</p>"), "a\nb");
        assert_eq!(
            html_to_text("<h1>Title</h1><p>a<br>b<br/>c</p>"),
            "Title\na\nb\nc"
        );
        assert_eq!(
            html_to_text("<p>a</p><p></p><p></p><p></p><p>b</p>"),
            "a\n\nb"
        );
        assert_eq!(html_to_text("<p></p><p>a</p><p></p>"), "a");
        assert_eq!(html_to_text("a<br><br><br>b<br>"), "a\n\nb");
        assert_eq!(html_to_text("<p>a<br></p><p>b</p>"), "a\nb");
        assert_eq!(html_to_text("<p>a</p><hr><p>b</p>"), "a\nb");
        assert_eq!(
            html_to_text(
                "<table><tbody><tr><th><p>A</p></th><td><p>1</p></td></tr></tbody></table>"
            ),
            "A\n1"
        );
        assert_eq!(
            html_to_text("<div>x</div>y<blockquote><p>q</p><p>r</p></blockquote>"),
            "x\ny\n> q\n> r"
        );
    }

    #[test]
    fn html_whitespace_collapses_except_in_pre() {
        assert_eq!(
            html_to_text("<p>  a \n\t b  <strong> c </strong>d </p>\n\n<p>\n e</p>"),
            "a b c d\ne"
        );
        assert_eq!(
            html_to_text(
                "<pre><code class=\"language-rust\">fn main() {\n    let  x = 1;\n\n}</code></pre><p>after</p>"
            ),
            "fn main() {\n    let  x = 1;\n\n}\nafter"
        );
        assert_eq!(html_to_text("<pre>\nfirst</pre>"), "first");
        assert_eq!(html_to_text("a&nbsp;&nbsp;b&nbsp;"), "a  b");
    }

    #[test]
    fn html_lists() {
        assert_eq!(
            html_to_text("<ul><li><p>one</p></li><li><p>two</p></li></ul>"),
            "- one\n- two"
        );
        assert_eq!(
            html_to_text(
                "<ol><li><p>one</p></li><li><p>two</p></li></ol><ol start=\"7\"><li>seven</li></ol>"
            ),
            "1. one\n2. two\n7. seven"
        );
        assert_eq!(
            html_to_text(
                "<ul><li><p>a</p><ul><li><p>b</p><ol><li><p>c</p></li><li><p>d</p></li></ol></li></ul></li><li><p>e</p></li></ul>"
            ),
            "- a\n  - b\n    1. c\n    2. d\n- e"
        );
        assert_eq!(
            html_to_text("<ul><li>a<li>b</ul><p>after</p>"),
            "- a\n- b\nafter"
        );
        assert_eq!(
            html_to_text("<ul><li><p>first</p><p>second</p></li></ul>"),
            "- first\n  second"
        );
        assert_eq!(html_to_text("<ul><li></li><li><p></p></li></ul>"), "-\n-");
    }

    #[test]
    fn html_task_lists() {
        let html = "<ul data-type=\"taskList\">\
            <li data-checked=\"true\" data-type=\"taskItem\"><label><input type=\"checkbox\" checked=\"checked\"><span></span></label><div><p>done</p></div></li>\
            <li data-checked=\"false\" data-type=\"taskItem\"><label><input type=\"checkbox\"><span></span></label><div><p>todo</p>\
              <ul data-type=\"taskList\"><li data-checked=\"true\" data-type=\"taskItem\"><label><input type=\"checkbox\"></label><div><p>sub</p></div></li></ul>\
            </div></li></ul>";
        assert_eq!(html_to_text(html), "[x] done\n[ ] todo\n  [x] sub");
    }

    #[test]
    fn html_entities() {
        assert_eq!(
            html_to_text(
                "<p>a &amp; b &lt;c&gt; &quot;q&quot; &apos;s&apos; &mdash; &ndash; &hellip; &copy;</p>"
            ),
            "a & b <c> \"q\" 's' — – … ©"
        );
        assert_eq!(
            html_to_text("&#65;&#x42;&#X43;&#128512;&#0;&#xD800;&#99999999999;"),
            "ABC😀\u{fffd}\u{fffd}\u{fffd}"
        );
        assert_eq!(
            html_to_text("&unknown; &amp &#; &#x; &#65 AT&T & x &"),
            "&unknown; &amp &#; &#x; &#65 AT&T & x &"
        );
        assert_eq!(
            html_to_text("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "<script>alert(1)</script>"
        );
        assert_eq!(html_to_text("a&#10;&#10;b"), "a b");
    }

    #[test]
    fn html_inline_elements_links_images_mentions() {
        assert_eq!(
            html_to_text(
                "<p>see <a href=\"https://example.com/x\" target=\"_blank\">the docs</a>.</p>"
            ),
            "see the docs (https://example.com/x)."
        );
        assert_eq!(
            html_to_text(
                "<p><a href=\"https://example.com\">https://example.com</a> <a href=\"mailto:a@b.c\">a@b.c</a> <a href=\"javascript:x()\">js</a></p>"
            ),
            "https://example.com a@b.c js"
        );
        assert_eq!(
            html_to_text("<p><a href='https://e.x/'></a></p>"),
            "https://e.x/"
        );
        assert_eq!(
            html_to_text(
                "<p>Ask <mention-component entity_identifier=\"u1\" entity_name=\"user_mention\"></mention-component> <span style=\"color:red\">now</span><img src=\"x.png\" alt=\"chart\"></p>"
            ),
            "Ask now chart"
        );
    }

    #[test]
    fn html_drops_scripts_styles_comments() {
        assert_eq!(
            html_to_text(
                "<!DOCTYPE html><?xml x?><style>p{}</style><p>a<!-- <p>hidden</p> -->b</p><script type=\"x\">if (a < b) {}</SCRIPT >c"
            ),
            "ab\nc"
        );
        assert_eq!(html_to_text("a<script>never closed"), "a");
        assert_eq!(html_to_text("a<!-- never closed"), "a");
    }

    #[test]
    fn html_malformed_never_panics() {
        assert_eq!(html_to_text("<p>unclosed <strong>bold"), "unclosed bold");
        assert_eq!(
            html_to_text("1 < 2 and 3 <= 4, a<>b, </ >c"),
            "1 < 2 and 3 <= 4, a<>b, c"
        );
        assert_eq!(html_to_text("text <p class=\"trunc"), "text");
        assert_eq!(html_to_text("text <a href"), "text");
        assert_eq!(html_to_text("</li></ul></p>x</div>"), "x");
        assert_eq!(html_to_text("<li>orphan</li>"), "- orphan");
        assert_eq!(html_to_text("<p =x a=b c='d' e>é</p>"), "é");
        for html in [
            "<",
            "&",
            "&#",
            "&#x",
            "<!",
            "<!-",
            "</",
            "<a",
            "<a ",
            "<a b=",
            "<a b='",
            "<p/>",
            "<pre>",
            "<ul><li><ol>",
            "é<",
            "<é>",
            "<a\u{e9}=1>x",
            "\r\n\r",
        ] {
            let _ = html_to_text(html);
        }
    }

    #[test]
    fn html_to_text_is_linear_on_hostile_input() {
        let mib = 1 << 20;
        let inputs = [
            "<ul><li>x".repeat(mib / 9),
            "<p>".repeat(mib / 3),
            "<span>".repeat(mib / 12) + &"</div>".repeat(mib / 12),
            "&#".repeat(mib / 2),
            "&amp".repeat(mib / 4),
            "<a href=\"".to_owned() + &"x".repeat(mib),
            "<!-".repeat(mib / 3),
            "<pre>".to_owned() + &"\n".repeat(mib),
            "a ".repeat(mib / 2),
            "<li>".repeat(mib / 4),
        ];
        let started = Instant::now();
        for html in &inputs {
            let text = html_to_text(html);
            assert!(!text.contains("\n\n\n"));
            assert!(!text.starts_with('\n') && !text.ends_with('\n'));
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
