//! Normalisation tests: what source rules become as product sets of flow keys.

use dataplane::policy::{ipv4_to_flow_addr, OUT_SELF};

use crate::checked::Checked;
use crate::parser::parse;
use crate::ranges::RangeSet;
use crate::source::SourceFile;
use crate::space::{Field, KeySet};

const BASE: &str = "\
interface wan nic0 address 192.0.2.2/24 gateway 192.0.2.1
interface lan nic1 address 10.0.0.1/24
client work 10.0.0.10, fd00::10 on lan
";

fn checked(rules: &str) -> Checked {
    let file = SourceFile::new("t.rules", format!("{BASE}{rules}"));
    let (ruleset, diags) = parse(&file);
    assert!(diags.is_empty(), "{}", diags.render(&file));
    let (checked, diags) = super::check(&file, &ruleset);
    assert!(!diags.has_errors(), "{}", diags.render(&file));
    checked
}

fn parts(rule: &str) -> Vec<KeySet> {
    checked(rule).rules.remove(0).parts
}

fn v4(a: [u8; 4]) -> u128 {
    ipv4_to_flow_addr(u32::from_be_bytes(a))
}

#[test]
fn a_client_is_its_interface_and_its_addresses() {
    let p = parts("pass from work");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].get(Field::InNic), &RangeSet::single(1));
    let addrs = RangeSet::from_ranges([
        (v4([10, 0, 0, 10]), v4([10, 0, 0, 10])),
        (0xfd00 << 112 | 0x10, 0xfd00 << 112 | 0x10),
    ]);
    assert_eq!(p[0].get(Field::Src), &addrs);
}

#[test]
fn a_negated_client_is_other_interfaces_or_other_addresses() {
    let p = parts("block from !work");
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].get(Field::InNic), &RangeSet::single(1).complement(255));
    assert!(p[0].get(Field::Src).is_full(u128::MAX));
    assert_eq!(p[1].get(Field::InNic), &RangeSet::single(1));
    assert!(
        !p[1].get(Field::Src).contains(v4([10, 0, 0, 10]))
            && p[1].get(Field::Src).contains(v4([10, 0, 0, 11]))
    );
}

#[test]
fn to_self_is_the_appliance_egress() {
    let p = parts("pass to self");
    assert_eq!(p[0].get(Field::Out), &RangeSet::single(OUT_SELF.into()));
}

#[test]
fn addresses_in_a_list_merge_and_interfaces_stay_apart() {
    let p = parts("pass to { 10.9.0.0/16, 10.8.0.0/16, wan }");
    assert_eq!(p.len(), 2);
    assert_eq!(
        p[0].get(Field::Dst).ranges(),
        &[(v4([10, 8, 0, 0]), v4([10, 9, 255, 255]))]
    );
    assert_eq!(p[1].get(Field::Out), &RangeSet::single(0));
}

#[test]
fn an_icmp_type_name_splits_per_family_and_codes_get_their_own_part() {
    let p = parts("pass { icmp, icmp6 } type { echo-request, unreachable code port-unreachable }");
    let shapes: Vec<(u128, u128, bool)> = p
        .iter()
        .map(|k| {
            let ty = k.get(Field::IcmpType).bounds().unwrap().0;
            (
                k.get(Field::Protocol).bounds().unwrap().0,
                ty,
                k.get(Field::IcmpCode).is_full(255),
            )
        })
        .collect();
    assert_eq!(
        shapes,
        vec![(1, 8, true), (1, 3, false), (58, 128, true), (58, 1, false)]
    );
}

#[test]
fn ports_constrain_only_the_protocols_that_have_them() {
    let p = parts("pass { tcp, udp } port 53");
    assert_eq!(p.len(), 1);
    assert_eq!(
        p[0].get(Field::Protocol),
        &RangeSet::from_ranges([(6, 6), (17, 17)])
    );
    assert_eq!(p[0].get(Field::DstPort), &RangeSet::single(53));
    assert!(p[0].get(Field::IcmpType).is_full(255));
}
