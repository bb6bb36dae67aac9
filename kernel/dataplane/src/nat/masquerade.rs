//! Masquerade (source NAT out of the uplink): which `nat` rule applies, and which source
//! port a flow gets.

use core::fmt;

use smoltcp::time::Instant;
use smoltcp::wire::IpAddress;

use super::policy_match::{addr_in, nic_in};
use crate::policy::Policy;
use crate::rng::SplitMix64;
use crate::state::{FlowTuple, StateTable};

/// The first `nat` rule of `policy` (its index in `policy.masquerade`) for a flow from
/// `src` arriving on `in_nic` and leaving through `out_nic`.
pub fn masquerade_rule(policy: &Policy, in_nic: u8, src: IpAddress, out_nic: u8) -> Option<usize> {
    policy.masquerade.iter().position(|m| {
        m.out_nic == out_nic && nic_in(policy, m.in_nic, in_nic) && addr_in(policy, m.src, src)
    })
}

/// How masquerade picks ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasqueradeConfig {
    /// Lowest port (or ICMP echo identifier) given to a flow whose own is taken.
    pub first_port: u16,
    /// Highest such port.
    pub last_port: u16,
    /// Random ports tried before the flow is refused.
    pub attempts: u32,
    /// Seed of the port generator (the kernel seeds it at boot).
    pub seed: u64,
}

impl MasqueradeConfig {
    /// Ports 1024–65535, 128 attempts, the given seed.
    pub fn seeded(seed: u64) -> MasqueradeConfig {
        MasqueradeConfig {
            first_port: 1024,
            last_port: 65535,
            attempts: 128,
            seed,
        }
    }
}

/// Why a flow cannot be masqueraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatRefused {
    /// No free port (or, for a protocol without ports, the address pair is taken) within the
    /// allowed attempts.
    PortsExhausted,
}

impl NatRefused {
    /// A short name for logs and counters.
    pub fn as_str(&self) -> &'static str {
        match self {
            NatRefused::PortsExhausted => "nat-ports-exhausted",
        }
    }
}

impl fmt::Display for NatRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatRefused::PortsExhausted => f.write_str("no free NAT port for this destination"),
        }
    }
}

/// Masquerade counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatStats {
    /// Flows that kept their own source port.
    pub kept_port: u64,
    /// Flows given another port because theirs was taken.
    pub remapped_port: u64,
    /// Flows refused: no free port.
    pub exhausted: u64,
}

/// A port offset in `0..n` (`n > 0`) from `rng`, by multiplication rather than remainder
/// (no bias towards low ports).
fn port_offset(rng: &mut SplitMix64, n: u32) -> u32 {
    (((rng.next_u64() >> 32) * n as u64) >> 32) as u32
}

/// Chooses masqueraded source ports. See [`Masquerader::masquerade`].
#[derive(Clone, Debug)]
pub struct Masquerader {
    config: MasqueradeConfig,
    rng: SplitMix64,
    stats: NatStats,
}

impl Masquerader {
    /// A masquerader with `config`.
    pub fn new(config: MasqueradeConfig) -> Masquerader {
        let config = MasqueradeConfig {
            first_port: config.first_port.min(config.last_port),
            last_port: config.first_port.max(config.last_port),
            ..config
        };
        Masquerader {
            config,
            rng: SplitMix64::new(config.seed),
            stats: NatStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> NatStats {
        self.stats
    }

    /// `flow` (as translated so far) leaving with source `addr`: it keeps its source port
    /// (ICMP echo identifier) when no live state of `table` owns the resulting reply tuple;
    /// otherwise it gets a random free port from the configured range, trying at most
    /// `attempts` ports (all of them, from a random start, when the range is that small).
    /// A flow whose ports may not change (SCTP, see [`FlowTuple::ports_remappable`]) or
    /// that has none keeps its tuple if the reply tuple is free. Refusals are counted.
    pub fn masquerade(
        &mut self,
        table: &StateTable,
        flow: FlowTuple,
        addr: IpAddress,
        now: Instant,
    ) -> Result<FlowTuple, NatRefused> {
        let is_free = |port: u16| {
            let candidate = flow.with_source(addr, port);
            (!table.is_taken(&candidate.reversed(), now)).then_some(candidate)
        };
        if let Some(kept) = is_free(flow.src_port) {
            self.stats.kept_port += 1;
            return Ok(kept);
        }
        if flow.ports_remappable() {
            let first = self.config.first_port as u32;
            let size = self.config.last_port as u32 - first + 1;
            let found = if size <= self.config.attempts {
                let start = port_offset(&mut self.rng, size);
                (0..size).find_map(|i| is_free((first + (start + i) % size) as u16))
            } else {
                (0..self.config.attempts)
                    .find_map(|_| is_free((first + port_offset(&mut self.rng, size)) as u16))
            };
            if let Some(remapped) = found {
                self.stats.remapped_port += 1;
                return Ok(remapped);
            }
        }
        self.stats.exhausted += 1;
        Err(NatRefused::PortsExhausted)
    }
}
