//! Bringing the machine up and running the appliance: the boot sequence and the main loop.

use alloc::vec::Vec;

use dataplane::appliance::ApplianceOptions;
use dataplane::capture::{CaptureConfig, CaptureMode, CAPTURE_SHARES};
use dataplane::console_queue::RetryDelay;
use dataplane::keys::ApplianceKeys;
use dataplane::state::StateTable;
use dataplane::{Appliance, ApplianceConfig};
use smoltcp::time::Duration;
use smoltcp::wire::EthernetAddress;

use crate::acpi::{self, power};
use crate::boot::BootInfo;
use crate::cmdline::{Options, StatsSetting, WatchdogSetting};
use crate::console::Pumped;
use crate::devices::pcap_port::PcapPort;
use crate::devices::pci::{self, PciBus};
use crate::devices::virtio::net::features::{self, Offloads};
use crate::devices::virtio::net::set::{self as nic_set, NicSink};
use crate::devices::virtio::{self, FoundNic};
use crate::devices::watchdog::{self, Watchdog};
use crate::devices::{ioapic, lapic, pic};
use crate::entropy::Entropy;
use crate::interrupts::{lines, without_interrupts};
use crate::{console, embedded_policy, fatal, fault, interrupts, memory, println, time, VERSION};

/// Boots the platform, brings up the NICs and runs the appliance forever.
pub fn run(boot: &BootInfo) -> ! {
    match embedded_policy::identity() {
        Ok((name, digest)) => println!("moat {VERSION}: ruleset {name} sha256:{digest}"),
        Err(e) => {
            println!("moat {VERSION}: no usable ruleset");
            fatal::stop(format_args!("{e}"))
        }
    }
    // After the banner, so that the banner stays the first line and each report follows it.
    let boot_options = &Options::parse(boot.cmdline(), |problem| log::warn!("{problem}"));
    console::set_verbose(boot_options.verbose);
    time::checkpoint("banner");
    interrupts::init();
    time::checkpoint("interrupt table");
    let memory = memory::init(boot).unwrap_or_else(|e| fatal::stop(format_args!("{e}")));
    time::checkpoint("memory");
    let policy = embedded_policy::load(memory.policy_at)
        .unwrap_or_else(|e| fatal::stop(format_args!("{e}")));
    memory::release_policy(&memory);
    time::checkpoint("policy");
    let firmware = acpi::discover(boot.rsdp).unwrap_or_else(|e| fatal::stop(format_args!("{e}")));
    time::checkpoint("acpi tables");

    pic::disable();
    if let Err(e) = lapic::init(firmware.lapic_address) {
        fatal::stop(format_args!("cannot map the local APIC: {e}"));
    }
    if let Err((address, e)) =
        without_interrupts(|off| ioapic::init(off, firmware.ioapics().copied()))
    {
        fatal::stop(format_args!("cannot map the I/O APIC at {address:#x}: {e}"));
    }
    time::checkpoint("interrupt controllers");
    let clock = time::calibrate();
    time::checkpoint("clock calibration");
    let button = power::init(&firmware);
    time::checkpoint("power button");
    println!(
        "moat: boot {}, {} MiB RAM ({} MiB heap), tsc {} MHz, lapic timer {} MHz{}, power button {}",
        boot.protocol,
        memory.usable >> 20,
        (memory.heap + memory.policy_spare) >> 20,
        clock.tsc_hz / 1_000_000,
        clock.lapic_hz / 1_000_000,
        if clock.measured { "" } else { " (assumed: no PIT)" },
        button
    );
    if memory.ignored_high > 0 {
        log::warn!(
            "{} MiB of RAM above 4 GiB is not used",
            memory.ignored_high >> 20
        );
    }

    log::debug!("command line: {}", boot.cmdline());
    let mut devices = Vec::new();
    let mut skipped = Vec::new();
    let mut pci = PciBus::scan(&firmware);
    pci::assign::assign_unassigned(&mut pci, &firmware, boot.regions());
    time::checkpoint("pci scan");
    virtio::discover_pci(&mut pci, &firmware, &mut devices, &mut skipped);
    virtio::discover_mmio(boot.cmdline(), &firmware, &mut devices, &mut skipped);
    time::checkpoint("virtio discovery");
    let mut nics: Vec<FoundNic> = Vec::new();
    virtio::bring_up(devices, memory::heap::free_bytes(), &mut nics, &mut skipped);
    time::checkpoint("nic bring-up");
    for s in &skipped {
        log::warn!("{} skipped: {}", s.location, s.reason);
    }
    if nics.is_empty() {
        log::warn!("no virtio-net NIC found: nothing to forward");
    }

    let macs: Vec<EthernetAddress> = nics.iter().map(|n| EthernetAddress(n.nic.mac())).collect();
    let mut config = ApplianceConfig::from_policy(policy, &macs);
    for (offloads, found) in config.offloads.iter_mut().zip(&nics) {
        *offloads = features::transmit_offloads(found.nic.accepted());
    }
    for (i, found) in nics.iter().enumerate() {
        let addressing = match (config.nics[i].ipv4, config.nics[i].dhcp) {
            (Some(cidr), _) => alloc::format!("{cidr}"),
            (None, true) => alloc::string::String::from("dhcp"),
            (None, false) => alloc::string::String::from("none"),
        };
        let m = macs[i].0;
        println!(
            "moat: nic{i} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} {} {} ipv4 {addressing} offloads {}",
            m[0], m[1], m[2], m[3], m[4], m[5], found.location, found.interrupt,
            Offloads(found.nic.accepted())
        );
        let plan = found.nic.plan();
        log::debug!("nic{i} interrupt: {:?}", found.interrupt);
        log::debug!("nic{i} features offered: {}", found.nic.offered());
        log::debug!("nic{i} features accepted: {}", found.nic.accepted());
        log::debug!(
            "nic{i} buffers: {:?}, {} posted at rest ({} paid by its share, up to {} while busy) of {} x {} bytes, {} transmit copies ({} KiB)",
            plan.buffers,
            plan.resting_posted(),
            plan.posted,
            plan.most_posted,
            plan.total,
            plan.buffer_size(),
            plan.copies,
            plan.bytes() / 1024
        );
    }

    time::checkpoint("nic reports");
    let pcap_port = find_pcap_port(boot_options);
    let mut entropy = Entropy::probe();
    let keys = ApplianceKeys::draw(|| entropy.next_word());
    println!("moat: entropy {}", entropy.source());
    time::checkpoint("entropy");
    let options = ApplianceOptions {
        state_capacity: state_capacity(boot_options, memory::heap::free_bytes()),
        keys,
        stats_interval: match boot_options.stats {
            StatsSetting::Seconds(s) => Some(Duration::from_secs(u64::from(s))),
            StatsSetting::Off => None,
        },
        capture: CaptureConfig {
            mode: if pcap_port.is_some() {
                boot_options.pcap
            } else {
                CaptureMode::Off
            },
            snaplen: boot_options.pcap_snaplen,
            ..CaptureConfig::default()
        },
        ..ApplianceOptions::default()
    };
    let mut appliance = Appliance::new(*policy, &config, options, time::now());
    time::checkpoint("data plane");
    println!(
        "moat: {} rules, state table {} flows ({} KiB)",
        policy.rules.len(),
        options.state_capacity,
        StateTable::memory_bytes(options.state_capacity) / 1024
    );
    appliance.announce(time::now(), &mut NicSink::new(&mut nics));
    nic_set::service(&mut nics);
    time::checkpoint("announce");
    let watchdog = start_watchdog(&mut pci, boot_options.watchdog);
    time::checkpoint("watchdog");
    println!(
        "moat: booted in {} µs (kernel entry to ready)",
        time::since_entry_micros()
    );
    println!("moat: ready");
    time::for_each_checkpoint(|step, at, took| {
        log::debug!("boot: {step} done at {at} µs, took {took} µs");
    });
    log::debug!(
        "heap: {} KiB free after boot; page tables: {} KiB",
        memory::heap::free_bytes() / 1024,
        memory::frames::used_bytes() / 1024
    );
    fault::inject(boot_options);
    main_loop(&mut appliance, &mut nics, watchdog, pcap_port)
}

