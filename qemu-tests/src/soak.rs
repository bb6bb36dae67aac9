//! The soak: floods through a booted appliance while a client's download goes on, and what
//! the appliance looks like afterwards. Shared by the short form in the test suite and the
//! long form in `scripts/bench soak`.
//!
//! Topology: the forwarding appliance ([`TapAppliance`]) with the uplink and two client
//! networks on taps in namespaces. Client `alpha` downloads an endless stream
//! ([`StreamServer`], in the uplink's namespace) through NAT with `curl`; the floods
//! ([`Flood`]) come from client `beta` (to the internet server) or from the uplink (to the
//! appliance's uplink address and the port forwarded to `beta`).
//!
//! Each flood ([`SoakAppliance::run_flood`]): a download starts; its rate is measured over a
//! quiet window, then over the flood; after the flood the appliance must answer ping on both
//! client networks and forward a new connection within the recovery time, or it is hung
//! ([`HangReport`]); a stats line must have appeared since the flood began; and the
//! download, ended by the server, must have arrived complete and intact.

use std::fmt;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use image::qemu::{MacAddress, Machine};
use smoltcp::wire::EthernetAddress;

use crate::addressing::{appliance_address, host_address, INTERNET_SERVER};
use crate::boot_report::FATAL_PREFIX;
use crate::client_tools::{curl, Fetch};
use crate::download::Download;
use crate::flood::{Flood, FloodFrames, FloodPath, Origin};
use crate::forwarding_ruleset::{ALPHA_NIC, BETA_FORWARD_PORT, BETA_NIC, UPLINK_NIC, WEB_PORT};
use crate::hang_report::HangReport;
use crate::link_stats::{LinkState, TransmitCounters};
use crate::packet_sender::{Blast, SendReport};
use crate::qemu_process::QemuProcess;
use crate::stats_line::STATS_PREFIX;
use crate::stream_server::StreamServer;
use crate::tap_appliance::TapAppliance;
use crate::test_host::TestHost;
use crate::{Failure, Outcome};

/// The port of the download's stream server on the internet server.
pub const STREAM_PORT: u16 = 8000;
/// How long the download may take to deliver its first bytes.
const DOWNLOAD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for TCP to reach its pace before the quiet window.
const DOWNLOAD_WARM_UP: Duration = Duration::from_millis(500);
/// How long the download may take to move again after a flood: a flood on the link it
/// shares (the uplink's tap) drops most of its segments before the appliance sees them, and
/// TCP's retransmissions back off (up to two minutes apart) until one gets through.
const DOWNLOAD_RESUME_TIMEOUT: Duration = Duration::from_secs(150);
/// How long curl may take to end after the server ends the body. Moving again after a
/// flood is one retransmission getting through; the rest of what was lost during the flood
/// may still be backing off, so the tail gets as long as the resumption. A download that
/// does not end by then is stuck, and the failure shows both sockets and the appliance's
/// counters (see `SoakAppliance::connection_ends`).
const DOWNLOAD_END_TIMEOUT: Duration = DOWNLOAD_RESUME_TIMEOUT;
/// How often the download is looked at during a flood (for its longest stall).
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// The stats line comes at most every 5 s when counters change: generous on a busy host.
const STATS_TIMEOUT: Duration = Duration::from_secs(20);
/// Console lines shown with a crash.
const CRASH_CONSOLE_TAIL: usize = 15;
/// Between two rounds of probes.
const PROBE_PAUSE: Duration = Duration::from_millis(200);
/// Connecting and fetching the greeting, per attempt.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How each flood runs: how long each part lasts, and how fast the flood is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoakPlan {
    /// The no-flood window the download's rate is measured over, before the flood.
    pub quiet: Duration,
    /// The flood.
    pub flood: Duration,
    /// How long after the flood the appliance may take to answer again before it counts
    /// as hung.
    pub recovery: Duration,
    /// Frames per second the flood offers; `None` for as many as this host can.
    pub rate: Option<u64>,
}

/// How the appliance came through a flood.
#[derive(Debug, Clone)]
pub enum Survival {
    /// It answered ping and forwarded again this soon after the flood.
    Survived(Duration),
    /// It stopped: QEMU exited or the kernel printed a fatal report.
    Crashed(String),
    /// It stopped answering and forwarding, though QEMU runs.
    Hung(Box<HangReport>),
}

