//! Small text rules shared by every room: printing what servers sent without letting it act on
//! a terminal, telling a Plane UUID, and a calendar name as servers store it.

/// `text` with every control character (C0, DEL, C1: escape sequences, carriage returns, bell,
/// line breaks) written as a visible escape (`\e`, `\r`, `\n`, `\u{9b}`), so it stays on one
/// line and does nothing to a terminal.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A Plane UUID as it may appear in a URL path and a calendar resource name.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A calendar name as a server stores it: line breaks and tabs become spaces, other control
/// characters U+FFFD (XML cannot carry them, and a server would store another spelling).
pub fn server_text(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => ' ',
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}
