//! RFC 5545 content lines: PLACEHOLDER, being written.
