//! Unit tests of the feed target: which feeds a run wants, what it may remove, and a run over
//! a real directory.
