//! RFC 5545 content lines as a small component tree, owned here so that an update keeps what
//! calendar users added byte-faithful.
//!
//! We deliberately do not use the `icalendar` crate: its parser drops the DQUOTEs around
//! parameter values when it re-serializes (`X-TITLE="a:b"` → `X-TITLE=a:b`), folds by char
//! index and does not escape `\r`. Here every parsed [`Property`] keeps its original unfolded
//! line, so an unchanged property is written back exactly (only refolded), and new properties
//! are built from already escaped values with [`Property::new`].
//!
//! The layer is linear in the size of its input: a 1 MiB DESCRIPTION parses and serializes in
//! one pass, and component nesting is capped at [`MAX_DEPTH`] so malicious input cannot make
//! the (depth-bounded) recursion of the serializer or of `Drop` deep.

use std::fmt::Write as _;

/// Deepest BEGIN/END nesting accepted by [`parse`] (real objects nest three deep:
/// VCALENDAR → VEVENT → VALARM).
pub const MAX_DEPTH: usize = 32;

/// RFC 5545 §3.1: "Lines of text SHOULD NOT be longer than 75 octets, excluding the line break."
const FOLD_OCTETS: usize = 75;

/// Why a text is not an iCalendar object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcsError {
    #[error("line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("line {line}: END:{found} does not close BEGIN:{open}")]
    MismatchedEnd {
        line: usize,
        open: String,
        found: String,
    },
    #[error("BEGIN:{0} is never closed")]
    Unclosed(String),
    #[error("no BEGIN line")]
    Empty,
    #[error("components nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("line {line}: not UTF-8")]
    NotUtf8 { line: usize },
}

/// One parameter of a content line: `NAME=value` or `NAME=v1,"v2"` (RFC 5545 §3.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    name: String,
    values: Vec<String>,
}

impl Param {
    /// The parameter name, uppercased.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values without their DQUOTEs.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// One content line: `name *(";" param) ":" value` (RFC 5545 §3.1).
///
/// Immutable: the original line is what gets written back, so a changed property is a new
/// [`Property`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// Uppercased, for matching (names are case-insensitive, RFC 5545 §2).
    name: String,
    params: Vec<Param>,
    /// Byte offset of the value in `line`.
    value_start: usize,
    /// The unfolded content line exactly as read (or as built by [`Property::new`]).
    line: String,
}

impl Property {
    /// A new property. `value` must already be in its on-the-wire form (e.g. escaped with
    /// [`escape_text`] for TEXT). Defensively, characters that cannot occur in a content line
    /// are dropped: controls other than TAB from the value (RFC 5545 §3.1, they would break the
    /// line), anything but letters, digits, `-` and `_` from names, and DQUOTE and controls from
    /// parameter values, which are quoted when they contain `:`, `;` or `,` (§3.2).
    pub fn new(name: &str, params: &[(&str, &str)], value: &str) -> Property {
        let name = clean_name(name);
        let mut line = name.clone();
        let mut parsed = Vec::with_capacity(params.len());
        for (pname, pvalue) in params {
            let pname = clean_name(pname);
            let pvalue: String = pvalue
                .chars()
                .filter(|&c| c != '"' && !is_control(c))
                .collect();
            line.push(';');
            line.push_str(&pname);
            line.push('=');
            if pvalue.contains([':', ';', ',']) {
                let _ = write!(line, "\"{pvalue}\"");
            } else {
                line.push_str(&pvalue);
            }
            parsed.push(Param {
                name: pname,
                values: vec![pvalue],
            });
        }
        line.push(':');
        let value_start = line.len();
        line.extend(value.chars().filter(|&c| c == '\t' || !is_control(c)));
        Property {
            name,
            params: parsed,
            value_start,
            line,
        }
    }

