//! `boltz`: build, verify and measure the constructions of Kajitsuka & Sato (ICLR 2024) and draw the
//! paper-style charts. Exit codes: 0 ok, 1 a checked property failed, 2 usage or runtime error.

/// `println!` that returns an error instead of panicking when stdout is closed or full (`main` ends
/// quietly on a closed pipe, as ripgrep does, and reports other write errors with exit 2).
macro_rules! outln {
    ($($arg:tt)*) => {
        {
            use std::io::Write as _;
            writeln!(std::io::stdout().lock(), $($arg)*).context("writing to stdout")?
        }
    };
}

/// `eprintln!` that never panics (see [`boltz_lab::note`]).
macro_rules! errln {
    ($($arg:tt)*) => { boltz_lab::note(format_args!($($arg)*)) };
}

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use boltz_lab::outdir::OutDir;
use boltz_lab::suite;
use boltz_lab::suite::config::{DEFAULT, QUICK};
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::cli::{Cli, Command};
use crate::commands::{approximate, bench, check, export, memorize, plot, reproduce, train, verify, workloads};

fn run(cli: Cli) -> Result<bool> {
    match cli.command {
        Command::Memorize(a) => memorize(&a),
        Command::Approximate(a) => approximate(&a),
        Command::Reproduce(a) => reproduce(&a),
        Command::Bench(a) => bench(&a),
        Command::Verify(a) => verify(&a),
        Command::Train(a) => train(&a),
        Command::Check(a) => check(&a),
        Command::Plot { dir } => {
            // A directory of results directories (and no results of its own) is redrawn whole; any other
            // is one run's directory, locked first (a run writing it refuses the redraw).
            let tree = !suite::load_results(&dir).is_ok_and(|r| !r.is_empty()) && commands::reproduce::is_tree(&dir);
            let files = if tree { commands::reproduce::plot_tree(&dir)? } else { plot(&OutDir::lock(&dir)?)? };
            for f in files {
                errln!("drew {}", f.display());
            }
            Ok(true)
        }
        Command::PlotHistory { file, out, baseline, ceiling } => {
            let drawn = commands::reproduce::history_charts(&file, &baseline, &ceiling)?;
            for f in commands::reproduce::draw_all(&drawn, OutDir::lock(&out)?.path())? {
                errln!("drew {}", f.display());
            }
            Ok(true)
        }
        Command::Merge { dir } => {
            let dir = OutDir::lock(&dir)?;
            let files = suite::merge(dir.path())?;
            if files.is_empty() {
                bail!("{}: no shard files to merge", dir.path().display());
            }
            for f in files {
                errln!("wrote {}", f.display());
            }
            Ok(true)
        }
        Command::Workloads { json } => workloads(json),
        Command::Ceiling { threads, json } => commands::bench::ceiling(&threads, json),
        Command::Export { workload, batch, dir } => export(&workload, batch, &dir),
        Command::Config { quick } => {
            use std::io::Write as _;
            std::io::stdout().lock().write_all(if quick { QUICK } else { DEFAULT }.as_bytes()).context("writing to stdout")?;
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    // OpenBLAS picks its kernel when it loads: re-execute once with a safe OPENBLAS_CORETYPE when unset.
    #[cfg(feature = "blas")]
    boltz_blas::openblas::reexec_with_coretype();
    match run(parse_args()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        // A closed stdout (`boltz config | head -1`) ends the program quietly, as ripgrep does.
        Err(e) if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The command line, parsed (clap exits with its usage message and code 2 on an error). Every subcommand
/// reads a leading `-` followed by a digit as a value, so `--sequences -5` is refused by the value's own
/// parser ("invalid digit"), not as an unknown flag.
fn parse_args() -> Cli {
    let matches = Cli::command().mut_subcommands(|c| c.allow_negative_numbers(true)).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
