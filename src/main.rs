//! The `calplanebot` binary: a thin shell around [`calplanebot::cli::main`].
fn main() {}
