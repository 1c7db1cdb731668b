//! `warrenctl`: rabbitmqctl for WarrenMQ (entry point only; the commands are `ctl/`).

use std::process::ExitCode;

use clap::Parser;
use warrenmq::ctl::{self, Args};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage {
                ctl::exit::USAGE
            } else {
                ctl::exit::OK
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(ctl::exit::SOFTWARE);
        }
    };
    match runtime.block_on(ctl::run(args)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            print!("{}", failure.stdout);
            eprintln!("{}{}", failure.heading, failure.message);
            ExitCode::from(failure.code)
        }
    }
}
