//! Verifies every proof of one Metamath database with metamath-rs (the library behind
//! metamath-knife), independently of metamath C. Prints one line per diagnostic, then a summary;
//! exits 0 only when the database parsed, every name and scope resolved, every proof verified and
//! no diagnostic of any level was raised.
use std::process::ExitCode;

use annotate_snippets::Renderer;
use metamath_rs::database::{Database, DbOptions};

/// The library version Cargo.toml pins exactly.
const METAMATH_RS: &str = "0.3.9";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 2 && args[1] == "--version" {
        println!("proofpod-metamath-verify {} (metamath-rs {METAMATH_RS})", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let [_, file] = args.as_slice() else {
        eprintln!("usage: proofpod-metamath-verify DATABASE.mm");
        return ExitCode::from(2);
    };
    if std::fs::metadata(file).map(|m| !m.is_file()).unwrap_or(true) {
        eprintln!("proofpod-metamath-verify: {file} is not a readable regular file");
        return ExitCode::from(2);
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut db = Database::new(DbOptions { jobs, ..DbOptions::default() });
    db.parse(file.clone(), Vec::new());
    db.name_pass();
    db.scope_pass();
    db.verify_pass();
    let diagnostics = db.diag_notations();
    let count = diagnostics.len();
    let renderer = Renderer::plain();
    for line in db.render_diags(diagnostics, |message| renderer.render(message).to_string()) {
        println!("{line}");
    }
    let statements = db.statements().count();
    if count == 0 {
        println!("verified: {statements} statements, no diagnostics");
        ExitCode::SUCCESS
    } else {
        println!("not verified: {count} diagnostic(s)");
        ExitCode::from(1)
    }
}