    /// Splits one unfolded content line (RFC 5545 §3.1, §3.2).
    pub fn parse_line(line: String) -> Result<Property, String> {
        let bytes = line.as_bytes();
        let mut pos = bytes
            .iter()
            .position(|&b| b == b';' || b == b':')
            .ok_or("no ':' in the content line")?;
        let name = &line[..pos];
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(format!("invalid property name {name:?}"));
        }
        let name = name.to_ascii_uppercase();
        let mut params = Vec::new();
        while bytes[pos] == b';' {
            pos += 1;
            let eq = bytes[pos..]
                .iter()
                .position(|&b| b == b'=' || b == b':' || b == b';')
                .map(|off| pos + off)
                .filter(|&i| bytes[i] == b'=')
                .ok_or("parameter without '='")?;
            let pname = &line[pos..eq];
            if pname.is_empty() || !pname.bytes().all(is_name_byte) {
                return Err(format!("invalid parameter name {pname:?}"));
            }
            pos = eq + 1;
            let mut values = Vec::new();
            loop {
                if bytes.get(pos) == Some(&b'"') {
                    // quoted-string = DQUOTE *QSAFE-CHAR DQUOTE: may hold ':' ';' ','.
                    let close = bytes[pos + 1..]
                        .iter()
                        .position(|&b| b == b'"')
                        .map(|off| pos + 1 + off)
                        .ok_or("unterminated quoted parameter value")?;
                    values.push(line[pos + 1..close].to_owned());
                    pos = close + 1;
                } else {
                    let end = bytes[pos..]
                        .iter()
                        .position(|&b| matches!(b, b',' | b';' | b':'))
                        .map_or(bytes.len(), |off| pos + off);
                    values.push(line[pos..end].to_owned());
                    pos = end;
                }
                match bytes.get(pos) {
                    Some(b',') => pos += 1,
                    Some(b';' | b':') => break,
                    Some(_) => return Err("unexpected character in a parameter value".into()),
                    None => return Err("no ':' after the parameters".into()),
                }
            }
            params.push(Param {
                name: pname.to_ascii_uppercase(),
                values,
            });
        }
        Ok(Property {
            name,
            params,
            value_start: pos + 1,
            line,
        })
    }

    /// The property name, uppercased.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The first value of the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.values.first())
            .map(String::as_str)
    }

    /// The raw value: everything after the first `:` outside quotes, still escaped.
    pub fn value(&self) -> &str {
        &self.line[self.value_start..]
    }

    /// The whole unfolded content line, as read or built.
    pub fn line(&self) -> &str {
        &self.line
    }
}

/// A component (`BEGIN:NAME` … `END:NAME`, RFC 5545 §3.4, §3.6) with its properties and
/// subcomponents. Serialization writes the properties first, then the subcomponents, which is
/// the order of the RFC 5545 grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    /// Uppercased.
    pub name: String,
    pub properties: Vec<Property>,
    pub children: Vec<Component>,
}

impl Component {
    pub fn new(name: &str) -> Component {
        Component {
            name: clean_name(name),
            properties: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The first property called `name` (case-insensitive).
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Every property called `name` (case-insensitive), in order.
    pub fn properties_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Property> {
        self.properties
            .iter()
            .filter(move |p| p.name.eq_ignore_ascii_case(name))
    }

    /// The subcomponents called `name` (case-insensitive), in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Component> {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }

    /// Serializes with CRLF line ends, every line folded at 75 octets (RFC 5545 §3.1).
    pub fn to_ics(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    fn write_to(&self, out: &mut String) {
        push_folded(out, &format!("BEGIN:{}", self.name));
        for property in &self.properties {
            push_folded(out, &property.line);
        }
        // Recursion depth is the nesting depth, which `parse` caps at MAX_DEPTH.
        for child in &self.children {
            child.write_to(out);
        }
        push_folded(out, &format!("END:{}", self.name));
    }
}

/// Parses an iCalendar object (one top-level component, usually VCALENDAR).
pub fn parse(text: &str) -> Result<Component, IcsError> {
    parse_bytes(text.as_bytes())
}

/// Like [`parse`], for bytes: RFC 5545 §3.1 warns that simple writers fold in the middle of a
/// UTF-8 sequence, so lines are unfolded as octets and only then decoded.
pub fn parse_bytes(bytes: &[u8]) -> Result<Component, IcsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut builder = TreeBuilder::default();
    // The current logical line and the number of its first physical line.
    let mut logical: Option<(Vec<u8>, usize)> = None;
    for (index, physical) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        // CRLF or LF line ends.
        let physical = physical.strip_suffix(b"\r").unwrap_or(physical);
        if physical.is_empty() {
            continue;
        }
        // §3.1 unfolding: a line break followed by one space or tab continues the line.
        if matches!(physical[0], b' ' | b'\t') {
            match logical.as_mut() {
                Some((buffer, _)) => buffer.extend_from_slice(&physical[1..]),
                None => {
                    return Err(IcsError::Syntax {
                        line: number,
                        reason: "continuation line without a line to continue".into(),
                    });
                }
            }
            continue;
        }
        if let Some((buffer, start)) = logical.take() {
            builder.line(buffer, start)?;
        }
        logical = Some((physical.to_vec(), number));
    }
    if let Some((buffer, start)) = logical {
        builder.line(buffer, start)?;
    }
    builder.finish()
}

/// Turns content lines into the BEGIN/END tree, with an explicit stack (no recursion).
#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Component>,
    root: Option<Component>,
}

