//! Checksum and segmentation offloads with real Linux hosts (root): NICs on taps negotiate
//! them (the console says so), and large downloads through NAT arrive byte for byte —
//! forwarded as 64 KiB super-frames where both NICs take them (in 6 MiB, gathered from
//! merged receive buffers), over a link with a smaller
//! MTU (path MTU discovery on the segment size), and to a NIC without offloads (segmented
//! and checksummed in software by the appliance).

use std::time::Duration;

use qemu_tests::addressing::INTERNET_SERVER;
use qemu_tests::boot_report::NicReport;
use qemu_tests::forwarding_ruleset::{ALPHA_NIC, BETA_MTU, BETA_NIC, UPLINK_NIC, WEB_PORT};
use qemu_tests::notice::require_root;
use qemu_tests::path_measures::Measure;
use qemu_tests::tap_appliance::{TapAppliance, TapSetup};
use qemu_tests::test_host::TestHost;
use qemu_tests::web_server::pattern;
use qemu_tests::{ensure, Failure, Outcome};

use crate::clients::url;

/// Bytes of each download: enough for thousands of super-frames.
const DOWNLOAD: usize = 48 << 20;
/// How long a download may take on a loaded host, without offloads.
const DOWNLOAD_TIME: Duration = Duration::from_secs(180);
/// Downloads at most before the uplink's ring must have gone deeper.
const DOWNLOADS_TO_DEEPEN: usize = 3;
/// How soon a ring deepened by a download is back to its base once traffic stops (it
/// halves after a second without running short, once a round: rounds come at least once
/// a second when idle).
const RING_QUIET: Duration = Duration::from_secs(15);
/// Seconds of bulk TCP each way in 8 MiB.
const BULK_SECONDS: u32 = 3;
/// How soon a stats line follows traffic (the appliance reports every 5 s).
const STATS_WAIT: Duration = Duration::from_secs(15);

/// Fails unless `nic` took checksum and TCP segmentation offloads (IPv4 and IPv6) both
/// ways.
fn offloads_both_ways(nic: &NicReport) -> Outcome {
    let every = ["csum", "tso4", "tso6"]
        .iter()
        .all(|offload| nic.offloads("tx", offload) && nic.offloads("rx", offload));
    ensure(every, || {
        format!(
            "nic{} on a tap negotiated `offloads {}`: expected checksum and TSO both ways",
            nic.index, nic.offloads
        )
    })
}

