//! The `calplanebot` binary: a thin shell around [`calplanebot::commands::main`].

fn main() -> std::process::ExitCode {
    calplanebot::commands::main(std::env::args_os())
}
