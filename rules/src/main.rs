//! `rules`: check, test, explain and compile Moat rulesets. See `rules --help`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = rules::cli::run(&args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(status);
}
