//! What a hung appliance is doing, gathered from outside without stopping it: the end of its
//! console, how busy its QEMU process is, where its CPU is (a few samples of `info
//! registers`, named with the kernel's symbols), which code addresses sit on its stack, and
//! the state of its interrupt controllers and virtio queues (`info lapic`, `info pic`,
//! `info virtio-queue-status`).
//!
//! A spin deadlock shows as a busy QEMU, interrupts off, and the same function in every
//! sample; a CPU waiting for an interrupt that never comes as an idle QEMU and `HLT=1`, and
//! then the controllers say whether a line is masked, a vector stuck in service, or a queue
//! stopped notifying.

use std::fmt;
use std::time::{Duration, Instant};

use crate::kernel_symbols::KernelSymbols;
use crate::qemu_process::QemuProcess;
use crate::vm::Vm;
use crate::Outcome;

/// Console lines shown.
const CONSOLE_TAIL: usize = 15;
/// CPU samples taken, and the time between them.
const SAMPLES: usize = 5;
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
/// Stack words scanned for code addresses.
const STACK_WORDS: usize = 96;

/// One look at the guest CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    /// Instruction pointer.
    pub rip: u64,
    /// Stack pointer.
    pub rsp: u64,
    /// Flags register.
    pub rflags: u64,
    /// Whether the CPU is halted (`hlt`).
    pub halted: bool,
}

impl CpuSample {
    /// Reads the `RIP=`, `RSP=`, `RFL=` and `HLT=` fields of `info registers` output.
    pub fn parse(registers: &str) -> Option<CpuSample> {
        let field = |name: &str| {
            registers
                .split_whitespace()
                .find_map(|word| word.strip_prefix(name))
                .and_then(|value| u64::from_str_radix(value, 16).ok())
        };
        Some(CpuSample {
            rip: field("RIP=")?,
            rsp: field("RSP=")?,
            rflags: field("RFL=")?,
            halted: field("HLT=")? != 0,
        })
    }

    /// Whether maskable interrupts are enabled (RFLAGS.IF).
    pub fn interrupts_enabled(&self) -> bool {
        self.rflags & (1 << 9) != 0
    }
}

/// Everything gathered about a hang.
#[derive(Debug, Clone, Default)]
pub struct HangReport {
    /// The last console lines.
    pub console_tail: Vec<String>,
    /// QEMU's CPU use over one sampling period (1.0 = one core), if it could be read.
    pub qemu_cpu: Option<f64>,
    /// The CPU samples, each with the function its RIP is in.
    pub samples: Vec<(CpuSample, Option<String>)>,
    /// Functions that stack words of the last sample point into, innermost first.
    pub stack: Vec<String>,
    /// The interrupt controllers' and virtio queues' state, the lines that matter.
    pub devices: Vec<String>,
    /// What could not be gathered.
    pub problems: Vec<String>,
}

impl HangReport {
    /// Gathers the report on `vm`, whose process is `qemu`; what fails to be read is
    /// noted, never fatal.
    pub fn gather(vm: &Vm, qemu: Outcome<QemuProcess>) -> HangReport {
        let mut report = HangReport::default();
        let lines = vm.console().lines();
        report.console_tail = lines[lines.len().saturating_sub(CONSOLE_TAIL)..].to_vec();
        let symbols = match vm.kernel_elf().and_then(|elf| KernelSymbols::read(&elf)) {
            Ok(symbols) => symbols,
            Err(problem) => {
                report
                    .problems
                    .push(format!("no kernel symbols: {problem}"));
                KernelSymbols::default()
            }
        };
        let qemu = qemu
            .map_err(|problem| report.problems.push(format!("no QEMU CPU time: {problem}")))
            .ok();
        let cpu_time = || qemu.as_ref().and_then(|qemu| qemu.cpu_time().ok());
        let cpu_before = (Instant::now(), cpu_time());
        for _ in 0..SAMPLES {
            match vm.monitor("info registers") {
                Ok(registers) => match CpuSample::parse(&registers) {
                    Some(sample) => report.samples.push((sample, symbols.name(sample.rip))),
                    None => report
                        .problems
                        .push(format!("unreadable `info registers`: {registers:.300}")),
                },
                Err(problem) => report.problems.push(format!("info registers: {problem}")),
            }
            std::thread::sleep(SAMPLE_INTERVAL);
        }
        if let (Some(before), Some(after)) = (cpu_before.1, cpu_time()) {
            report.qemu_cpu =
                Some((after - before).as_secs_f64() / cpu_before.0.elapsed().as_secs_f64());
        }
        if let Some((last, _)) = report.samples.last() {
            match vm.monitor(&format!("x/{STACK_WORDS}gx {:#x}", last.rsp)) {
                Ok(dump) => report.stack = code_addresses(&dump, &symbols),
                Err(problem) => report.problems.push(format!("stack dump: {problem}")),
            }
        }
        report.gather_devices(vm);
        report
    }

