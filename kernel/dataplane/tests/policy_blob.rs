//! The policy blob: what the image tool writes into the kernel and the kernel decodes at
//! boot. A decoded blob holds exactly the policy that was encoded and decides like it; the
//! encoding is deterministic; and no bytes — truncated, damaged, random — make decoding
//! panic.

#[path = "../benches/support/mod.rs"]
mod support;

#[path = "matcher_fixtures/policy.rs"]
mod fixture;

use std::hash::Hasher;
use std::path::Path;

use dataplane::policy::codegen::blob::{
    decode, encode, identity, total_len, BlobError, Record, HEADER_LEN, MAGIC, PLACEHOLDER, VERSION,
};
use dataplane::policy::codegen::flat::{
    rule_words, BadWord, List, CLIENT_WORDS, INTERFACE_WORDS, RULE_WORDS,
};
use dataplane::policy::*;
use fixture::fixture;
use proptest::prelude::*;
use siphasher::sip::SipHasher13;

/// The policy of ruleset `text`; a ruleset that does not compile fails the test.
fn compile(name: &str, text: &str) -> PolicyBuf {
    match rules::compile(name, text) {
        Ok(compiled) => compiled.policy,
        Err(error) => panic!("{name} does not compile:\n{}", error.render()),
    }
}

/// `rules/default.rules`, compiled.
fn default_ruleset() -> PolicyBuf {
    compile(
        "default.rules",
        include_str!("../../../rules/default.rules"),
    )
}

/// Every ruleset of the end-to-end tests (`qemu-tests/rules/*.rules`), compiled.
fn qemu_rulesets() -> Vec<(String, PolicyBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../qemu-tests/rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("qemu-tests/rules is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rules"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rulesets in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("a readable ruleset");
            let policy = compile(&name, &text);
            (name, policy)
        })
        .collect()
}

/// Where the lists start in the blob of `policy`: after the header, the source name and
/// the digest (each a count, then its bytes padded to 4).
fn lists_start(policy: &Policy) -> usize {
    let text = |text: &str| 4 + text.len().next_multiple_of(4);
    HEADER_LEN + text(policy.source_name) + text(policy.digest)
}

/// Decodes a blob that must decode.
fn decoded(blob: &[u8]) -> PolicyBuf {
    decode(blob).unwrap_or_else(|error| panic!("the blob does not decode: {error}"))
}

/// Why `blob` does not decode; fails the test if it does.
fn refusal(blob: &[u8]) -> BlobError {
    match decode(blob) {
        Ok(_) => panic!("a blob that should be refused decodes"),
        Err(error) => error,
    }
}

/// `blob` with its header's length and checksum made to match its bytes, as if the
/// encoder had written them (so that decoding gets past the checksum).
fn resealed(blob: &[u8]) -> Vec<u8> {
    let mut blob = blob.to_vec();
    let len = u32::try_from(blob.len()).expect("a test blob under 4 GiB");
    blob[12..16].copy_from_slice(&len.to_le_bytes());
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(&blob[HEADER_LEN..]);
    blob[16..24].copy_from_slice(&hasher.finish().to_le_bytes());
    blob
}

/// Asserts that `decoded` holds every field of `original`, index included.
fn assert_same(decoded: &Policy, original: &Policy, what: &str) {
    assert_eq!(
        original.index.rule_count as usize,
        original.rules.len(),
        "{what}: the original's index is built"
    );
    assert_eq!(decoded.source_name, original.source_name, "{what}");
    assert_eq!(decoded.digest, original.digest, "{what}");
    assert_eq!(decoded.interfaces, original.interfaces, "{what}");
    assert_eq!(decoded.clients, original.clients, "{what}");
    assert_eq!(decoded.rules, original.rules, "{what}");
    assert_eq!(decoded.default, original.default, "{what}");
    assert_eq!(decoded.masquerade, original.masquerade, "{what}");
    assert_eq!(decoded.forwards, original.forwards, "{what}");
    assert_eq!(decoded.dns, original.dns, "{what}");
    assert_eq!(decoded.dhcp_servers, original.dhcp_servers, "{what}");
    assert_eq!(decoded.names, original.names, "{what}");
    assert_eq!(decoded.addr_ranges, original.addr_ranges, "{what}");
    assert_eq!(decoded.port_ranges, original.port_ranges, "{what}");
    assert_eq!(decoded.byte_ranges, original.byte_ranges, "{what}");
    assert_eq!(decoded.ipv4_addrs, original.ipv4_addrs, "{what}");
    assert_eq!(
        decoded.index.rule_count, original.index.rule_count,
        "{what}"
    );
    assert_eq!(decoded.index.roots, original.index.roots, "{what}");
    assert_eq!(decoded.index.classes, original.index.classes, "{what}");
    assert_eq!(decoded.index.tree, original.index.tree, "{what}");
}

