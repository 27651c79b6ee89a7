//! CalDAV client: placeholder.
pub mod xml;
