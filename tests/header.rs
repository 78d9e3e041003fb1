//! The checked-in C header must be what cbindgen generates from the code
//! now. Regenerate with `TAPS_UPDATE_HEADER=1 cargo build`.

#[test]
fn header_is_current() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/taps_racing.h"));
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/taps_racing.h"))
        .expect("include/taps_racing.h is missing");
    assert!(
        generated == checked_in,
        "include/taps_racing.h differs from what cbindgen generates; run TAPS_UPDATE_HEADER=1 cargo build"
    );
}
