//! The layers import one way: ffi → api → runtime → engine, with the
//! vocabulary below them all (see docs "Layers" in DESIGN.md and the crate
//! docs in src/lib.rs).
//!
//! This test reads every .rs file under src/, finds each `crate::<layer>`
//! path in its code (use lines, grouped `crate::{…}` uses, inline paths;
//! not comments, not string literals) and each `super::` path that climbs
//! out of the file's layer, and fails naming file:line for any import that
//! goes the wrong way:
//!
//! - a layer imports a layer ranked above it (ffi 4, api 3, runtime 2,
//!   engine 1, vocabulary 0);
//! - engine imports anything but engine and vocabulary;
//! - vocabulary imports any other layer;
//! - ffi imports anything but api and vocabulary (no runtime, no engine).

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first: the index is the rank.
const LAYERS: [&str; 5] = ["vocabulary", "engine", "runtime", "api", "ffi"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

/// Whether a file of layer `from` may import layer `to`.
fn allowed(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    match from {
        "vocabulary" => false,
        "engine" => to == "vocabulary",
        "ffi" => to == "api" || to == "vocabulary",
        _ => rank(to) < rank(from),
    }
}

/// The source with comments and the contents of string and char literals
/// blanked out (newlines kept, so line numbers stay right).
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r' && (next == Some('"') || next == Some('#')) && (i == 0 || !is_ident(c[i - 1])) {
            // A raw string r"…" or r#"…"# (or an identifier starting with r#).
            let mut j = i + 1;
            while j < c.len() && c[j] == '#' {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            for &ch in &c[i..=j] {
                blank(&mut out, ch);
            }
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|h| c.get(i + h) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{…}'.
            blank(&mut out, c[i]);
            i += 1;
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '\'' {
                blank(&mut out, c[i]);
                i += 1;
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            // A char literal 'x' (else a lifetime, kept).
            for _ in 0..3 {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// The identifier at the start of `s` after whitespace, and its length
/// with the whitespace.
fn ident(s: &str) -> Option<(&str, usize)> {
    let skip = s.len() - s.trim_start().len();
    let t = &s[skip..];
    let n = t.find(|ch: char| !is_ident(ch)).unwrap_or(t.len());
    (n > 0).then(|| (&t[..n], skip + n))
}

/// `s` starts (after whitespace) with `::`: the rest after it.
fn after_colons(s: &str) -> Option<&str> {
    s.trim_start().strip_prefix("::")
}

/// The first segments named at the crate root by a path starting at `s`
/// (just after `crate::`, or after enough `super::` to reach the root):
/// one name, or the top-level names of a `{…}` group.
fn root_names(s: &str) -> Vec<String> {
    let t = s.trim_start();
    if let Some(group) = t.strip_prefix('{') {
        let mut names = Vec::new();
        let mut depth = 0;
        let mut expecting = true;
        let mut rest = group;
        while let Some(ch) = rest.chars().next() {
            match ch {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => expecting = true,
                _ if is_ident(ch) && expecting && depth == 0 => {
                    let (name, n) = ident(rest).expect("an identifier");
                    names.push(name.to_string());
                    expecting = false;
                    rest = &rest[n..];
                    continue;
                }
                _ => {}
            }
            rest = &rest[ch.len_utf8()..];
        }
        names
    } else {
        ident(t).map(|(name, _)| vec![name.to_string()]).unwrap_or_default()
    }
}

/// The layers a file's code names, with their 1-based line numbers.
/// `depth`: how many `super::` from the file's module reach the crate
/// root (1 for src/engine.rs or src/engine/mod.rs, 2 for
/// src/engine/race.rs, ...).
fn imports(code: &str, depth: usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    for (at, _) in code.match_indices("crate") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(is_ident) {
            continue;
        }
        let Some(rest) = after_colons(&code[at + "crate".len()..]) else { continue };
        for name in root_names(rest) {
            found.push((line_of(at), name));
        }
    }
    for (at, _) in code.match_indices("super") {
        let before = code[..at].chars().next_back();
        // Only the start of a chain (not a `super` after `super::`).
        if before.is_some_and(|b| is_ident(b) || b == ':') {
            continue;
        }
        let mut rest = &code[at..];
        let mut ups = 0;
        while let Some((word, n)) = ident(rest) {
            if word != "super" {
                break;
            }
            match after_colons(&rest[n..]) {
                Some(r) => {
                    ups += 1;
                    rest = r;
                }
                None => break,
            }
        }
        if ups == depth {
            for name in root_names(rest) {
                found.push((line_of(at), name));
            }
        }
    }
    found.retain(|(_, name)| rank(name).is_some());
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's layer and how many `super::` reach the crate root from it;
/// `None` for src/lib.rs.
fn layer_of(rel: &Path) -> Option<(String, usize)> {
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let first = parts.first()?;
    let layer = first.strip_suffix(".rs").unwrap_or(first);
    if layer == "lib" && parts.len() == 1 {
        return None;
    }
    let last = parts.last()?;
    // src/x/mod.rs is module x; src/x/y.rs is x::y.
    let depth = if last == "mod.rs" { parts.len() - 1 } else { parts.len() };
    Some((layer.to_string(), depth))
}

#[test]
fn imports_go_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut per_layer = [0usize; LAYERS.len()];
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let Some((layer, depth)) = layer_of(rel) else { continue };
        let from = rank(&layer).unwrap_or_else(|| panic!("src/{}: not in a known layer {LAYERS:?}", rel.display()));
        per_layer[from] += 1;
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (line, to) in imports(&code_only(&text), depth) {
            if !allowed(&layer, &to) {
                wrong.push(format!("src/{}:{line}: {layer} imports {to}", rel.display()));
            }
        }
    }
    for (layer, n) in LAYERS.iter().zip(per_layer) {
        assert!(n > 0, "no .rs file found for layer {layer} under {}", src.display());
    }
    assert!(wrong.is_empty(), "imports against the layers (ffi → api → runtime → engine, vocabulary below):\n{}", wrong.join("\n"));
}

/// The scanner itself: it must see what it is meant to and nothing else,
/// or the test above could pass on anything.
#[test]
fn the_scanner_sees_paths_not_comments() {
    let code = code_only(concat!(
        "use crate::api::Error; // crate::ffi in a comment\n",
        "/* crate::ffi /* nested */ crate::ffi */ let s = \"crate::ffi\";\n",
        "let r = r#\"crate::ffi\"#; let q = '\"'; let p = crate :: runtime::x();\n",
        "use crate::{engine::Micros, vocabulary::{error::Error, time}};\n",
        "fn f<'a>(x: &'a str) { $crate::ffi::g(); }\n",
        "use super::super::api::X; use super::sibling::Y; notcrate::ffi;\n",
    ));
    let names = imports(&code, 2);
    let want: Vec<(usize, String)> =
        [(1, "api"), (3, "runtime"), (4, "engine"), (4, "vocabulary"), (5, "ffi"), (6, "api")]
            .iter()
            .map(|(l, n)| (*l, n.to_string()))
            .collect();
    assert_eq!(names, want);
    assert!(!allowed("engine", "runtime") && allowed("engine", "vocabulary"));
    assert!(!allowed("vocabulary", "engine") && !allowed("runtime", "api"));
    assert!(!allowed("ffi", "engine") && !allowed("ffi", "runtime") && allowed("ffi", "api"));
    assert!(allowed("api", "engine") && allowed("api", "runtime") && allowed("runtime", "vocabulary"));
    assert_eq!(layer_of(Path::new("lib.rs")), None);
    assert_eq!(layer_of(Path::new("api/mod.rs")), Some(("api".to_string(), 1)));
    assert_eq!(layer_of(Path::new("engine/tree/one_leaf.rs")), Some(("engine".to_string(), 3)));
}