/// COM2 for the packet capture, unless `moat.pcap=off`; says on the console what the
/// capture records.
fn find_pcap_port(options: &Options) -> Option<PcapPort> {
    if options.pcap == CaptureMode::Off {
        return None;
    }
    let port = PcapPort::find()?;
    let what = match options.pcap {
        CaptureMode::DropsAndLoggedPasses => "dropped packets and logged passes",
        CaptureMode::Drops | CaptureMode::Off => "dropped packets",
    };
    println!(
        "moat: pcap on com2: {what}, snaplen {}, at most {} per second",
        options.pcap_snaplen, CAPTURE_SHARES.total.per_second
    );
    Some(port)
}

/// Starts the hardware watchdog if the machine has one and the command line does not turn
/// it off, and says so on the console.
fn start_watchdog(pci: &mut PciBus, setting: WatchdogSetting) -> Option<Watchdog> {
    let Some(df) = watchdog::find(pci) else {
        println!("moat: watchdog none");
        return None;
    };
    let seconds = match setting {
        WatchdogSetting::Seconds(seconds) => seconds,
        WatchdogSetting::Off => {
            println!("moat: watchdog i6300esb 0000:{df} off (moat.watchdog=off)");
            return None;
        }
    };
    match Watchdog::start(pci, df, seconds) {
        Ok(watchdog) => {
            println!(
                "moat: watchdog i6300esb 0000:{} timeout {} s",
                watchdog.location(),
                watchdog.timeout_seconds()
            );
            if watchdog.previous_reset_was_ours() {
                log::warn!("the watchdog reset this VM: the previous boot's main loop had stopped");
            }
            Some(watchdog)
        }
        Err(e) => {
            log::warn!("watchdog i6300esb 0000:{df} not started: {e}");
            None
        }
    }
}

