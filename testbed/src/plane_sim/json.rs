//! Ordered JSON for the Plane simulator: objects keep their key order, and [`Json::to_compact`]
//! writes bytes the way Plane does, so a simulated answer can be compared byte for byte with a
//! captured one.
//!
//! Why not `serde_json::Value`: without its `preserve_order` feature (which would change the map
//! type for every crate of the workspace) it sorts keys, and Plane's key order is part of what we
//! reproduce (e.g. `labels` before `assignees` when both are expanded). Plane's renderer is DRF's
//! `JSONRenderer`: compact separators, `ensure_ascii=False`, U+2028/U+2029 escaped, floats in
//! Python's `repr` form (`65535.0`). Django's `JsonResponse` and Plane's webhook sender use
//! `json.dumps` defaults instead ([`Json::to_python_default`]): `", "`/`": "` and
//! `ensure_ascii=True`.

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects keep their key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text, keeping object key order.
    pub fn parse(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// An empty object.
    pub fn obj() -> Json {
        Json::Obj(Vec::new())
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A string, or `null` for `None`.
    pub fn opt_str(s: Option<&str>) -> Json {
        s.map_or(Json::Null, Json::str)
    }

    /// Builder: appends (or replaces in place) `key` in an object.
    pub fn with(mut self, key: &str, value: Json) -> Json {
        self.set(key, value);
        self
    }

    /// Sets `key` in an object the way a Python dict does: an existing key keeps its position,
    /// a new key goes to the end. No effect on non-objects.
    pub fn set(&mut self, key: &str, value: Json) {
        if let Json::Obj(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key.to_owned(), value)),
            }
        }
    }

    /// Removes `key` from an object (the others keep their order) and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Json> {
        match self {
            Json::Obj(entries) => {
                let at = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(at).1)
            }
            _ => None,
        }
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The keys of an object, in order (empty for non-objects).
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Compact text as DRF's `JSONRenderer` writes it (`separators=(",", ":")`,
    /// `ensure_ascii=False`).
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, &Style::DRF);
        out
    }

    /// Text as Python's `json.dumps(value)` writes it with every default: separators `", "`
    /// and `": "`, `ensure_ascii=True` (every non-ASCII character and DEL as a lowercase
    /// `\uXXXX`, characters beyond the BMP as a surrogate pair), keys in order. That is what
    /// Django's `JsonResponse` sends (its 404 page) and what Plane's webhook sender signs and
    /// posts.
    pub fn to_python_default(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, &Style::PYTHON_DEFAULT);
        out
    }

    fn write(&self, out: &mut String, style: &Style) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Float(f) => out.push_str(&python_float_repr(*f)),
            Json::Str(s) => write_string(out, s, style.ensure_ascii),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(style.item_sep);
                    }
                    item.write(out, style);
                }
                out.push(']');
            }
            Json::Obj(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(style.item_sep);
                    }
                    write_string(out, key, style.ensure_ascii);
                    out.push_str(style.key_sep);
                    value.write(out, style);
                }
                out.push('}');
            }
        }
    }
}

/// How a writer separates and escapes.
struct Style {
    item_sep: &'static str,
    key_sep: &'static str,
    ensure_ascii: bool,
}

impl Style {
    const DRF: Style = Style {
        item_sep: ",",
        key_sep: ":",
        ensure_ascii: false,
    };
    const PYTHON_DEFAULT: Style = Style {
        item_sep: ", ",
        key_sep: ": ",
        ensure_ascii: true,
    };
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_owned())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl From<i64> for Json {
    fn from(i: i64) -> Json {
        Json::Int(i)
    }
}

impl From<f64> for Json {
    fn from(f: f64) -> Json {
        Json::Float(f)
    }
}

impl From<Vec<Json>> for Json {
    fn from(items: Vec<Json>) -> Json {
        Json::Arr(items)
    }
}

