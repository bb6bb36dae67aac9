//! The `rules` command line: `check`, `test`, `explain`, `compile`, `generate`.

use std::io::Write;

use crate::compile::{compile_untested, CompileError, Compiled};
use crate::diag::plural;
use crate::explain::explain;
use crate::generate::generate;
use crate::selftest::run_tests;
use crate::source::{pos_str, SourceFile};
use dataplane::policy::codegen::blob;
use dataplane::policy::index::MatchIndexBuf;

/// The usage text.
pub const USAGE: &str = "\
usage: rules check FILE                 check a ruleset and run its tests (exit 1 on any error)
       rules test FILE                  run the ruleset's test lines and print each result
       rules explain FILE 'PACKET'      show how the policy decides one packet, e.g.
                                        'tcp 10.137.0.10:40000 -> 1.1.1.1:443 on lan'
       rules compile FILE -o OUT        check the ruleset, run its tests and write the
                                        policy blob `image build` embeds in the kernel
       rules generate N [--seed S]      print a generated ruleset of N rules (benchmarks)
       rules import-qubes LAYOUT QUBE=RAW... [-o OUT]
                                        append each qube's `qvm-firewall QUBE list --raw`
                                        rules to the layout ruleset, compile, print or write
";

/// Runs the command line `args` (without the program name); returns the exit status.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["check", file] => check(file, out, err),
        ["test", file] => test(file, out, err),
        ["explain", file, packet] => explain_cmd(file, packet, out, err),
        ["compile", file, "-o", dest] => compile_cmd(file, dest, out, err),
        ["generate", n] => generate_cmd(n, "1", out),
        ["generate", n, "--seed", seed] => generate_cmd(n, seed, out),
        ["import-qubes", layout, rest @ ..] if !rest.is_empty() => {
            import_qubes(layout, rest, out, err)
        }
        ["help" | "--help" | "-h"] => {
            let _ = write!(out, "{USAGE}");
            Ok(0)
        }
        _ => {
            let _ = write!(err, "{USAGE}");
            Ok(2)
        }
    };
    result.unwrap_or_else(|message| {
        let _ = writeln!(err, "{message}");
        1
    })
}

/// Reads a ruleset file.
fn read(path: &str) -> Result<SourceFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: error: cannot read the ruleset: {e}"))?;
    Ok(SourceFile::new(path, text))
}

/// Compiles without running the tests; prints the diagnostics of a failure.
fn build(path: &str, err: &mut dyn Write) -> Result<Result<Compiled, CompileError>, String> {
    let file = read(path)?;
    let result = compile_untested(file);
    if let Err(e) = &result {
        let _ = write!(err, "{}", e.render());
    }
    Ok(result)
}

fn check(path: &str, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let file = read(path)?;
    match crate::compile::compile_file(file) {
        Ok(compiled) => {
            report(path, &compiled, out, err);
            Ok(0)
        }
        Err(e) => {
            let _ = write!(err, "{}", e.render());
            Ok(1)
        }
    }
}

/// The warnings of a ruleset that compiled, and the one-line summary `check` and `compile`
/// print.
fn report(path: &str, compiled: &Compiled, out: &mut dyn Write, err: &mut dyn Write) {
    let _ = write!(err, "{}", compiled.render_warnings());
    let policy = compiled.policy.as_policy();
    let _ = writeln!(
        out,
        "{path}: ok: {} rule{} ({} compiled), {} test{} passed, {} warning{}, \
         index {} bytes (bound {}), digest {}",
        compiled.checked.rules.len(),
        plural(compiled.checked.rules.len()),
        policy.rules.len(),
        compiled.tests.len(),
        plural(compiled.tests.len()),
        compiled.warnings.len(),
        plural(compiled.warnings.len()),
        policy.index.size_bytes(),
        MatchIndexBuf::max_size_bytes(policy.rules.len()),
        policy.digest
    );
}

fn test(path: &str, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let Ok(mut compiled) = build(path, err)? else {
        return Ok(1);
    };
    let (outcomes, failures) = run_tests(
        &compiled.file,
        &compiled.checked,
        &compiled.policy.as_policy(),
    );
    for outcome in &outcomes {
        let pos = compiled.file.position(outcome.loc.start);
        let status = if outcome.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "{status} {:>7}  {}", pos_str(pos), outcome.text);
        let _ = writeln!(out, "               {}", outcome.detail);
    }
    compiled.warnings.extend(failures);
    let _ = write!(err, "{}", compiled.warnings.render(&compiled.file));
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    let errors = compiled.warnings.errors().count();
    let _ = writeln!(out, "{} passed, {failed} failed", outcomes.len() - failed);
    Ok(if errors > 0 { 1 } else { 0 })
}

fn explain_cmd(
    path: &str,
    packet: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    let Ok(compiled) = build(path, err)? else {
        return Ok(1);
    };
    match explain(
        &compiled.file,
        &compiled.checked,
        &compiled.policy.as_policy(),
        packet,
    ) {
        Ok(text) => {
            let _ = write!(out, "{text}");
            Ok(0)
        }
        Err(diagnostics) => {
            let _ = write!(err, "{diagnostics}");
            Ok(1)
        }
    }
}

fn compile_cmd(
    path: &str,
    dest: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    let file = read(path)?;
    let compiled = match crate::compile::compile_file(file) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(err, "{}", e.render());
            return Ok(1);
        }
    };
    let blob = blob::encode(&compiled.policy.as_policy());
    std::fs::write(dest, blob).map_err(|e| format!("{dest}: error: cannot write: {e}"))?;
    report(path, &compiled, out, err);
    Ok(0)
}

fn generate_cmd(n: &str, seed: &str, out: &mut dyn Write) -> Result<i32, String> {
    let n: usize = n
        .parse()
        .map_err(|_| format!("error: '{n}' is not a number of rules"))?;
    let seed: u64 = seed
        .parse()
        .map_err(|_| format!("error: '{seed}' is not a seed (a number)"))?;
    let _ = write!(out, "{}", generate(n, seed));
    Ok(0)
}

fn import_qubes(
    layout: &str,
    rest: &[&str],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    let (sources, dest) = match rest {
        [sources @ .., "-o", dest] => (sources, Some(*dest)),
        sources => (sources, None),
    };
    let layout_text = std::fs::read_to_string(layout)
        .map_err(|e| format!("{layout}: error: cannot read the layout: {e}"))?;
    let qubes = sources
        .iter()
        .map(|arg| {
            let (qube, path) = arg.split_once('=').ok_or_else(|| {
                format!("'{arg}': write QUBE=FILE (the qube's name and its --raw rules)")
            })?;
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{path}: error: cannot read {qube}'s rules: {e}"))?;
            Ok(crate::qubes::QubeRules {
                qube: qube.to_string(),
                path: path.to_string(),
                text,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let env = crate::qubes::Environment {
        resolve: &crate::qubes::system_resolve,
        now,
    };
    let imported = crate::qubes::import(layout, &layout_text, &qubes, &env)?;
    for warning in &imported.warnings {
        let _ = writeln!(err, "{warning}");
    }
    match dest {
        Some(dest) => std::fs::write(dest, &imported.text)
            .map_err(|e| format!("{dest}: error: cannot write the ruleset: {e}"))?,
        None => {
            let _ = write!(out, "{}", imported.text);
        }
    }
    Ok(0)
}