/// Share of the free heap the state table may take, and its bounds.
const STATE_TABLE_SHARE: usize = 4;
const MIN_STATES: usize = 256;

/// The state table's capacity: `moat.max-states=N` if given (at most what half the free
/// heap holds), else what a quarter of the free heap holds.
fn state_capacity(options: &Options, free_heap: usize) -> usize {
    match options.max_states {
        Some(n) => n.clamp(1, StateTable::capacity_for(free_heap / 2).max(1)),
        None => StateTable::capacity_for(free_heap / STATE_TABLE_SHARE).max(MIN_STATES),
    }
}

/// Capture bytes written to COM2 per round of the main loop, so a burst of drops costs
/// forwarding a bounded time per round.
const CAPTURE_BYTES_PER_ROUND: usize = 2048;
/// How soon an idle main loop comes back to capture bytes it could not write yet.
const CAPTURE_RETRY_MICROS: u64 = 1_000;

/// Copies what the capture buffered to its port, within [`CAPTURE_BYTES_PER_ROUND`] and
/// without waiting for the port; returns whether bytes are still waiting and the port
/// took some (so the loop should come back soon).
fn drain_capture(appliance: &mut Appliance<'static>, port: &mut PcapPort) -> bool {
    let capture = appliance.capture_mut();
    if capture.pending() == 0 {
        return false;
    }
    let written = capture.drain(CAPTURE_BYTES_PER_ROUND, |bytes| port.write(bytes));
    written > 0 && capture.pending() > 0
}

/// Console bytes sent per round of the main loop, so a burst of lines (a stats report)
/// costs forwarding a bounded time per round.
const CONSOLE_BYTES_PER_ROUND: usize = 256;
/// How soon an idle main loop tries again to send console lines the UART did not take:
/// first, and at most, the delay doubling while it still takes none.
const CONSOLE_RETRY_FIRST: Duration = Duration::from_millis(10);
const CONSOLE_RETRY_LONGEST: Duration = Duration::from_millis(1000);
/// How long the appliance waits for the console to take its last lines before it powers
/// off.
const CONSOLE_FLUSH_MICROS: u64 = 500_000;

/// Longest the appliance sleeps without being asked to.
const MAX_SLEEP_MICROS: u64 = 1_000_000;

/// Frames taken from one NIC before the others get their turn, so a flood on one NIC
/// cannot starve the rest.
const RX_BUDGET: usize = 32;

