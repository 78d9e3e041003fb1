//! Generates the C header from src/ffi with cbindgen into OUT_DIR. With
//! TAPS_UPDATE_HEADER=1 it also writes include/taps_racing.h, the checked-in
//! copy that the test `header_is_current` compares against.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("taps_racing.h");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/api");
    println!("cargo:rerun-if-changed=src/vocabulary");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=TAPS_UPDATE_HEADER");
    let mut config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).expect("cbindgen.toml");
    config.after_includes = Some(version_macros() + INIT_MACROS);
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    bindings.write_to_file(&out);
    if std::env::var_os("TAPS_UPDATE_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(format!("{dir}/include/taps_racing.h"));
    }

    // SONAME of the shared library: libtaps_racing.so.<major> (0 while 0.x),
    // so programs linked against it keep working across compatible releases.
    if std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("CARGO_PKG_VERSION_MAJOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtaps_racing.so.{major}");
    }
}

/// Initializers of the growable structs that have no taps_*_default()
/// function: struct_size set to this header's sizeof, every other field 0.
/// (Zero-initialized structs work too: struct_size 0 means this header's
/// struct.) See docs/ABI.md.
const INIT_MACROS: &str = "\n\n\
// Initializers of the structs that have no taps_*_default() function:\n\
// struct_size is this header's sizeof, every other field 0 (NULL), as in\n\
// `taps_connection_callbacks cb = TAPS_CONNECTION_CALLBACKS_INIT; cb.ready = f;`.\n\
// (Designated initializers without struct_size work too: 0 means this\n\
// header's struct.) C++ before C++20 has no designated initializers.\n\
#if defined(__cplusplus) && __cplusplus < 202002L\n\
#define TAPS_CONNECTION_CALLBACKS_INIT { (uint32_t)sizeof(taps_connection_callbacks) }\n\
#define TAPS_EVENT_LOOP_OPTIONS_INIT { (uint32_t)sizeof(taps_event_loop_options) }\n\
#define TAPS_STAGE_CALLBACKS_INIT { (uint32_t)sizeof(taps_stage_callbacks) }\n\
#define TAPS_HTTPS_RESOLVER_IMPLEMENTATION_INIT { (uint32_t)sizeof(taps_https_resolver_implementation) }\n\
#define TAPS_SERVICE_RECORD_INIT { (uint32_t)sizeof(taps_service_record) }\n\
#define TAPS_HTTPS_RECORD_INFO_INIT { (uint32_t)sizeof(taps_https_record_info) }\n\
#define TAPS_DNS_ANSWER_INFO_INIT { (uint32_t)sizeof(taps_dns_answer_info) }\n\
#else\n\
#define TAPS_CONNECTION_CALLBACKS_INIT { .struct_size = (uint32_t)sizeof(taps_connection_callbacks) }\n\
#define TAPS_EVENT_LOOP_OPTIONS_INIT { .struct_size = (uint32_t)sizeof(taps_event_loop_options) }\n\
#define TAPS_STAGE_CALLBACKS_INIT { .struct_size = (uint32_t)sizeof(taps_stage_callbacks) }\n\
#define TAPS_HTTPS_RESOLVER_IMPLEMENTATION_INIT { .struct_size = (uint32_t)sizeof(taps_https_resolver_implementation) }\n\
#define TAPS_SERVICE_RECORD_INIT { .struct_size = (uint32_t)sizeof(taps_service_record) }\n\
#define TAPS_HTTPS_RECORD_INFO_INIT { .struct_size = (uint32_t)sizeof(taps_https_record_info) }\n\
#define TAPS_DNS_ANSWER_INFO_INIT { .struct_size = (uint32_t)sizeof(taps_dns_answer_info) }\n\
#endif";

/// The TAPS_RACING_VERSION_* macros, from Cargo.toml's version (the same
/// string taps_version() returns at run time).
fn version_macros() -> String {
    let part = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name}"));
    let (major, minor, patch) = (part("CARGO_PKG_VERSION_MAJOR"), part("CARGO_PKG_VERSION_MINOR"), part("CARGO_PKG_VERSION_PATCH"));
    format!(
        "\n// The library's version (Cargo.toml's), as taps_version() returns it.\n\
         #define TAPS_RACING_VERSION_MAJOR {major}\n\
         #define TAPS_RACING_VERSION_MINOR {minor}\n\
         #define TAPS_RACING_VERSION_PATCH {patch}\n\
         #define TAPS_RACING_VERSION_STRING \"{}\"",
        part("CARGO_PKG_VERSION")
    )
}
