use std::process::ExitCode;

fn main() -> ExitCode {
    // `resize` and `standalone` run the engine; `upload` allocates little either way.
    tirage_engine::keep_working_memory();
    tirage_cli::main()
}