/// One flood and what it did.
#[derive(Debug, Clone)]
pub struct FloodOutcome {
    /// The flood.
    pub flood: Flood,
    /// What the sender offered.
    pub offered: SendReport,
    /// What the sender's tap passed to QEMU, and dropped because the queue was full.
    pub reached: TransmitCounters,
    /// The download's rate over the quiet window (bytes/s).
    pub quiet_rate: f64,
    /// The download's rate during the flood (bytes/s).
    pub flood_rate: f64,
    /// The longest time no download bytes arrived during the flood.
    pub longest_stall: Duration,
    /// How soon after the flood the download moved again (if it did).
    pub resumed_after: Option<Duration>,
    /// Whether the appliance came through.
    pub survival: Survival,
    /// What else went wrong: a broken download, a stats line that stopped.
    pub problems: Vec<String>,
}

impl FloodOutcome {
    /// Offered packets per second.
    pub fn offered_rate(&self) -> f64 {
        self.offered.packets_per_second()
    }

    /// Packets per second that reached the appliance's NIC.
    pub fn reached_rate(&self) -> f64 {
        rate(self.reached.packets, self.offered.elapsed)
    }

    /// The download's rate during the flood as a share of its quiet rate.
    pub fn download_ratio(&self) -> f64 {
        if self.quiet_rate > 0.0 {
            self.flood_rate / self.quiet_rate
        } else {
            0.0
        }
    }

    /// Whether the appliance survived and nothing else went wrong.
    pub fn passed(&self) -> bool {
        matches!(self.survival, Survival::Survived(_)) && self.problems.is_empty()
    }
}

fn rate(count: u64, over: Duration) -> f64 {
    let seconds = over.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

impl fmt::Display for FloodOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: offered {:.1} kpps ({} frames in {:.1} s), {:.1} kpps reached the appliance ({} dropped at the tap); \
             download {:.1} MB/s during the flood vs {:.1} MB/s quiet ({:.2}x), longest stall {:.1} s; ",
            self.flood,
            self.offered_rate() / 1e3,
            self.offered.sent + self.offered.refused,
            self.offered.elapsed.as_secs_f64(),
            self.reached_rate() / 1e3,
            self.reached.dropped,
            self.flood_rate / 1e6,
            self.quiet_rate / 1e6,
            self.download_ratio(),
            self.longest_stall.as_secs_f64()
        )?;
        match &self.survival {
            Survival::Survived(after) => {
                write!(f, "survived (answered {:.1} s after", after.as_secs_f64())?;
                if let Some(resumed) = self.resumed_after {
                    write!(
                        f,
                        ", download moving again within {:.1} s",
                        resumed.as_secs_f64()
                    )?;
                }
                write!(f, ")")?;
            }
            Survival::Crashed(how) => write!(f, "CRASHED: {how}")?,
            Survival::Hung(report) => write!(f, "HUNG:\n{report}")?,
        }
        for problem in &self.problems {
            write!(f, "\n  problem: {problem}")?;
        }
        Ok(())
    }
}

/// The congestion control of the download's sender: loss-based, and one that any network
/// namespace may select as its default (the kernel only lets a namespace pick those listed in
/// `net.ipv4.tcp_allowed_congestion_control`; `reno` always is, `cubic` is not on these
/// machines).
const SENDER_CONGESTION_CONTROL: &str = "reno";

/// Makes the download's sender (the server in the uplink's namespace) use
/// [`SENDER_CONGESTION_CONTROL`] instead of the host's default, which may be BBR (it is on
/// these machines). After a minute of 95 % loss BBR's bandwidth model collapses: a stuck
/// download showed `bbr:(bw:7592bps …) cwnd:4` with 3.3 MB queued, creeping at a few kB/s for
/// minutes while the appliance forwarded everything it got. That is the sender's recovery,
/// not the appliance's; the soak measures the appliance.
fn loss_tolerant_sender(uplink: &TestHost) -> Outcome {
    let setting = format!("net.ipv4.tcp_congestion_control={SENDER_CONGESTION_CONTROL}");
    uplink.run_checked("sysctl", &["-w", &setting]).map(|_| ())
}

/// A booted appliance ready to be flooded.
pub struct SoakAppliance {
    /// The appliance and its hosts.
    pub appliance: TapAppliance,
    stream: StreamServer,
    client_path: FloodPath,
    uplink_path: FloodPath,
    /// The index of the next flood frame: each flood continues where the last left off, so
    /// every SYN is a new flow.
    next_frame: u64,
}

