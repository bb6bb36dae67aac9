//! A real Linux client: `ping` from a network namespace whose tap device is the appliance's
//! client NIC gets replies. Needs root (CI runs as root); elsewhere it is skipped loudly.

use image::qemu::{BootPath, Machine};
use qemu_tests::addressing::{appliance_address, host_address};
use qemu_tests::notice::require_root;
use qemu_tests::test_host::TestHost;
use qemu_tests::vm::{NicWiring, Vm, VmSpec};
use qemu_tests::{ensure, Outcome};
use smoltcp::wire::Ipv4Cidr;

const CLIENT_NIC: usize = 1;
const PINGS: u32 = 3;

#[test]
fn ping_from_a_client_namespace_over_a_tap_gets_every_reply() -> Outcome {
    if !require_root("ping_from_a_client_namespace_over_a_tap_gets_every_reply")? {
        return Ok(());
    }
    let client = TestHost::create()?;
    let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 2);
    spec.nics[CLIENT_NIC] = NicWiring::Tap(client.tap().to_string());
    let vm = Vm::start(spec)?;
    // QEMU has opened the tap once the guest runs; only then may it move to the namespace.
    vm.wait_ready()?;
    let prefix = appliance_address(CLIENT_NIC).prefix_len();
    client.attach(Ipv4Cidr::new(host_address(CLIENT_NIC), prefix))?;
    let summary = client.ping(appliance_address(CLIENT_NIC).address(), PINGS)?;
    ensure(
        summary.transmitted == PINGS && summary.received == PINGS,
        || {
            format!(
                "ping got {} of {} replies:\n{}",
                summary.received, summary.transmitted, summary.output
            )
        },
    )
}