impl TreeBuilder {
    fn line(&mut self, bytes: Vec<u8>, number: usize) -> Result<(), IcsError> {
        let text = String::from_utf8(bytes).map_err(|_| IcsError::NotUtf8 { line: number })?;
        let syntax = |reason: String| IcsError::Syntax {
            line: number,
            reason,
        };
        let property = Property::parse_line(text).map_err(syntax)?;
        if self.root.is_some() {
            return Err(syntax("content after the end of the object".into()));
        }
        match property.name() {
            "BEGIN" => {
                let name = property.value().trim();
                if name.is_empty() || !name.bytes().all(is_name_byte) {
                    return Err(syntax(format!("invalid component name {name:?}")));
                }
                if self.stack.len() >= MAX_DEPTH {
                    return Err(IcsError::TooDeep);
                }
                self.stack.push(Component::new(name));
            }
            "END" => {
                let found = property.value().trim().to_ascii_uppercase();
                let Some(component) = self.stack.pop() else {
                    return Err(syntax(format!("END:{found} without BEGIN")));
                };
                if component.name != found {
                    return Err(IcsError::MismatchedEnd {
                        line: number,
                        open: component.name,
                        found,
                    });
                }
                match self.stack.last_mut() {
                    Some(parent) => parent.children.push(component),
                    None => self.root = Some(component),
                }
            }
            _ => match self.stack.last_mut() {
                Some(component) => component.properties.push(property),
                None => return Err(syntax("property outside any component".into())),
            },
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Component, IcsError> {
        if let Some(open) = self.stack.pop() {
            return Err(IcsError::Unclosed(open.name));
        }
        self.root.ok_or(IcsError::Empty)
    }
}

/// Appends `line` folded at 75 octets (the continuation's leading space counts) and CRLF,
/// never splitting a UTF-8 character (RFC 5545 §3.1).
fn push_folded(out: &mut String, line: &str) {
    let mut rest = line;
    let mut limit = FOLD_OCTETS;
    while rest.len() > limit {
        let mut cut = limit;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        limit = FOLD_OCTETS - 1;
    }
    out.push_str(rest);
    out.push_str("\r\n");
}

/// CONTROL of RFC 5545 §3.1 plus TAB and LF (callers decide about those two).
fn is_control(c: char) -> bool {
    c < ' ' || c == '\u{7f}'
}

/// iana-token / x-name characters (RFC 5545 §3.1: letters, digits, `-`), plus `_`, which some
/// producers put into X- names: refusing it would make a whole stored event unreadable.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn clean_name(name: &str) -> String {
    name.bytes()
        .filter(|&b| is_name_byte(b))
        .map(|b| char::from(b.to_ascii_uppercase()))
        .collect()
}

/// Text as calplanebot stores it: CRLF and lone CR become LF, and the control characters that
/// TEXT cannot carry (RFC 5545 §3.3.11: everything in U+0000–U+001F but TAB, and U+007F) are
/// dropped. [`escape_text`] applies the same rules, so `normalize_text(x)` is what a reader
/// gets back after `escape_text(x)` is stored.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\t' => out.push(c),
            c if is_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): `\` → `\\`, `;` → `\;`, `,` → `\,`, a line break
/// → `\n`, after [`normalize_text`].
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in normalize_text(text).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Reads a TEXT value (RFC 5545 §3.3.11): `\n`/`\N` → LF, `\\`, `\;`, `\,`; a backslash before
/// anything else (or at the end) is kept as it is.
pub fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('n' | 'N') => {
                chars.next();
                out.push('\n');
            }
            Some(&e @ ('\\' | ';' | ',')) => {
                chars.next();
                out.push(e);
            }
            _ => out.push('\\'),
        }
    }
    out
}

/// Reads a multi-valued TEXT value such as CATEGORIES (RFC 5545 §3.8.1.2): split on commas
/// that are not escaped, then unescape each value.
pub fn split_text_list(value: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                values.push(unescape_text(&value[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    values.push(unescape_text(&value[start..]));
    values
}

/// Writes a multi-valued TEXT value: each value escaped, joined with commas.
pub fn join_text_list<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|v| escape_text(v.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_folded(ics: &str) {
        assert!(ics.ends_with("\r\n"), "ends with CRLF");
        for line in ics.split("\r\n") {
            assert!(line.len() <= FOLD_OCTETS, "{} octets: {line:?}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'));
        }
    }

    #[test]
    fn parses_names_params_and_values() {
        let cal = parse(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n\
             x-apple-structured-location;VALUE=URI;X-TITLE=\"Room: 1; B\";x-a=1,\"b,c\":geo:1,2\r\n\
             END:VEVENT\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        assert_eq!(cal.name, "VCALENDAR");
        let event = &cal.children[0];
        let p = &event.properties[0];
        assert_eq!(p.name(), "X-APPLE-STRUCTURED-LOCATION");
        assert_eq!(p.value(), "geo:1,2");
        assert_eq!(p.param("x-title"), Some("Room: 1; B"));
        assert_eq!(p.param("VALUE"), Some("URI"));
        assert_eq!(p.params()[2].name(), "X-A");
        assert_eq!(p.params()[2].values(), ["1", "b,c"]);
        assert_eq!(
            p.line(),
            "x-apple-structured-location;VALUE=URI;X-TITLE=\"Room: 1; B\";x-a=1,\"b,c\":geo:1,2"
        );
    }

    #[test]
    fn unchanged_lines_are_written_back_exactly() {
        let text =
            "BEGIN:VCALENDAR\r\nX-WR-CALNAME;X-Q=\"a:b\":Name\\, with; stuff\r\nEND:VCALENDAR\r\n";
        assert_eq!(parse(text).unwrap().to_ics(), text);
    }

    #[test]
    fn unfolds_lf_and_crlf_with_space_or_tab() {
        let cal = parse("BEGIN:VCALENDAR\nSUMMARY:ab\n c\n\tde\r\n f\n\nEND:VCALENDAR").unwrap();
        assert_eq!(cal.properties[0].value(), "abcdef");
    }

    #[test]
    fn unfolds_a_fold_inside_a_utf8_character() {
        let mut bytes = b"BEGIN:VCALENDAR\r\nSUMMARY:".to_vec();
        let e = "é".as_bytes();
        bytes.push(e[0]);
        bytes.extend_from_slice(b"\r\n ");
        bytes.push(e[1]);
        bytes.extend_from_slice(b"\r\nEND:VCALENDAR\r\n");
        let cal = parse_bytes(&bytes).unwrap();
        assert_eq!(cal.properties[0].value(), "é");
    }

    #[test]
    fn folding_never_splits_a_character_and_keeps_75_octets() {
        for piece in ["😀", "日本語", "é", "a", "ab😀"] {
            for len in 60..90 {
                let value: String = piece.repeat(len);
                let mut cal = Component::new("VCALENDAR");
                cal.properties.push(Property::new("SUMMARY", &[], &value));
                let ics = cal.to_ics();
                assert_folded(&ics);
                let back = parse(&ics).unwrap();
                assert_eq!(back.properties[0].value(), value);
            }
        }
    }

    #[test]
    fn a_75_octet_line_is_not_folded_and_76_is() {
        let mut cal = Component::new("X");
        cal.properties
            .push(Property::new("SUMMARY", &[], &"a".repeat(75 - 8)));
        cal.properties
            .push(Property::new("SUMMARY", &[], &"b".repeat(76 - 8)));
        let ics = cal.to_ics();
        let lines: Vec<&str> = ics.split("\r\n").collect();
        assert_eq!(lines[1].len(), 75);
        assert_eq!(lines[2].len(), 75);
        assert_eq!(lines[3], " b");
    }

    #[test]
    fn property_new_quotes_params_and_drops_line_breaks() {
        let p = Property::new(
            "x-test",
            &[("X-TITLE", "a:b\"c"), ("VALUE", "URI")],
            "v\r\nEND:X",
        );
        assert_eq!(p.line(), "X-TEST;X-TITLE=\"a:bc\";VALUE=URI:vEND:X");
        assert_eq!(p.value(), "vEND:X");
        assert_eq!(p.param("x-title"), Some("a:bc"));
        let again = Property::parse_line(p.line().to_owned()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn nesting_errors() {
        assert_eq!(
            parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n"),
            Err(IcsError::MismatchedEnd {
                line: 3,
                open: "VEVENT".into(),
                found: "VCALENDAR".into()
            })
        );
        assert_eq!(
            parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"),
            Err(IcsError::Unclosed("VEVENT".into()))
        );
        assert_eq!(parse(""), Err(IcsError::Empty));
        assert_eq!(parse("\r\n\r\n"), Err(IcsError::Empty));
        assert!(matches!(
            parse("END:VCALENDAR"),
            Err(IcsError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            parse("SUMMARY:x\r\nBEGIN:A\r\nEND:A"),
            Err(IcsError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            parse("BEGIN:A\r\nEND:A\r\nBEGIN:A\r\nEND:A"),
            Err(IcsError::Syntax { line: 3, .. })
        ));
        assert!(matches!(
            parse(" x\r\nBEGIN:A\r\nEND:A"),
            Err(IcsError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let ok = "BEGIN:A\n".repeat(MAX_DEPTH) + &"END:A\n".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
        let deep = "BEGIN:A\n".repeat(100_000) + &"END:A\n".repeat(100_000);
        assert_eq!(parse(&deep), Err(IcsError::TooDeep));
    }

    #[test]
    fn garbage_lines_are_errors() {
        for bad in [
            "garbage",
            "BEGIN:A\r\nno colon here\r\nEND:A",
            "BEGIN:A\r\nX;P:v\r\nEND:A",
            "BEGIN:A\r\nX;P=\"open:v\r\nEND:A",
            "BEGIN:A\r\nX;P=\"q\"z:v\r\nEND:A",
            "BEGIN:A\r\n:v\r\nEND:A",
            "BEGIN:A\r\nBAD NAME:v\r\nEND:A",
            "BEGIN:\r\nEND:",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            parse_bytes(b"BEGIN:A\r\nX:\xff\r\nEND:A"),
            Err(IcsError::NotUtf8 { line: 2 })
        ));
    }

    #[test]
    fn names_are_case_insensitive() {
        let cal = parse("begin:vcalendar\r\nsummary;value=text:x\r\nend:VCALENDAR\r\n").unwrap();
        assert_eq!(cal.name, "VCALENDAR");
        assert_eq!(cal.property("Summary").unwrap().value(), "x");
        assert_eq!(
            cal.property("SUMMARY").unwrap().param("VALUE"),
            Some("text")
        );
        let odd = parse("BEGIN:A\r\nX-MS_OLK-THING;X_P=1:v\r\nEND:A\r\n").unwrap();
        assert_eq!(odd.properties[0].name(), "X-MS_OLK-THING");
    }

    #[test]
    fn escape_and_unescape() {
        assert_eq!(
            escape_text("a\\b;c,d\r\ne\rf\ng\u{0}h\u{7f}\ti"),
            "a\\\\b\\;c\\,d\\ne\\nf\\ngh\ti"
        );
        assert_eq!(
            unescape_text("a\\\\b\\;c\\,d\\ne\\Nf;g,h"),
            "a\\b;c,d\ne\nf;g,h"
        );
        assert_eq!(unescape_text("stray\\x and end\\"), "stray\\x and end\\");
        for text in [
            "",
            "plain",
            "\\n is not a newline",
            "; , \\ \n\t",
            "日本,語;😀\\",
        ] {
            assert_eq!(unescape_text(&escape_text(text)), normalize_text(text));
        }
    }

    #[test]
    fn text_lists_split_on_unescaped_commas_only() {
        assert_eq!(
            split_text_list("a\\,b,c\\\\,d;e\\;f"),
            ["a,b", "c\\", "d;e;f"]
        );
        let values = ["x,y", "back\\slash", "semi;colon", "new\nline"];
        assert_eq!(split_text_list(&join_text_list(&values)), values);
    }

    #[test]
    fn a_huge_value_is_linear() {
        let value = escape_text(&"ab, c; d\\ 日本\n".repeat(80_000));
        assert!(value.len() > 1 << 20);
        let mut cal = Component::new("VCALENDAR");
        cal.properties
            .push(Property::new("DESCRIPTION", &[], &value));
        let started = std::time::Instant::now();
        let ics = cal.to_ics();
        assert_folded(&ics);
        let back = parse(&ics).unwrap();
        assert_eq!(back.properties[0].value(), value);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
