//! The `calplanebot` binary: a thin shell around [`calplanebot::cli::main`].

fn main() -> std::process::ExitCode {
    calplanebot::cli::main(std::env::args_os())
}