/// Asserts that `policy` survives encoding and decoding, and that its blob is the one
/// its decoded form encodes to.
fn assert_round_trip(policy: &PolicyBuf, what: &str) {
    let blob = encode(&policy.as_policy());
    let back = decoded(&blob);
    assert_same(&back.as_policy(), &policy.as_policy(), what);
    assert_eq!(encode(&back.as_policy()), blob, "{what}: re-encoded");
}

#[test]
fn the_fixture_survives_its_blob() {
    assert_round_trip(&fixture(), "fixture");
}

#[test]
fn the_default_ruleset_survives_its_blob() {
    assert_round_trip(&default_ruleset(), "default.rules");
}

#[test]
fn every_end_to_end_ruleset_survives_its_blob() {
    for (name, policy) in qemu_rulesets() {
        assert_round_trip(&policy, &name);
    }
}

#[test]
fn a_two_thousand_rule_ruleset_survives_its_blob() {
    // 2,000 rules: every list and a deep index, in seconds (the compiler is not optimised
    // in test builds; 10,000 rules take most of a minute here).
    let policy = compile("generated.rules", &rules::generate::generate(2_000, 1));
    assert!(policy.rules.len() >= 2_000);
    assert_round_trip(&policy, "2,000 generated rules");
}

#[test]
fn the_decoded_policy_decides_like_the_original() {
    let buf = fixture();
    let policy = buf.as_policy();
    let back = decoded(&encode(&policy));
    let sets = support::key_sets(&policy, 500, 9);
    let mut rng = support::Rng::new(3);
    let random = (0..2_000).map(|_| support::random_key(&mut rng));
    let keys: Vec<FlowKey> = sets
        .early
        .into_iter()
        .chain(sets.late)
        .chain(sets.default)
        .chain(random)
        .collect();
    assert!(keys.len() > 2_500);
    for key in &keys {
        assert_eq!(back.as_policy().decide(key), policy.decide(key), "{key:?}");
    }
}

#[test]
fn encoding_is_deterministic() {
    assert_eq!(
        encode(&fixture().as_policy()),
        encode(&fixture().as_policy())
    );
}

#[test]
fn a_policy_whose_index_was_not_built_is_encoded_with_one() {
    let mut buf = fixture();
    buf.rules.push(buf.rules[0]);
    // The index is now stale (one rule more than it was built for).
    let blob = encode(&buf.as_policy());
    buf.build_index();
    assert_eq!(blob, encode(&buf.as_policy()));
    assert_eq!(
        decoded(&blob).as_policy().index.rule_count as usize,
        buf.rules.len()
    );
}

#[test]
fn the_header_gives_the_blob_length() {
    let blob = encode(&fixture().as_policy());
    assert_eq!(&blob[..8], &MAGIC);
    assert_eq!(&blob[8..12], &VERSION.to_le_bytes());
    assert_eq!(total_len(&blob[..HEADER_LEN]), Ok(blob.len()));
    assert_eq!(blob.len() % 4, 0);
}

#[test]
fn identity_reads_the_source_name_and_digest_in_place() {
    let buf = fixture();
    let blob = encode(&buf.as_policy());
    assert_eq!(
        identity(&blob),
        Ok((buf.source_name.as_str(), buf.digest.as_str()))
    );
    let mut damaged = blob.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(identity(&damaged), Err(BlobError::Checksum));
    assert_eq!(identity(&PLACEHOLDER), Err(BlobError::Empty));
    assert_eq!(
        identity(&blob[..blob.len() - 4]),
        Err(BlobError::Length {
            declared: blob.len(),
            given: blob.len() - 4
        })
    );
}

#[test]
fn the_placeholder_says_no_ruleset_is_embedded() {
    assert_eq!(refusal(&PLACEHOLDER), BlobError::Empty);
    assert_eq!(
        refusal(&PLACEHOLDER).to_string(),
        "no ruleset embedded in this image"
    );
}

#[test]
fn a_bad_header_is_refused() {
    let blob = encode(&default_ruleset().as_policy());
    let mut magic = blob.clone();
    magic[0] = b'X';
    assert_eq!(refusal(&magic), (BlobError::BadMagic));
    let mut version = blob.clone();
    version[8] = 7;
    assert_eq!(refusal(&version), (BlobError::Version { found: 7 }));
    assert_eq!(
        decode(&version).unwrap_err().to_string(),
        "policy format version 7, this kernel reads version 1"
    );
    let mut longer = blob.clone();
    longer.extend_from_slice(&[0; 4]);
    assert_eq!(
        refusal(&longer),
        (BlobError::Length {
            declared: blob.len(),
            given: blob.len() + 4
        })
    );
    let mut below = blob.clone();
    below[12..16].copy_from_slice(&20u32.to_le_bytes());
    assert_eq!(
        refusal(&below),
        (BlobError::LengthBelowHeader { declared: 20 })
    );
}