impl SoakAppliance {
    /// Boots the forwarding appliance on `machine` between real hosts and starts the
    /// download's server. `report_on_drop` prints the console when it is dropped.
    pub fn boot(machine: Machine, report_on_drop: bool) -> Outcome<SoakAppliance> {
        let appliance = TapAppliance::boot_on(machine, "", report_on_drop)?;
        loss_tolerant_sender(&appliance.uplink)?;
        let stream = StreamServer::start(
            appliance.uplink.namespace(),
            SocketAddrV4::new(INTERNET_SERVER, STREAM_PORT),
        )?;
        let mac = |nic: usize| EthernetAddress(MacAddress::for_nic(nic).0);
        let client_path = FloodPath {
            source_mac: LinkState::read(appliance.client(BETA_NIC)?)?.mac,
            source: host_address(BETA_NIC),
            appliance_mac: mac(BETA_NIC),
            target: INTERNET_SERVER,
            forwarded_port: None,
        };
        let uplink_path = FloodPath {
            source_mac: LinkState::read(&appliance.uplink)?.mac,
            source: host_address(UPLINK_NIC),
            appliance_mac: mac(UPLINK_NIC),
            target: appliance_address(UPLINK_NIC).address(),
            forwarded_port: Some(BETA_FORWARD_PORT),
        };
        Ok(SoakAppliance {
            appliance,
            stream,
            client_path,
            uplink_path,
            next_frame: 0,
        })
    }

    /// The host a flood from `origin` is sent from, and the path its frames take.
    fn sender(&self, origin: Origin) -> Outcome<(&TestHost, FloodPath)> {
        Ok(match origin {
            Origin::Client => (self.appliance.client(BETA_NIC)?, self.client_path),
            Origin::Uplink => (&self.appliance.uplink, self.uplink_path),
        })
    }

    /// Runs `flood` for `plan.flood` during a download and checks the appliance after it.
    /// An `Err` is a harness failure; what the appliance did wrong is in the outcome.
    pub fn run_flood(&mut self, flood: Flood, plan: SoakPlan) -> Outcome<FloodOutcome> {
        let mut problems = Vec::new();
        let mut download = Download::start(self.appliance.client(ALPHA_NIC)?, &self.stream)?;
        if let Err(failure) = download.wait_for(1, DOWNLOAD_START_TIMEOUT) {
            // Not flooded yet: either the appliance stopped before (that is the outcome), or
            // the harness failed.
            let survival = self.survival(plan.recovery);
            if let Survival::Survived(_) = survival {
                return Err(failure);
            }
            return Ok(FloodOutcome {
                flood,
                offered: SendReport::default(),
                reached: TransmitCounters::default(),
                quiet_rate: 0.0,
                flood_rate: 0.0,
                longest_stall: Duration::ZERO,
                resumed_after: None,
                survival,
                problems: vec![format!("before the flood: {failure}")],
            });
        }
        std::thread::sleep(DOWNLOAD_WARM_UP);
        let quiet_start = download.progress();
        std::thread::sleep(plan.quiet);
        let quiet_end = download.progress();

        let (host, path) = self.sender(flood.origin)?;
        let stats_mark = self.appliance.vm.console().lines().len();
        let link_before = LinkState::read(host)?.transmit;
        let frames = FloodFrames::new(flood, path);
        let blast = Blast {
            namespace: host.namespace(),
            interface: host.tap(),
            first: self.next_frame,
            duration: plan.flood,
            rate: plan.rate,
        };
        let flood_start = download.progress();
        let mut longest_stall = Duration::ZERO;
        let offered = std::thread::scope(|scope| {
            let sender = scope.spawn(|| blast.send(|index, buffer| frames.emit(index, buffer)));
            while !sender.is_finished() {
                std::thread::sleep(WATCH_INTERVAL);
                longest_stall = longest_stall.max(download.progress().idle);
            }
            sender
                .join()
                .unwrap_or_else(|_| Err(Failure::new("the flood sender panicked")))
        })?;
        let flood_end = download.progress();
        let reached = LinkState::read(host)?.transmit.since(link_before);
        self.next_frame = offered.next;

        let survival = self.survival(plan.recovery);
        let mut resumed_after = None;
        if let Survival::Survived(_) = survival {
            if let Err(problem) = self.stats_line_since(stats_mark) {
                problems.push(problem.to_string());
            }
            match download.wait_for(flood_end.bytes + 1, DOWNLOAD_RESUME_TIMEOUT) {
                Ok(()) => resumed_after = Some(flood_end.at.elapsed()),
                Err(problem) => problems.push(format!(
                    "the download did not resume after the flood: {problem}"
                )),
            }
            match download.finish_or_diagnose(&self.stream, DOWNLOAD_END_TIMEOUT, || {
                self.connection_ends(stats_mark)
            }) {
                Ok(report) => {
                    if let Err(problem) = report.check_intact() {
                        problems.push(problem.to_string());
                    }
                }
                Err(problem) => problems.push(problem.to_string()),
            }
        }
        Ok(FloodOutcome {
            flood,
            offered,
            reached,
            quiet_rate: quiet_end.rate_since(&quiet_start),
            flood_rate: flood_end.rate_since(&flood_start),
            longest_stall,
            resumed_after,
            survival,
            problems,
        })
    }

