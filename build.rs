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
    config.after_includes = Some(version_macros());
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
