//! `scripts/bench soak`: the long form of the soak. Every flood (own-source SYN,
//! random-source SYN, 64-byte UDP, ARP requests; from a client and from the uplink) runs for
//! a minute at the highest rate this host reaches, repeated, on q35, pc and microvm, while a
//! client downloads through NAT (see `qemu_tests::soak`). Per flood it reports the packets
//! per second offered and reaching the appliance, the download's rate during the flood
//! against its rate in a quiet window just before (same run), and whether the appliance
//! survived. A hang (no ping or forwarding within the recovery time after a flood) is
//! reported with where the CPU is and the console's tail, and the run goes on with a fresh
//! boot. The exit status is non-zero if any flood hung, crashed or broke the download.
//!
//! Options:
//!   --machine q35|pc|microvm   (repeatable; default all three)
//!   --seconds N                each flood's length (default 60)
//!   --quiet N                  the no-flood window before each flood (default 10)
//!   --repetitions N            rounds of all floods per machine (default 5)
//!   --floods a,b,...           which floods, in order (default all; names as printed,
//!                              e.g. random-syn@client,own-syn@client)
//!   --recovery N               seconds the appliance may take to answer after a flood
//!                              before it counts as hung (default 20)
//!   --rate N                   offer N frames per second instead of as many as possible
//!   --stop-on-hang             end the run at the first hang or crash
//!   --hping3                   first measure what hping3 --flood offers next to this
//!                              bench's own sender, on the client's tap
//!
//! Needs root (namespaces, taps).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use image::qemu::Machine;
use qemu_tests::flood::{Flood, FloodKind, Origin};
use qemu_tests::forwarding_ruleset::BETA_NIC;
use qemu_tests::link_stats::LinkState;
use qemu_tests::notice::is_root;
use qemu_tests::soak::{FloodOutcome, SoakAppliance, SoakPlan, Survival};
use qemu_tests::{Failure, Outcome};

