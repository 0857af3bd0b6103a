//! The `regulab` command: train seeded MLP regularisation studies and export tidy CSV.
//! The command line is [`cli`]: arguments resolved into typed options, one module per
//! command; here only the exit code is made.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::Command::from_env().and_then(cli::execute) {
        Ok(code) => code,
        Err(e) => {
            cli::console::stderr(format_args!("error: {}\n", cli::render_error(&e)));
            ExitCode::from(2)
        }
    }
}
