//! Kernel command-line options (`moat.*`). Words without the `moat.` prefix belong to
//! others (the hypervisor adds its own, e.g. `virtio_mmio.device=`) and are left alone; a
//! `moat.` word this kernel does not understand, or with a value it cannot use, is reported
//! on the console and the default is kept.

use core::fmt;

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
}

impl Default for Options {
    fn default() -> Options {
        Options {
            verbose: false,
            fault: None,
            max_states: None,
            watchdog: WatchdogSetting::Seconds(DEFAULT_WATCHDOG_SECONDS),
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
                "unknown option `{word}` ignored (moat.log, moat.max-states, moat.watchdog, moat.fault)"
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
                _ => report(OptionError::Unknown(word)),
            }
        }
        options
    }
}

/// What `moat.watchdog=` takes, for the report.
const WATCHDOG_VALUES: &str = "a timeout in seconds from 2 to 600, or `off`";
const _: () = assert!(MIN_TIMEOUT_SECONDS == 2 && MAX_TIMEOUT_SECONDS == 600);