/// The appliance's one loop. Each round services what fired (the power button; the ISR of
/// each NIC whose interrupt line fired), receives from every NIC in turn (at most
/// [`RX_BUDGET`] frames each, so a flood on one NIC cannot starve the others; a forwarded
/// frame leaves from its own receive buffer), services the NICs (completed transmissions
/// taken back, receive rings refilled, each device notified at most once per queue), runs
/// the data plane's timers when due (and services the NICs again if it did), unmasks the
/// lines it serviced, sends the console some of its waiting lines (at most
/// [`CONSOLE_BYTES_PER_ROUND`]) and pets the watchdog. A round that received anything,
/// finds a frame waiting as it is about to halt, or left console lines the UART is still
/// taking is followed by another at once: the NICs are polled while busy, and under a
/// flood the button and the watchdog are still served every round. An idle round sleeps
/// until an interrupt or the next deadline, never longer than the watchdog's pet interval
/// (nor than a [`RetryDelay`] from [`CONSOLE_RETRY_FIRST`] to [`CONSOLE_RETRY_LONGEST`]
/// while the console is not read).
fn main_loop(
    appliance: &mut Appliance<'static>,
    nics: &mut [FoundNic],
    mut watchdog: Option<Watchdog>,
    mut pcap_port: Option<PcapPort>,
) -> ! {
    let max_sleep = watchdog.as_ref().map_or(MAX_SLEEP_MICROS, |w| {
        w.pet_interval_micros().min(MAX_SLEEP_MICROS)
    });
    let mut next_poll = time::now();
    let mut console_retry = RetryDelay::new(CONSOLE_RETRY_FIRST, CONSOLE_RETRY_LONGEST);
    console::defer_to_main_loop();
    loop {
        let fired = interrupts::take();
        if power::button_vector().is_some_and(|button| fired.contains(button))
            && power::take_button_press()
        {
            shutdown(appliance, nics);
        }
        // Reading the ISR deasserts a NIC's level-triggered line; MSI-X needs nothing.
        for found in nics.iter_mut() {
            if found.interrupt.needs_ack(&fired) {
                found.nic.ack_interrupt();
            }
        }
        let now = time::now();
        let mut received = false;
        for index in 0..nics.len() {
            for _ in 0..RX_BUDGET {
                let Some(mut frame) = nics[index].nic.receive() else {
                    break;
                };
                let mut sink = NicSink::receiving(nics, &frame);
                let offload = frame.offload();
                appliance.receive_offloaded(
                    index as u8,
                    frame.bytes_mut(),
                    offload,
                    now,
                    &mut sink,
                );
                let lend = sink.lend();
                nic_set::finish(nics, frame, lend);
                fault::per_frame();
                received = true;
            }
        }
        // The round's frames leave before the timers run.
        nic_set::service(nics);
        if now >= next_poll {
            nic_set::report_losses(nics, appliance);
            next_poll = now + appliance.poll(now, &mut NicSink::new(nics));
            nic_set::service(nics);
        }
        let capture_waits = pcap_port
            .as_mut()
            .is_some_and(|port| drain_capture(appliance, port));
        let console = console::pump(CONSOLE_BYTES_PER_ROUND);
        if console != Pumped::Blocked {
            console_retry.moved();
        }
        lines::unmask_serviced(&fired);
        if let Some(watchdog) = watchdog.as_mut() {
            watchdog.keep_alive();
        }
        if received || nic_set::any_received(nics) || console == Pumped::Moving {
            continue;
        }
        let now = time::now();
        let mut sleep = if next_poll > now {
            (next_poll - now).total_micros()
        } else {
            0
        };
        if capture_waits {
            sleep = sleep.min(CAPTURE_RETRY_MICROS);
        }
        if console == Pumped::Blocked {
            sleep = sleep.min(console_retry.blocked().total_micros());
        }
        time::arm_wakeup(sleep.clamp(100, max_sleep));
        interrupts::wait();
    }
}

fn shutdown(appliance: &mut Appliance<'static>, nics: &mut [FoundNic]) -> ! {
    println!("moat: shutdown");
    nic_set::report_losses(nics, appliance);
    appliance.report_final();
    console::flush(CONSOLE_FLUSH_MICROS);
    power::power_off();
    // The hypervisor acts on the request asynchronously: give it time before concluding
    // that power-off failed.
    let deadline = time::now_micros() + 3_000_000;
    while time::now_micros() < deadline {
        core::hint::spin_loop();
    }
    fatal::stop(format_args!("ACPI power-off did not take effect"))
}
