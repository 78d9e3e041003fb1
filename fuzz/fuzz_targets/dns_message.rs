//! DNS replies from a hostile network: arbitrary bytes read by the DNS
//! client as the reply to the question they carry (and to others): the
//! id/question matcher (RFC 5452), hickory-proto's message decoder, the
//! CNAME chain walk, the negative-TTL rule and the HTTPS (RFC 9460)
//! decoder must never panic, and what they accept must keep the client's
//! promises (addresses of the asked family, no usable HTTPS record with
//! port 0, AliasMode records alone in their set...).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    taps_racing::__dns_fuzz::reply(data);
});