    /// What a stuck download looks like from both ends and from the appliance: the TCP
    /// sockets of the client and of the server (`ss -tinm`: retransmission timer, backoff,
    /// unacknowledged and lost segments, windows) and the appliance's stats lines since
    /// console line `mark` — enough to tell a sender backing off from packets being lost
    /// or dropped on the way.
    fn connection_ends(&self, mark: usize) -> String {
        let sockets = |host: Option<&TestHost>, port: &str| match host {
            Some(host) => host
                .run("ss", &["-tinmo", "state", "established", port])
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .unwrap_or_else(|failure| failure.to_string()),
            None => "no such host".to_string(),
        };
        let server_port = format!("( sport = :{STREAM_PORT} )");
        let client_port = format!("( dport = :{STREAM_PORT} )");
        let stats: Vec<String> = self.appliance.vm.console().lines()[mark..]
            .iter()
            .filter(|line| line.starts_with("moat: stats"))
            .cloned()
            .collect();
        format!(
            "  server's socket: {}\n  client's socket: {}\n  appliance since the flood:\n    {}",
            sockets(Some(&self.appliance.uplink), &server_port),
            sockets(self.appliance.client(ALPHA_NIC).ok(), &client_port),
            stats.join("\n    ")
        )
    }

    /// Whether the appliance answers again within `recovery`: crashed, hung, or how long it
    /// took.
    fn survival(&self, recovery: Duration) -> Survival {
        let started = Instant::now();
        let deadline = started + recovery;
        loop {
            if let Some(crash) = self.crash() {
                return Survival::Crashed(crash);
            }
            if self.answers().is_ok() {
                return Survival::Survived(started.elapsed());
            }
            if Instant::now() >= deadline {
                // Once more: a crash that came while we waited is not a hang.
                if let Some(crash) = self.crash() {
                    return Survival::Crashed(crash);
                }
                let qemu = QemuProcess::find_by_tap(self.appliance.uplink.tap());
                return Survival::Hung(Box::new(HangReport::gather(&self.appliance.vm, qemu)));
            }
            std::thread::sleep(PROBE_PAUSE);
        }
    }

    /// A fatal report on the console, or QEMU gone.
    fn crash(&self) -> Option<String> {
        let console = self.appliance.vm.console();
        let lines = console.lines();
        let closed = console
            .wait_until("", Duration::ZERO, |snapshot| Some(Ok(snapshot.closed)))
            .unwrap_or(false);
        let how = match lines.iter().find(|line| line.starts_with(FATAL_PREFIX)) {
            Some(fatal) => fatal.clone(),
            // With -no-reboot, a watchdog reset of a stopped main loop ends QEMU too.
            None if closed => "QEMU exited (a fatal error, or the watchdog's reset)".to_string(),
            None => return None,
        };
        let tail = &lines[lines.len().saturating_sub(CRASH_CONSOLE_TAIL)..];
        Some(format!("{how}; console tail:\n    {}", tail.join("\n    ")))
    }

    /// One round of probes: the appliance answers ping on both client networks, and beta's
    /// new connection to the internet's web server is forwarded.
    fn answers(&self) -> Outcome {
        for nic in [ALPHA_NIC, BETA_NIC] {
            let summary = self
                .appliance
                .client(nic)?
                .ping(appliance_address(nic).address(), 1)?;
            if summary.received == 0 {
                return Err(Failure::new(format!("no ping reply on nic{nic}")));
            }
        }
        let url = format!("http://{INTERNET_SERVER}:{WEB_PORT}/");
        match curl(
            self.appliance.client(BETA_NIC)?,
            &url,
            PROBE_TIMEOUT,
            PROBE_TIMEOUT,
        )?
        .outcome
        {
            Fetch::Body(_) => Ok(()),
            other => Err(Failure::new(format!("{url} from beta: {other:?}"))),
        }
    }

    /// Waits for a stats line after console line `mark`.
    fn stats_line_since(&self, mark: usize) -> Outcome {
        self.appliance.vm.console().wait_until(
            "a stats line since the flood began (one comes at most every 5 s while counters change)",
            STATS_TIMEOUT,
            |snapshot| {
                snapshot
                    .lines
                    .iter()
                    .skip(mark)
                    .any(|line| line.starts_with(STATS_PREFIX))
                    .then_some(Ok(()))
            },
        )
    }
}