struct Options {
    machines: Vec<Machine>,
    floods: Vec<Flood>,
    plan: SoakPlan,
    repetitions: u32,
    stop_on_hang: bool,
    hping3: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(failure) => {
            eprintln!("bench soak: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Outcome<bool> {
    let options = parse_options()?;
    if !is_root() {
        return Err(Failure::new(
            "needs root (network namespaces, tap devices): run it as root",
        ));
    }
    println!(
        "soak: {} flood(s) x {} repetition(s) on {}; {} s per flood at {} after a {} s quiet window; hung = no ping/forwarding {} s after a flood",
        options.floods.len(),
        options.repetitions,
        options
            .machines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        options.plan.flood.as_secs(),
        match options.plan.rate {
            Some(rate) => format!("{rate} frames/s"),
            None => "the highest rate this host reaches".to_string(),
        },
        options.plan.quiet.as_secs(),
        options.plan.recovery.as_secs()
    );
    println!("offered: frames per second the sender put on its tap; reached: those the tap handed to QEMU (it dropped the rest, its queue full)");
    println!("download: client alpha's curl through NAT, during the flood vs the quiet window just before it");
    println!();
    if options.hping3 {
        compare_with_hping3(options.machines[0])?;
    }
    let mut all_passed = true;
    let mut outcomes: Vec<(Machine, FloodOutcome)> = Vec::new();
    'machines: for &machine in &options.machines {
        let mut session: Option<SoakAppliance> = None;
        let mut boots = 0;
        for repetition in 1..=options.repetitions {
            for &flood in &options.floods {
                if session.is_none() {
                    boots += 1;
                    let started = Instant::now();
                    session = Some(SoakAppliance::boot(machine, false)?);
                    println!(
                        "{machine}: boot {boots} ready in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                let Some(appliance) = session.as_mut() else {
                    continue;
                };
                let outcome = match appliance.run_flood(flood, options.plan) {
                    Ok(outcome) => outcome,
                    Err(failure) => {
                        // The harness failed (a tool, a namespace), not the appliance, as far
                        // as it can tell: say so, and go on with a fresh boot.
                        println!(
                            "{machine} round {repetition}: {flood}: harness failure: {failure}"
                        );
                        all_passed = false;
                        session = None;
                        continue;
                    }
                };
                println!("{machine} round {repetition}: {outcome}");
                let survived = matches!(outcome.survival, Survival::Survived(_));
                all_passed &= outcome.passed();
                outcomes.push((machine, outcome));
                if !survived {
                    // A stopped appliance is not flooded further: boot a fresh one.
                    session = None;
                    if options.stop_on_hang {
                        break 'machines;
                    }
                }
            }
        }
    }
    println!();
    summarise(&options, &outcomes);
    Ok(all_passed)
}

/// Per machine and flood: runs, how they ended, and medians of the figures.
fn summarise(options: &Options, outcomes: &[(Machine, FloodOutcome)]) {
    println!(
        "{:<8} {:<18} {:>4} {:>8} {:>5} {:>7} {:>13} {:>13} {:>11} {:>11} {:>9}",
        "machine",
        "flood",
        "runs",
        "survived",
        "hung",
        "crashed",
        "offered kpps",
        "reached kpps",
        "quiet MB/s",
        "flood MB/s",
        "flood/quiet"
    );
    for &machine in &options.machines {
        for &flood in &options.floods {
            let runs: Vec<&FloodOutcome> = outcomes
                .iter()
                .filter(|(m, outcome)| *m == machine && outcome.flood == flood)
                .map(|(_, outcome)| outcome)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let count = |wanted: fn(&Survival) -> bool| {
                runs.iter().filter(|run| wanted(&run.survival)).count()
            };
            let median_of = |figure: fn(&FloodOutcome) -> f64| {
                median(runs.iter().map(|run| figure(run)).collect())
            };
            println!(
                "{:<8} {:<18} {:>4} {:>8} {:>5} {:>7} {:>13.1} {:>13.1} {:>11.1} {:>11.1} {:>8.2}x",
                machine.to_string(),
                flood.to_string(),
                runs.len(),
                count(|s| matches!(s, Survival::Survived(_))),
                count(|s| matches!(s, Survival::Hung(_))),
                count(|s| matches!(s, Survival::Crashed(_))),
                median_of(|run| run.offered_rate()) / 1e3,
                median_of(|run| run.reached_rate()) / 1e3,
                median_of(|run| run.quiet_rate) / 1e6,
                median_of(|run| run.flood_rate) / 1e6,
                median_of(|run| run.download_ratio())
            );
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// hping3's `--flood` against this bench's sender, both sending from client beta's namespace
/// for a few seconds, counted the same way: frames that entered beta's tap (passed to QEMU
/// or dropped there) per second.
fn compare_with_hping3(machine: Machine) -> Outcome {
    const SECONDS: u64 = 5;
    let mut soak = SoakAppliance::boot(machine, false)?;
    println!("hping3 --flood vs this bench's sender ({machine}, client beta's tap, {SECONDS} s each; frames into the tap per second):");
    let cases = [
        (FloodKind::OwnSourceSyn, "-S -p ++1000"),
        (FloodKind::RandomSourceSyn, "-S -p ++1000 --rand-source"),
        (FloodKind::SmallUdp, "--udp -p 9 -d 18"),
    ];
    for (kind, arguments) in cases {
        let client = soak.appliance.client(BETA_NIC)?;
        let before = LinkState::read(client)?.transmit;
        let target = qemu_tests::addressing::INTERNET_SERVER.to_string();
        let mut args: Vec<&str> = vec!["--flood", "--quiet"];
        args.extend(arguments.split_whitespace());
        args.push(&target);
        let mut hping = client.spawn("hping3", &args)?;
        std::thread::sleep(Duration::from_secs(SECONDS));
        image::qemu::stop(&mut hping);
        let after = LinkState::read(client)?.transmit;
        let delta = after.since(before);
        let hping_rate = (delta.packets + delta.dropped) as f64 / SECONDS as f64;
        let ours = soak.run_flood(
            Flood::new(kind, Origin::Client),
            SoakPlan {
                quiet: Duration::from_secs(1),
                flood: Duration::from_secs(SECONDS),
                recovery: Duration::from_secs(20),
                rate: None,
            },
        )?;
        let our_rate = (ours.reached.packets + ours.reached.dropped) as f64
            / ours.offered.elapsed.as_secs_f64();
        println!(
            "  {:<18} hping3 {arguments:<28} {:>8.1} kpps   this bench {:>8.1} kpps   ({:.1}x)",
            Flood::new(kind, Origin::Client).to_string(),
            hping_rate / 1e3,
            our_rate / 1e3,
            our_rate / hping_rate.max(1.0)
        );
    }
    println!();
    Ok(())
}

fn parse_options() -> Outcome<Options> {
    let mut options = Options {
        machines: Vec::new(),
        floods: Flood::ALL.to_vec(),
        plan: SoakPlan {
            quiet: Duration::from_secs(10),
            flood: Duration::from_secs(60),
            recovery: Duration::from_secs(20),
            rate: None,
        },
        repetitions: 5,
        stop_on_hang: false,
        hping3: false,
    };
    let mut args = std::env::args().skip(1);
    let seconds = |value: Option<String>, option: &str| {
        value
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| Failure::new(format!("{option} needs a positive number of seconds")))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--machine" => {
                let name = args.next().unwrap_or_default();
                options.machines.push(name.parse().map_err(|_| {
                    Failure::new(format!("--machine {name:?}: use q35, pc or microvm"))
                })?);
            }
            "--seconds" => options.plan.flood = seconds(args.next(), "--seconds")?,
            "--quiet" => options.plan.quiet = seconds(args.next(), "--quiet")?,
            "--recovery" => options.plan.recovery = seconds(args.next(), "--recovery")?,
            "--repetitions" => {
                options.repetitions = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Failure::new("--repetitions needs a positive number"))?
            }
            "--floods" => {
                let list = args.next().unwrap_or_default();
                options.floods = list
                    .split(',')
                    .map(|name| {
                        Flood::parse(name.trim()).ok_or_else(|| {
                            Failure::new(format!(
                                "unknown flood {name:?}: use {}",
                                Flood::ALL.map(|flood| flood.to_string()).join(", ")
                            ))
                        })
                    })
                    .collect::<Outcome<_>>()?;
            }
            "--rate" => {
                options.plan.rate = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            Failure::new("--rate needs a positive number of frames per second")
                        })?,
                )
            }
            "--stop-on-hang" => options.stop_on_hang = true,
            "--hping3" => options.hping3 = true,
            other => {
                return Err(Failure::new(format!(
                    "unknown option {other:?} (see the top of qemu-tests/benches/soak.rs)"
                )))
            }
        }
    }
    if options.machines.is_empty() {
        options.machines = vec![Machine::Q35, Machine::Pc, Machine::Microvm];
    }
    Ok(options)
}
