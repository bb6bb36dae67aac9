//! Kernel command-line options (`moat.*`). Unknown words are ignored (the hypervisor adds
//! its own, e.g. `virtio_mmio.device=`).

/// A deliberate fault, for the tests that prove faults fail closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFault {
    /// Read an unmapped page.
    PageFault,
    /// Call `panic!`.
    Panic,
}

/// Options the kernel understands.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `moat.log=debug`: log everything, drivers included.
    pub verbose: bool,
    /// `moat.fault=page|panic` (only honoured in images built with `fault-injection`).
    pub fault: Option<InjectedFault>,
    /// `moat.max-states=N`: cap the state table at N flows (default: sized from RAM).
    pub max_states: Option<usize>,
}

impl Options {
    /// Reads the options out of `cmdline`.
    pub fn parse(cmdline: &str) -> Options {
        let mut options = Options::default();
        for word in cmdline.split_whitespace() {
            match word {
                "moat.log=debug" => options.verbose = true,
                "moat.fault=page" => options.fault = Some(InjectedFault::PageFault),
                "moat.fault=panic" => options.fault = Some(InjectedFault::Panic),
                _ => {
                    if let Some(n) = word
                        .strip_prefix("moat.max-states=")
                        .and_then(|n| n.parse().ok())
                    {
                        options.max_states = Some(n);
                    }
                }
            }
        }
        options
    }
}
