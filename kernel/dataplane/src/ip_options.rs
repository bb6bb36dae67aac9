//! IPv4 options (RFC 791 §3.1): what a header carries beyond its first 20 bytes, as far as
//! forwarding is concerned.
//!
//! Moat follows pf: a packet with options is dropped unless the rule that passed its flow
//! says `allow-opts`, and a packet with a source route is dropped whatever the rules say.
//! [`IpOptions::of`] walks the option list once, when the packet is parsed, and sums it up
//! as the one kind that decides its fate:
//!
//! - **source routes** (loose and strict, LSRR 131 and SSRR 137) let the sender choose the
//!   path its packets take, around the appliance's routing and the assumptions its
//!   anti-spoofing makes: never forwarded, never delivered;
//! - **route recording** (record route 7, timestamp 68) asks every router to write its
//!   address into the packet — a client's private address would leave the uplink inside a
//!   masqueraded reply — and a router must fill them in, which Moat does not: never
//!   forwarded either;
//! - **other options** (router alert, security labels, experimental ones...): forwarded
//!   unchanged when the deciding rule says `allow-opts`, dropped otherwise;
//! - padding (end of list, no operation) alone is no option at all.
//!
//! `smoltcp::wire` has no IPv4 option type (it never emits options and skips them when it
//! parses), so the walk reads the option bytes itself: each option's type, and its length
//! byte, which is checked to stay inside the header before anything after it is read.

/// End of option list.
pub const END_OF_LIST: u8 = 0;
/// No operation (padding between options).
pub const NO_OPERATION: u8 = 1;
/// Record route.
pub const RECORD_ROUTE: u8 = 7;
/// Internet timestamp.
pub const TIMESTAMP: u8 = 68;
/// Loose source and record route.
pub const LOOSE_SOURCE_ROUTE: u8 = 131;
/// Strict source and record route.
pub const STRICT_SOURCE_ROUTE: u8 = 137;
/// Router alert (RFC 2113).
pub const ROUTER_ALERT: u8 = 148;

/// A drop line's detail for a packet with a source route.
pub const DETAIL_SOURCE_ROUTE: &str = "source-route";
/// A drop line's detail for a packet that records its route.
pub const DETAIL_RECORD_ROUTE: &str = "record-route";
/// A drop line's detail for options the deciding rule does not allow.
pub const DETAIL_NOT_ALLOWED: &str = "no-allow-opts";

/// What a header's options come to. The variants are ordered by gravity: a packet with
/// several options is summed up by the gravest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpOptions {
    /// No options (a 20-byte header, or padding only).
    #[default]
    None,
    /// Options forwarded unchanged when the deciding rule says `allow-opts`.
    Allowable,
    /// Record route or timestamp: never forwarded.
    RecordRoute,
    /// A loose or strict source route: never forwarded.
    SourceRoute,
}

/// An option list that does not parse: a length below 2, or running past the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadOptions;

impl IpOptions {
    /// Sums up `options`, the bytes of an IPv4 header after its first 20.
    pub fn of(options: &[u8]) -> Result<IpOptions, BadOptions> {
        let mut worst = IpOptions::None;
        let mut at = 0;
        while let Some(&kind) = options.get(at) {
            match kind {
                END_OF_LIST => break,
                NO_OPERATION => {
                    at += 1;
                    continue;
                }
                _ => {}
            }
            let len = options.get(at + 1).copied().ok_or(BadOptions)? as usize;
            if len < 2 || at + len > options.len() {
                return Err(BadOptions);
            }
            worst = worst.max(match kind {
                LOOSE_SOURCE_ROUTE | STRICT_SOURCE_ROUTE => IpOptions::SourceRoute,
                RECORD_ROUTE | TIMESTAMP => IpOptions::RecordRoute,
                _ => IpOptions::Allowable,
            });
            at += len;
        }
        Ok(worst)
    }

    /// Whether the packet carries options (padding aside).
    pub fn present(self) -> bool {
        self != IpOptions::None
    }

    /// Why the packet may never be forwarded, whatever the rules say (a drop line's
    /// detail): a source route, or route recording.
    pub fn never_forwarded(self) -> Option<&'static str> {
        match self {
            IpOptions::SourceRoute => Some(DETAIL_SOURCE_ROUTE),
            IpOptions::RecordRoute => Some(DETAIL_RECORD_ROUTE),
            IpOptions::None | IpOptions::Allowable => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_alone_is_no_option() {
        assert_eq!(IpOptions::of(&[]), Ok(IpOptions::None));
        assert_eq!(IpOptions::of(&[1, 1, 1, 0]), Ok(IpOptions::None));
    }

    #[test]
    fn router_alert_is_allowable() {
        assert_eq!(
            IpOptions::of(&[ROUTER_ALERT, 4, 0, 0]),
            Ok(IpOptions::Allowable)
        );
    }

    #[test]
    fn a_source_route_outweighs_anything_else() {
        let options = [
            ROUTER_ALERT,
            4,
            0,
            0,
            NO_OPERATION,
            LOOSE_SOURCE_ROUTE,
            7,
            4,
            10,
            0,
            0,
            1,
            0,
        ];
        assert_eq!(IpOptions::of(&options), Ok(IpOptions::SourceRoute));
        assert_eq!(
            IpOptions::of(&[STRICT_SOURCE_ROUTE, 3, 4, 0]),
            Ok(IpOptions::SourceRoute)
        );
    }

    #[test]
    fn record_route_and_timestamp_record_the_route() {
        assert_eq!(
            IpOptions::of(&[RECORD_ROUTE, 7, 4, 0, 0, 0, 0, 0]),
            Ok(IpOptions::RecordRoute)
        );
        assert_eq!(
            IpOptions::of(&[TIMESTAMP, 4, 5, 0]),
            Ok(IpOptions::RecordRoute)
        );
    }

    #[test]
    fn options_after_the_end_of_list_are_padding() {
        assert_eq!(
            IpOptions::of(&[END_OF_LIST, LOOSE_SOURCE_ROUTE, 0xff, 0]),
            Ok(IpOptions::None)
        );
    }

    #[test]
    fn lengths_that_do_not_fit_are_refused() {
        for bad in [
            &[ROUTER_ALERT][..],
            &[ROUTER_ALERT, 0, 0, 0],
            &[ROUTER_ALERT, 1, 0, 0],
            &[ROUTER_ALERT, 5, 0, 0],
        ] {
            assert_eq!(IpOptions::of(bad), Err(BadOptions), "{bad:?}");
        }
    }
}
