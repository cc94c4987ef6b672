use std::process::ExitCode;

fn main() -> ExitCode {
    tirage_cli::main()
}