    /// The LAPIC's timer and in-service/requested vectors, the I/O APIC's routed pins and
    /// pending state, and each virtio device's first two queues (receive and transmit).
    fn gather_devices(&mut self, vm: &Vm) {
        let mut ask = |command: &str| match vm.monitor(command) {
            Ok(printed) => Some(printed),
            Err(problem) => {
                self.problems.push(format!("{command}: {problem}"));
                None
            }
        };
        let lapic = ask("info lapic").unwrap_or_default();
        let pic = ask("info pic").unwrap_or_default();
        let virtio = ask("info virtio").unwrap_or_default();
        let mut devices = vec![format!("info lapic: {}", lapic_summary(&lapic))];
        devices.extend(
            ioapic_summary(&pic)
                .into_iter()
                .map(|line| format!("info pic: {line}")),
        );
        for path in virtio_paths(&virtio) {
            for queue in [0, 1] {
                let command = format!("info virtio-queue-status {path} {queue}");
                if let Some(status) = ask(&command) {
                    devices.push(format!("{path} queue {queue}: {}", queue_summary(&status)));
                }
            }
        }
        self.devices = devices;
    }
}

/// The LAPIC timer's mode and count, and the in-service and requested vectors.
fn lapic_summary(printed: &str) -> String {
    printed
        .lines()
        .map(str::trim)
        .filter(|line| {
            ["LVTT", "Timer", "ISR", "IRR", "APR"]
                .iter()
                .any(|prefix| line.starts_with(prefix))
        })
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first I/O APIC's routed pins (vector set) and its IRR and Remote IRR lines.
fn ioapic_summary(printed: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in printed.lines().map(str::trim) {
        if line.starts_with("pic") || (line.starts_with("ioapic") && !lines.is_empty()) {
            break;
        }
        let routed = line.starts_with("pin") && !line.contains(" vec=0 ");
        if routed || line.starts_with("IRR") || line.starts_with("Remote IRR") {
            lines.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    lines
}

/// The QOM paths of the virtio devices `info virtio` lists (`PATH [virtio-net]`).
fn virtio_paths(printed: &str) -> Vec<String> {
    printed
        .lines()
        .filter_map(|line| line.trim().split_once(" [virtio-"))
        .map(|(path, _)| path.to_string())
        .collect()
}

/// `info virtio-queue-status` folded onto one line.
fn queue_summary(printed: &str) -> String {
    printed
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The functions named by the 64-bit words of a monitor memory dump
/// (`addr: 0x... 0x...` lines), in order, consecutive repeats folded.
fn code_addresses(dump: &str, symbols: &KernelSymbols) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in dump.lines() {
        let Some((_, words)) = line.split_once(':') else {
            continue;
        };
        for word in words.split_whitespace() {
            let value = word
                .strip_prefix("0x")
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            if let Some(name) = value.and_then(|value| symbols.name(value)) {
                if names.last() != Some(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

impl fmt::Display for HangReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cpu) = self.qemu_cpu {
            writeln!(f, "  QEMU CPU while hung: {:.0}% of a core", cpu * 100.0)?;
        }
        for (sample, name) in &self.samples {
            writeln!(
                f,
                "  CPU at {:#x} ({}), interrupts {}, {}",
                sample.rip,
                name.as_deref().unwrap_or("outside the kernel's functions"),
                if sample.interrupts_enabled() {
                    "on"
                } else {
                    "off"
                },
                if sample.halted { "halted" } else { "running" }
            )?;
        }
        if !self.stack.is_empty() {
            writeln!(
                f,
                "  code addresses on its stack: {}",
                self.stack.join(" <- ")
            )?;
        }
        for problem in &self.problems {
            writeln!(f, "  ({problem})")?;
        }
        writeln!(f, "  console tail:")?;
        for line in &self.console_tail {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_registers_gives_the_instruction_pointer_flags_and_halt_state() {
        let registers = "RAX=0000000000000001 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000\r\n\
            RSI=0000000000000000 RDI=0000000000000000 RBP=0000000000000000 RSP=0000000000187f28\r\n\
            RIP=0000000000105f3a RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\r\n";
        let sample = CpuSample::parse(registers).unwrap();
        assert_eq!(sample.rip, 0x105f3a);
        assert_eq!(sample.rsp, 0x187f28);
        assert!(!sample.interrupts_enabled());
        assert!(!sample.halted);
        assert_eq!(CpuSample::parse("QEMU 7.2 monitor"), None);
    }

    #[test]
    fn the_controllers_state_is_cut_to_the_lines_that_matter() {
        let lapic = "dumping local APIC state for CPU 0 \r\n\r\n\
            LVT0\t 0x00010000 active-hi edge  masked                      Fixed  (vec 0)\r\n\
            LVTT\t 0x00000020 active-hi edge                 one-shot     Fixed  (vec 32)\r\n\
            Timer\t DCR=0x3 (divide by 16) initial_count = 62501552 current_count = 20214065\r\n\
            ISR\t (none)\r\nIRR\t (none)\r\n\r\nAPR 0x00 TPR 0x00 DFR 0x0f LDR 0x00 PPR 0x00\r\n";
        assert_eq!(
            lapic_summary(lapic),
            "LVTT 0x00000020 active-hi edge one-shot Fixed (vec 32); \
             Timer DCR=0x3 (divide by 16) initial_count = 62501552 current_count = 20214065; \
             ISR (none); IRR (none); APR 0x00 TPR 0x00 DFR 0x0f LDR 0x00 PPR 0x00"
        );
        let pic = "ioapic0: ver=0x20 id=0x00 sel=0x3e (redir[23])\r\n\
            pin 0  0x0000000000010000 dest=0 vec=0   active-hi edge  masked fixed  physical\r\n\
            pin 23 0x000000000000805f dest=0 vec=95  active-hi level        fixed  physical\r\n\
            IRR      (none)\r\n  Remote IRR (none)\r\n\
            pic1: irr=00 imr=ff isr=00\r\nioapic0: ver=0x20\r\n  pin 1 0x1 dest=0 vec=33\r\n";
        assert_eq!(
            ioapic_summary(pic),
            [
                "pin 23 0x000000000000805f dest=0 vec=95 active-hi level fixed physical",
                "IRR (none)",
                "Remote IRR (none)"
            ]
        );
        assert_eq!(
            virtio_paths("/machine/peripheral-anon/device[0] [virtio-net]\r\n"),
            ["/machine/peripheral-anon/device[0]"]
        );
    }

    #[test]
    fn stack_words_that_point_into_code_are_named_in_order() {
        let symbols = KernelSymbols::parse(
            "0000000000100000 0000000000000100 T spin_lock\n\
             0000000000100100 0000000000000100 T interrupt_dispatch\n",
        );
        let dump = "0000000000187f28: 0x0000000000100010 0x0000000000000007\r\n\
                    0000000000187f38: 0x0000000000100010 0x0000000000100180\r\n";
        assert_eq!(
            code_addresses(dump, &symbols),
            ["spin_lock+0x10", "interrupt_dispatch+0x80"]
        );
    }
}
