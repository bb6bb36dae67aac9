//! Every boot path reaches `moat: ready` with 1, 2 and 8 NICs, reports each NIC with the MAC
//! of the device in its slot, and answers ARP and ping on every one of them. The kernel is
//! built with the test ruleset that addresses all eight NICs and allows ping to the appliance
//! on each (the default ruleset declares two and blocks ping from the uplink).

use image::qemu::{BootPath, Firmware, Machine};
use qemu_tests::expect::answers_arp_and_ping_on_every_nic;
use qemu_tests::kernels::KernelVariant;
use qemu_tests::vm::{Vm, VmSpec};
use qemu_tests::Outcome;

fn boots_and_answers_on_every_nic(mut spec: VmSpec) -> Outcome {
    spec.variant = KernelVariant::EVERY_NIC;
    let vm = Vm::start(spec)?;
    let report = vm.wait_ready()?;
    answers_arp_and_ping_on_every_nic(&vm, &report)?;
    vm.check_ready_once()
}

macro_rules! boot_path_tests {
    ($($name:ident: $machine:ident $boot:ident $nics:literal;)*) => {$(
        #[test]
        fn $name() -> Outcome {
            boots_and_answers_on_every_nic(VmSpec::new(Machine::$machine, BootPath::$boot, $nics))
        }
    )*};
}

mod boot_to_ready_and_answer_arp_and_ping_on_every_nic {
    use super::*;

    boot_path_tests! {
        q35_direct_kernel_with_1_nic: Q35 Kernel 1;
        q35_direct_kernel_with_2_nics: Q35 Kernel 2;
        q35_direct_kernel_with_8_nics: Q35 Kernel 8;
        pc_direct_kernel_with_1_nic: Pc Kernel 1;
        pc_direct_kernel_with_2_nics: Pc Kernel 2;
        pc_direct_kernel_with_8_nics: Pc Kernel 8;
        microvm_direct_kernel_with_1_nic: Microvm Kernel 1;
        microvm_direct_kernel_with_2_nics: Microvm Kernel 2;
        microvm_direct_kernel_with_8_nics: Microvm Kernel 8;
        pc_disk_image_through_seabios_with_1_nic: Pc Bios 1;
        pc_disk_image_through_seabios_with_2_nics: Pc Bios 2;
        pc_disk_image_through_seabios_with_8_nics: Pc Bios 8;
        q35_disk_image_through_ovmf_with_1_nic: Q35 Uefi 1;
        q35_disk_image_through_ovmf_with_2_nics: Q35 Uefi 2;
        q35_disk_image_through_ovmf_with_8_nics: Q35 Uefi 8;
    }

    /// qboot leaves every PCI BAR unassigned: the kernel assigns them (eight NICs and the
    /// watchdog on bus 0).
    #[test]
    fn q35_direct_kernel_through_qboot_with_8_nics() -> Outcome {
        let mut spec = VmSpec::new(Machine::Q35, BootPath::Kernel, 8);
        spec.firmware = Firmware::Qboot;
        boots_and_answers_on_every_nic(spec)
    }

    #[test]
    fn pc_direct_kernel_through_qboot_with_2_nics() -> Outcome {
        let mut spec = VmSpec::new(Machine::Pc, BootPath::Kernel, 2);
        spec.firmware = Firmware::Qboot;
        boots_and_answers_on_every_nic(spec)
    }

    #[test]
    fn q35_qcow2_image_through_seabios_with_2_nics() -> Outcome {
        let mut spec = VmSpec::new(Machine::Q35, BootPath::Bios, 2);
        spec.qcow2 = true;
        boots_and_answers_on_every_nic(spec)
    }
}