/// Python's `json` string escaping. With `ensure_ascii` (Python's default) everything outside
/// printable ASCII becomes `\uXXXX` in lowercase hex, astral characters as a UTF-16 surrogate
/// pair; without it (DRF) only control characters are escaped, plus DRF's escaping of the two
/// JavaScript line terminators.
fn write_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, `.0` on integral values, exponent form
/// outside `1e-4 <= |x| < 1e16` (`1e+16`, `1.5e-05`).
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let magnitude = f.abs();
    if f == 0.0 || (1e-4..1e16).contains(&magnitude) {
        let plain = format!("{f}");
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    let exp_form = format!("{f:e}");
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Int(i) => serializer.serialize_i64(*i),
            Json::Float(f) => serializer.serialize_f64(*f),
            Json::Str(s) => serializer.serialize_str(s),
            Json::Arr(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Obj(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Json, E> {
        Ok(Json::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Json, E> {
        Ok(i64::try_from(u).map_or(Json::Float(u as f64), Json::Int))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Json, E> {
        Ok(Json::Float(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json, E> {
        Ok(Json::Str(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Json, E> {
        Ok(Json::Str(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries: Vec<(String, Json)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            // Python keeps the last of duplicate keys, at the first one's position.
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => entries.push((key, value)),
            }
        }
        Ok(Json::Obj(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_key_order_and_writes_compact() {
        let text = r#"{"b": 1, "a": [true, null, 65535.0, "x\"y"], "c": {"z": -2, "y": 0.5}}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(json.keys(), ["b", "a", "c"]);
        assert_eq!(
            json.to_compact(),
            r#"{"b":1,"a":[true,null,65535.0,"x\"y"],"c":{"z":-2,"y":0.5}}"#
        );
    }

    #[test]
    fn floats_follow_python_repr() {
        assert_eq!(python_float_repr(65535.0), "65535.0");
        assert_eq!(python_float_repr(0.0), "0.0");
        assert_eq!(python_float_repr(1.5), "1.5");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(python_float_repr(-2.5e20), "-2.5e+20");
    }

    #[test]
    fn strings_escape_like_drf() {
        let s = Json::str("ä\u{1}\n\u{2028}/");
        assert_eq!(s.to_compact(), "\"ä\\u0001\\n\\u2028/\"");
    }

    #[test]
    fn python_default_escapes_like_json_dumps() {
        // Checked against CPython 3: json.dumps({"n": "Jörg 😀 \u2028\x7f\x01\n", ...}).
        let o = Json::obj()
            .with("n", Json::str("Jörg 😀 \u{2028}\u{7f}\u{1}\n\"/"))
            .with(
                "f",
                Json::Arr(vec![Json::Float(95535.0), Json::Float(1e16)]),
            )
            .with(
                "z",
                Json::Arr(vec![Json::Null, Json::Bool(true), Json::Int(-3)]),
            );
        assert_eq!(
            o.to_python_default(),
            r#"{"n": "J\u00f6rg \ud83d\ude00 \u2028\u007f\u0001\n\"/", "f": [95535.0, 1e+16], "z": [null, true, -3]}"#
        );
        // The compact (DRF) writer keeps non-ASCII as is.
        assert_eq!(Json::str("Jörg 😀").to_compact(), "\"Jörg 😀\"");
    }

    #[test]
    fn remove_keeps_the_order_of_the_rest() {
        let mut o = Json::obj()
            .with("a", Json::Int(1))
            .with("b", Json::Int(2))
            .with("c", Json::Int(3));
        assert_eq!(o.remove("b"), Some(Json::Int(2)));
        assert_eq!(o.remove("b"), None);
        assert_eq!(o.keys(), ["a", "c"]);
    }

    #[test]
    fn set_keeps_position_of_existing_keys() {
        let mut o = Json::obj().with("a", Json::Int(1)).with("b", Json::Int(2));
        o.set("a", Json::Null);
        o.set("c", Json::Int(3));
        assert_eq!(o.to_compact(), r#"{"a":null,"b":2,"c":3}"#);
        assert_eq!(o.to_python_default(), r#"{"a": null, "b": 2, "c": 3}"#);
    }
}
