//! WebDAV/CalDAV XML: PLACEHOLDER, being written.