#[test]
fn bytes_after_the_last_field_are_refused() {
    let blob = encode(&default_ruleset().as_policy());
    let mut longer = blob.clone();
    longer.extend_from_slice(&[0; 4]);
    assert_eq!(
        refusal(&resealed(&longer)),
        (BlobError::Trailing {
            at: blob.len(),
            extra: 4
        })
    );
}

#[test]
fn every_truncation_is_refused() {
    let blob = encode(&default_ruleset().as_policy());
    for len in 0..blob.len() {
        let cut = &blob[..len];
        assert!(decode(cut).is_err(), "cut to {len} bytes");
        if len >= HEADER_LEN {
            // With a header that matches: the payload reader finds the cut.
            let error = decode(&resealed(cut)).expect_err("a resealed cut");
            assert!(
                matches!(error, BlobError::Truncated { .. }),
                "cut to {len} bytes: {error}"
            );
        }
    }
}

#[test]
fn every_flipped_byte_fails_the_checks() {
    let blob = encode(&default_ruleset().as_policy());
    for at in 0..blob.len() {
        let mut damaged = blob.clone();
        damaged[at] ^= 0x20;
        let error = decode(&damaged).expect_err("a damaged blob");
        if at >= HEADER_LEN {
            assert_eq!(error, BlobError::Checksum, "byte {at}");
        }
    }
}

/// Decodes `blob` (which must not panic); a policy that decodes must also decide keys
/// without panicking.
fn decode_and_use(blob: &[u8], keys: &[FlowKey]) -> bool {
    let Ok(policy) = decode(blob) else {
        return false;
    };
    let policy = policy.as_policy();
    for key in keys {
        policy.decide(key);
    }
    true
}

#[test]
fn a_damaged_blob_with_a_matching_checksum_never_panics() {
    let blob = encode(&default_ruleset().as_policy());
    let mut rng = support::Rng::new(7);
    let keys: Vec<FlowKey> = (0..16).map(|_| support::random_key(&mut rng)).collect();
    let mut accepted = 0;
    for at in HEADER_LEN..blob.len() {
        for flip in [0x01, 0x80, 0xff] {
            let mut damaged = blob.clone();
            damaged[at] ^= flip;
            accepted += usize::from(decode_and_use(&resealed(&damaged), &keys));
        }
    }
    // Damage to addresses, ports or the index's words still decodes: any value fits them.
    assert!(accepted > 0);
}

#[test]
fn random_damage_to_a_large_blob_never_panics() {
    let blob = encode(&fixture().as_policy());
    let mut rng = support::Rng::new(11);
    let keys: Vec<FlowKey> = (0..16).map(|_| support::random_key(&mut rng)).collect();
    for _ in 0..3_000 {
        let mut damaged = blob.clone();
        for _ in 0..1 + rng.below(4) {
            let at = HEADER_LEN + rng.below((blob.len() - HEADER_LEN) as u64) as usize;
            damaged[at] = rng.next_u64() as u8;
        }
        decode_and_use(&resealed(&damaged), &keys);
    }
}

/// The blob of the fixture with `change` made to the policy (its index left as built).
fn blob_with(change: impl FnOnce(&mut PolicyBuf)) -> Vec<u8> {
    let mut buf = fixture();
    change(&mut buf);
    encode(&buf.as_policy())
}

#[test]
fn a_span_past_its_pool_is_refused() {
    let mut pool_len = 0;
    let blob = blob_with(|buf| {
        pool_len = buf.addr_ranges.len();
        buf.rules[3].src = Span {
            start: pool_len as u32 - 1,
            len: 2,
        };
    });
    let error = refusal(&blob);
    assert_eq!(
        error,
        BlobError::Span {
            record: Record {
                list: List::Rules,
                index: 3
            },
            field: "src",
            span: Span {
                start: pool_len as u32 - 1,
                len: 2
            },
            pool: List::AddrRanges,
            pool_len,
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "rule 3: its src span {}+2 runs past the {pool_len} address ranges",
            pool_len - 1
        )
    );
    let blob = blob_with(|buf| {
        buf.dns[1].upstream = DnsUpstream::Static(Span {
            start: 0,
            len: buf.ipv4_addrs.len() as u32 + 1,
        })
    });
    assert!(matches!(
        refusal(&blob),
        BlobError::Span {
            field: "upstream",
            pool: List::Ipv4Addrs,
            ..
        }
    ));
}

