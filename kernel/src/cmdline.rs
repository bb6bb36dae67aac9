//! Kernel command-line options (`moat.*`). Words without the `moat.` prefix belong to
//! others (the hypervisor adds its own, e.g. `virtio_mmio.device=`) and are left alone; a
//! `moat.` word this kernel does not understand, or with a value it cannot use, is reported
//! on the console and the default is kept.

use core::fmt;

use dataplane::capture::{CaptureMode, DEFAULT_SNAPLEN};

use crate::devices::watchdog::{MAX_TIMEOUT_SECONDS, MIN_TIMEOUT_SECONDS};

/// A deliberate fault, for the tests that prove faults fail closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// Read an unmapped page.
    PageFault,
    /// Call `panic!`.
    Panic,
    /// Stop the main loop: spin forever with interrupts off (the watchdog must act).
    Hang,
    /// Make each received frame cost 200 µs more, so that any flood keeps the main loop
    /// busy without an idle round (the watchdog must still be petted).
    SlowFrames,
}

/// The hardware watchdog's setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogSetting {
    /// Act after this many seconds without a pet.
    Seconds(u32),
    /// Leave the device stopped.
    Off,
}

/// How often the stats and counter lines are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsSetting {
    /// Every this many seconds (when a counter changed).
    Seconds(u32),
    /// Only at shutdown.
    Off,
}

/// Default stats interval (seconds).
pub const DEFAULT_STATS_SECONDS: u32 = 5;
/// Longest stats interval accepted (seconds): a day.
pub const MAX_STATS_SECONDS: u32 = 86_400;

/// Default watchdog timeout: a few seconds, well above the main loop's longest sleep.
pub const DEFAULT_WATCHDOG_SECONDS: u32 = 5;

/// Options the kernel understands.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `moat.log=debug`: log everything, drivers included.
    pub verbose: bool,
    /// `moat.fault=page|panic|hang|slow` (only honoured in images built with
    /// `fault-injection`).
    pub fault: Option<InjectedFault>,
    /// `moat.max-states=N`: cap the state table at N flows (default: sized from RAM).
    pub max_states: Option<usize>,
    /// `moat.watchdog=SECONDS|off` (default [`DEFAULT_WATCHDOG_SECONDS`]).
    pub watchdog: WatchdogSetting,
    /// `moat.stats=SECONDS|off` (default [`DEFAULT_STATS_SECONDS`]).
    pub stats: StatsSetting,
    /// `moat.pcap=off|drops|drops+passes`: what the packet capture records when the
    /// machine has a port for it (default: drops).
    pub pcap: CaptureMode,
    /// `moat.pcap-snaplen=N`: bytes of each frame the capture keeps (default: whole frames).
    pub pcap_snaplen: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            verbose: false,
            fault: None,
            max_states: None,
            watchdog: WatchdogSetting::Seconds(DEFAULT_WATCHDOG_SECONDS),
            stats: StatsSetting::Seconds(DEFAULT_STATS_SECONDS),
            pcap: CaptureMode::Drops,
            pcap_snaplen: DEFAULT_SNAPLEN,
        }
    }
}

/// A `moat.` word that could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionError<'a> {
    /// No option of that name.
    Unknown(&'a str),
    /// The option exists; its value does not fit.
    BadValue {
        /// The whole word as given.
        word: &'a str,
        /// What the option takes.
        expected: &'static str,
    },
}

impl fmt::Display for OptionError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            OptionError::Unknown(word) => write!(
                f,
                "unknown option `{word}` ignored (moat.log, moat.max-states, moat.watchdog, moat.stats, moat.pcap, moat.pcap-snaplen, moat.fault)"
            ),
            OptionError::BadValue { word, expected } => {
                write!(f, "`{word}` ignored: the value must be {expected}; the default is kept")
            }
        }
    }
}

impl Options {
    /// Reads the options out of `cmdline`, telling `report` about each `moat.` word that
    /// cannot be used (that option keeps its default).
    pub fn parse<'a>(cmdline: &'a str, mut report: impl FnMut(OptionError<'a>)) -> Options {
        let mut options = Options::default();
        for word in cmdline.split_whitespace() {
            let Some(option) = word.strip_prefix("moat.") else {
                continue;
            };
            let (name, value) = option.split_once('=').unwrap_or((option, ""));
            let bad = |expected| OptionError::BadValue { word, expected };
            match name {
                "log" => match value {
                    "debug" => options.verbose = true,
                    _ => report(bad("`debug`")),
                },
                "fault" => match value {
                    "page" => options.fault = Some(InjectedFault::PageFault),
                    "panic" => options.fault = Some(InjectedFault::Panic),
                    "hang" => options.fault = Some(InjectedFault::Hang),
                    "slow" => options.fault = Some(InjectedFault::SlowFrames),
                    _ => report(bad("`page`, `panic`, `hang` or `slow`")),
                },
                "max-states" => match value.parse::<usize>() {
                    Ok(n) if n > 0 => options.max_states = Some(n),
                    _ => report(bad("a whole number of flows, at least 1")),
                },
                "watchdog" => match value {
                    "off" => options.watchdog = WatchdogSetting::Off,
                    _ => match value.parse::<u32>() {
                        Ok(s) if (MIN_TIMEOUT_SECONDS..=MAX_TIMEOUT_SECONDS).contains(&s) => {
                            options.watchdog = WatchdogSetting::Seconds(s)
                        }
                        _ => report(bad(WATCHDOG_VALUES)),
                    },
                },
                "stats" => match value {
                    "off" => options.stats = StatsSetting::Off,
                    _ => match value.parse::<u32>() {
                        Ok(s) if (1..=MAX_STATS_SECONDS).contains(&s) => {
                            options.stats = StatsSetting::Seconds(s)
                        }
                        _ => report(bad("an interval in seconds from 1 to 86400, or `off`")),
                    },
                },
                "pcap" => match value {
                    "off" => options.pcap = CaptureMode::Off,
                    "drops" => options.pcap = CaptureMode::Drops,
                    "drops+passes" => options.pcap = CaptureMode::DropsAndLoggedPasses,
                    _ => report(bad("`off`, `drops` or `drops+passes`")),
                },
                "pcap-snaplen" => match value.parse::<u32>() {
                    Ok(n) if (MIN_SNAPLEN..=DEFAULT_SNAPLEN).contains(&n) => {
                        options.pcap_snaplen = n
                    }
                    _ => report(bad("a number of bytes from 64 to 1514")),
                },
                _ => report(OptionError::Unknown(word)),
            }
        }
        options
    }
}

/// The shortest snap length: Ethernet, IPv4 and TCP headers with some options.
const MIN_SNAPLEN: u32 = 64;
const _: () = assert!(DEFAULT_SNAPLEN == 1514);

/// What `moat.watchdog=` takes, for the report.
const WATCHDOG_VALUES: &str = "a timeout in seconds from 2 to 600, or `off`";
const _: () = assert!(MIN_TIMEOUT_SECONDS == 2 && MAX_TIMEOUT_SECONDS == 600);