/// Downloads [`DOWNLOAD`] bytes of the pattern from the internet's web server to `host`
/// and fails unless every byte arrived as sent.
fn download_is_byte_identical(host: &TestHost, what: &str) -> Outcome {
    let file = std::env::temp_dir().join(format!(
        "moat-download-{}-{}",
        std::process::id(),
        host.namespace()
    ));
    let path = file.to_string_lossy().to_string();
    let url = url(INTERNET_SERVER, WEB_PORT, &format!("/pattern/{DOWNLOAD}"));
    let time = format!("{}", DOWNLOAD_TIME.as_secs());
    let output = host.run(
        "curl",
        &[
            "--silent",
            "--show-error",
            "--fail",
            "--max-time",
            &time,
            "--output",
            &path,
            &url,
        ],
    );
    let received = std::fs::read(&file);
    let _ = std::fs::remove_file(&file);
    let output = output?;
    if !output.status.success() {
        return Err(Failure::new(format!(
            "{what}: curl {url} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let received = received.map_err(|e| Failure::new(format!("{what}: reading {path}: {e}")))?;
    let expected = pattern(DOWNLOAD);
    let first_difference = received.iter().zip(&expected).position(|(a, b)| a != b);
    ensure(
        received.len() == expected.len() && first_difference.is_none(),
        || {
            format!(
                "{what}: {} bytes arrived of {}, first difference at {first_difference:?}",
                received.len(),
                expected.len()
            )
        },
    )
}

#[test]
fn tap_nics_take_offloads_and_a_large_download_through_nat_is_byte_identical() -> Outcome {
    let test = "tap_nics_take_offloads_and_a_large_download_through_nat_is_byte_identical";
    if !require_root(test)? {
        return Ok(());
    }
    let appliance = TapAppliance::boot("moat.log=debug")?;
    let console = appliance.vm.console();
    // At rest each ring holds a few 64 KiB buffers, not what its share would pay for: the
    // first packets through a booting appliance do not wait for megabytes to be zeroed.
    for nic in &appliance.report.nics {
        let resting = format!("nic{} buffers: Big, 8 posted at rest", nic.index);
        ensure(
            console.lines().iter().any(|line| line.contains(&resting)),
            || format!("no `{resting}` on the console after boot"),
        )?;
    }
    for nic in &appliance.report.nics {
        offloads_both_ways(nic)?;
        // Memory enough for 64 KiB buffers: super-frames arrive whole, never merged.
        ensure(!nic.offloads("rx", "merged"), || {
            format!(
                "nic{} merges buffers with memory to spare: `offloads {}`",
                nic.index, nic.offloads
            )
        })?;
    }
    // A download runs the uplink's ring dry and it goes deeper, within its share. Whether
    // one round of the main loop finds the ring nearly empty depends on how QEMU's tap
    // thread and the guest happen to interleave on this host (one 48 MiB download in
    // about twenty runs never did), so up to three downloads, each byte for byte.
    let deeper = format!("nic{UPLINK_NIC} receive ring 16 deep");
    let deepened = || console.lines().iter().any(|line| line.ends_with(&deeper));
    for _ in 0..DOWNLOADS_TO_DEEPEN {
        download_is_byte_identical(
            appliance.client(ALPHA_NIC)?,
            "alpha's download, super-frames both ways",
        )?;
        if deepened() {
            break;
        }
    }
    ensure(deepened(), || {
        format!("no `{deeper}` on the console after {DOWNLOADS_TO_DEEPEN} downloads")
    })
}

#[test]
fn in_6_mib_super_frames_arrive_over_merged_buffers_and_a_large_download_is_byte_identical(
) -> Outcome {
    let test =
        "in_6_mib_super_frames_arrive_over_merged_buffers_and_a_large_download_is_byte_identical";
    if !require_root(test)? {
        return Ok(());
    }
    // Too little memory for rings of 64 KiB buffers: each NIC posts small ones and takes
    // super-frames spread over them (VIRTIO_NET_F_MRG_RXBUF), gathered by the driver.
    let appliance = TapAppliance::boot_with(TapSetup {
        memory_mib: Some(6),
        ..TapSetup::default()
    })?;
    for nic in &appliance.report.nics {
        offloads_both_ways(nic)?;
        ensure(nic.offloads("rx", "merged"), || {
            format!(
                "nic{} in 6 MiB negotiated `offloads {}`: expected super-frames over merged buffers",
                nic.index, nic.offloads
            )
        })?;
    }
    download_is_byte_identical(
        appliance.client(ALPHA_NIC)?,
        "alpha's download in 6 MiB, super-frames gathered from merged buffers",
    )
}

#[test]
fn in_8_mib_a_download_deepens_the_uplinks_ring_which_gives_its_buffers_back_once_quiet() -> Outcome
{
    let test =
        "in_8_mib_a_download_deepens_the_uplinks_ring_which_gives_its_buffers_back_once_quiet";
    if !require_root(test)? {
        return Ok(());
    }
    // Each NIC's share of 8 MiB pays for a ring of 8 posted 64 KiB buffers. A download
    // runs the uplink's ring dry: it goes deeper with buffers from the heap's headroom
    // (and lends beyond half of it while the heap can replace them), and halves back once
    // it has not run short for a second.
    let appliance = TapAppliance::boot_with(TapSetup {
        memory_mib: Some(8),
        kernel_cmdline: "moat.log=debug",
        ..TapSetup::default()
    })?;
    for nic in &appliance.report.nics {
        offloads_both_ways(nic)?;
        ensure(!nic.offloads("rx", "merged"), || {
            format!(
                "nic{} in 8 MiB negotiated `offloads {}`: expected whole super-frames in big buffers",
                nic.index, nic.offloads
            )
        })?;
    }
    let console = appliance.vm.console();
    let ring = |depth: usize| format!("nic{UPLINK_NIC} receive ring {depth} deep");
    download_is_byte_identical(
        appliance.client(ALPHA_NIC)?,
        "alpha's download in 8 MiB, the uplink's ring deepened",
    )?;
    // Bulk TCP both ways for a few seconds each: super-frames queue on both NICs faster
    // than a download alone sends them.
    let alpha = appliance.client(ALPHA_NIC)?;
    for measure in [Measure::TcpThroughput, Measure::TcpThroughputReverse] {
        measure.run(alpha, BULK_SECONDS)?;
    }
    let after_transfers = console.lines().len();
    let deeper = ring(16);
    ensure(
        console.lines().iter().any(|line| line.ends_with(&deeper)),
        || format!("no `{deeper}` on the console after the download"),
    )?;
    let back = ring(8);
    console.wait_until(
        &format!("`{back}` on the console"),
        RING_QUIET,
        |snapshot| {
            snapshot
                .lines
                .iter()
                .any(|line| line.ends_with(&back))
                .then_some(Ok(()))
        },
    )?;
    let short = console.count(|line| line.contains("out of memory"));
    ensure(short == 0, || {
        format!("{short} out-of-memory warnings in 8 MiB")
    })?;
    // A super-frame the uplink could not lend at once waited for its buffers to come
    // back: none was dropped for want of a buffer (a stats line after the transfers says).
    console.wait_until("a stats line after the transfers", STATS_WAIT, |snapshot| {
        snapshot.lines[after_transfers.min(snapshot.lines.len())..]
            .iter()
            .any(|line| line.contains("moat: stats nic"))
            .then_some(Ok(()))
    })?;
    let lost = console.count(|line| line.contains("tx too big"));
    ensure(lost == 0, || {
        format!("{lost} stats lines in 8 MiB count super-frames dropped as too big to copy")
    })
}

#[test]
fn a_large_download_over_a_link_with_a_smaller_mtu_is_byte_identical() -> Outcome {
    let test = "a_large_download_over_a_link_with_a_smaller_mtu_is_byte_identical";
    if !require_root(test)? {
        return Ok(());
    }
    let appliance = TapAppliance::boot("")?;
    download_is_byte_identical(
        appliance.client(BETA_NIC)?,
        &format!("beta's download over its {BETA_MTU}-byte link"),
    )
}

#[test]
fn a_large_download_to_a_nic_without_offloads_is_segmented_byte_identical() -> Outcome {
    let test = "a_large_download_to_a_nic_without_offloads_is_segmented_byte_identical";
    if !require_root(test)? {
        return Ok(());
    }
    let appliance = TapAppliance::boot_with_plain_nic("", ALPHA_NIC)?;
    let nics = &appliance.report.nics;
    offloads_both_ways(&nics[UPLINK_NIC])?;
    ensure(nics[ALPHA_NIC].offloads == "none", || {
        format!(
            "nic{ALPHA_NIC} on a tap without the virtio-net header negotiated `offloads {}`: expected none",
            nics[ALPHA_NIC].offloads
        )
    })?;
    download_is_byte_identical(
        appliance.client(ALPHA_NIC)?,
        "alpha's download, super-frames from the uplink segmented for a NIC without offloads",
    )
}