#[test]
fn a_name_that_splits_a_character_is_refused() {
    let blob = blob_with(|buf| {
        let at = buf
            .names
            .find('ö')
            .expect("the fixture has a name with an ö") as u32;
        buf.clients[0].name = Span {
            start: at + 1,
            len: 2,
        };
    });
    assert!(matches!(
        refusal(&blob),
        BlobError::SplitName {
            record: Record {
                list: List::Clients,
                index: 0
            },
            field: "name",
            ..
        }
    ));
}

#[test]
fn a_nic_the_appliance_does_not_drive_is_refused() {
    let blob = blob_with(|buf| buf.interfaces[1].nic = MAX_NICS as u8);
    assert_eq!(
        refusal(&blob),
        (BlobError::Word {
            record: Record {
                list: List::Interfaces,
                index: 1
            },
            bad: BadWord {
                field: "NIC",
                word: MAX_NICS as u32
            },
        })
    );
    assert_eq!(refusal(&blob).to_string(), "interface 1: bad NIC word 8");
}

#[test]
fn an_unknown_action_word_is_refused() {
    let buf = fixture();
    let blob = encode(&buf.as_policy());
    // The rules list follows the interfaces and clients (each a count, then their words).
    let rules = lists_start(&buf.as_policy())
        + 4
        + 4 * INTERFACE_WORDS * buf.interfaces.len()
        + 4
        + 4 * CLIENT_WORDS * buf.clients.len();
    let rule = rules + 4 + 4 * 17 * RULE_WORDS;
    let words: Vec<u8> = rule_words(&buf.rules[17])
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    assert_eq!(
        blob[rule..rule + 4 * RULE_WORDS],
        words,
        "rule 17 is where the layout says"
    );
    let action = rule + 4 * 2;
    let mut damaged = blob.clone();
    damaged[action..action + 4].copy_from_slice(&9u32.to_le_bytes());
    let error = refusal(&resealed(&damaged));
    assert_eq!(error.to_string(), "rule 17: bad action word 9");
}

#[test]
fn an_index_over_other_rules_is_refused() {
    let buf = fixture();
    let blob = encode(&buf.as_policy());
    let index = buf.as_policy().index;
    // The index's rule count comes before its roots, classes (padded) and tree.
    let tail = 4 + 4 * index.roots.len() + 4 + index.classes.len().next_multiple_of(4) + 4;
    let at = blob.len() - 4 * index.tree.len() - tail - 4;
    assert_eq!(
        blob[at..at + 4],
        (buf.rules.len() as u32).to_le_bytes(),
        "the rule count is where the layout says"
    );
    let mut damaged = blob.clone();
    damaged[at..at + 4].copy_from_slice(&7u32.to_le_bytes());
    assert_eq!(
        refusal(&resealed(&damaged)),
        (BlobError::IndexRuleCount {
            index: 7,
            rules: buf.rules.len()
        })
    );
}

#[test]
fn a_count_larger_than_the_blob_is_refused_before_allocating() {
    let blob = encode(&fixture().as_policy());
    let mut damaged = blob.clone();
    // The interfaces' count, the first list.
    let at = lists_start(&fixture().as_policy());
    damaged[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let error = refusal(&resealed(&damaged));
    assert_eq!(
        error.to_string(),
        format!(
            "policy blob truncated: the interfaces list needs {} bytes at offset {}, {} remain",
            u32::MAX as usize * INTERFACE_WORDS * 4,
            at + 4,
            blob.len() - at - 4
        )
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let _ = identity(&bytes);
        let _ = total_len(&bytes);
    }

    #[test]
    fn random_payloads_under_a_good_header_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut blob = PLACEHOLDER.to_vec();
        blob.extend_from_slice(&payload);
        let blob = resealed(&blob);
        let _ = decode(&blob);
        let _ = identity(&blob);
    }

    #[test]
    fn random_words_written_into_a_blob_never_panic(
        writes in proptest::collection::vec((any::<usize>(), any::<u32>()), 1..8),
    ) {
        let blob = DEFAULT_BLOB.with(|blob| blob.clone());
        let mut damaged = blob.clone();
        for (at, word) in writes {
            let at = HEADER_LEN + at % (blob.len() - HEADER_LEN - 3);
            damaged[at..at + 4].copy_from_slice(&word.to_le_bytes());
        }
        let _ = decode(&resealed(&damaged));
    }
}

thread_local! {
    /// The default ruleset's blob, compiled once per test thread.
    static DEFAULT_BLOB: Vec<u8> = encode(&default_ruleset().as_policy());
}
