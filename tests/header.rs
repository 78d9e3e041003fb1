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

const HEADER: &str = include_str!("../include/taps_racing.h");
const COMPAT: &str = include_str!("../include/taps_racing_compat.h");

/// System types the header names without owning them.
const SYSTEM: &[&str] = &["sockaddr", "sockaddr_storage", "in_addr", "in6_addr"];

/// The text without comments.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier ending at byte `end` of `s` (exclusive), if any.
fn ident_before(s: &str, end: usize) -> &str {
    let start = s[..end].rfind(|c: char| !is_ident(c)).map_or(0, |i| i + 1);
    &s[start..end]
}

/// The identifier starting at byte `start` of `s`.
fn ident_at(s: &str, start: usize) -> &str {
    let end = s[start..].find(|c: char| !is_ident(c)).map_or(s.len(), |i| start + i);
    &s[start..end]
}

/// What a header declares: (kind, name) for every macro, struct/enum tag,
/// typedef name, enum constant and function.
fn declarations(header: &str) -> Vec<(&'static str, String)> {
    let code = code(header);
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#define") {
            let rest = rest.trim_start();
            out.push(("macro", ident_at(rest, 0).to_string()));
        }
    }
    // Tags: `struct X` / `enum X` anywhere (declarations and uses).
    for kw in ["struct ", "enum "] {
        for (i, _) in code.match_indices(kw) {
            if i > 0 && is_ident(code[..i].chars().next_back().unwrap()) {
                continue;
            }
            let name = ident_at(&code, i + kw.len());
            if !name.is_empty() {
                out.push(("tag", name.to_string()));
            }
        }
    }
    // Typedef names: the identifier before the `;` ending a typedef, or the
    // `(*name)` of a function pointer typedef.
    let mut rest = code.as_str();
    while let Some(i) = rest.find("typedef ") {
        let after = &rest[i..];
        let mut depth = 0;
        let mut end = after.len();
        for (j, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ';' if depth == 0 => {
                    end = j;
                    break;
                }
                _ => {}
            }
        }
        let decl = &after[..end];
        let name = match decl.find("(*") {
            Some(p) if !decl.contains('{') => ident_at(decl, p + 2),
            _ => ident_before(decl, decl.trim_end().len()),
        };
        out.push(("typedef", name.to_string()));
        if decl.starts_with("typedef enum") {
            let body = &decl[decl.find('{').unwrap() + 1..decl.rfind('}').unwrap()];
            for item in body.split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    out.push(("enum constant", ident_at(item, 0).to_string()));
                }
            }
        }
        rest = &after[end..];
    }
    // Functions: `name(` in top-level statements other than typedefs,
    // leaving out the preprocessor lines and the C++ `extern "C" {` / `}`
    // between `#ifdef __cplusplus` and `#endif`.
    let mut plain = String::new();
    let mut in_cplusplus = false;
    for line in code.lines() {
        let t = line.trim();
        if t.starts_with("#ifdef __cplusplus") {
            in_cplusplus = true;
        } else if t.starts_with("#endif") {
            in_cplusplus = false;
        } else if !in_cplusplus && !t.starts_with('#') {
            plain.push_str(line);
            plain.push('\n');
        }
    }
    let mut depth = 0;
    let mut statement = String::new();
    for c in plain.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        statement.push(c);
        if c == ';' && depth == 0 {
            let s = statement.trim();
            if !s.starts_with("typedef") {
                if let Some(p) = s.find('(') {
                    let name = ident_before(s, s[..p].trim_end().len());
                    out.push(("function", name.to_string()));
                }
            }
            statement.clear();
        }
    }
    out
}

#[test]
fn every_identifier_in_the_header_is_prefixed() {
    let decls = declarations(HEADER);
    for kind in ["macro", "tag", "typedef", "enum constant", "function"] {
        assert!(decls.iter().any(|(k, _)| *k == kind), "the parser found no {kind}: {decls:?}");
    }
    let functions = decls.iter().filter(|(k, _)| *k == "function").count();
    assert!(functions >= 76, "found only {functions} functions");
    let bad: Vec<_> = decls
        .iter()
        .filter(|(kind, name)| match *kind {
            "macro" | "enum constant" => !name.starts_with("TAPS_"),
            "tag" => !name.starts_with("taps_") && !SYSTEM.contains(&name.as_str()),
            _ => !name.starts_with("taps_"),
        })
        .collect();
    assert!(bad.is_empty(), "unprefixed identifiers in include/taps_racing.h: {bad:?}");
}

#[test]
fn the_header_has_the_crate_version() {
    let v = |name: &str| {
        let line = HEADER.lines().find(|l| l.starts_with(&format!("#define {name} "))).expect(name);
        line[format!("#define {name} ").len()..].trim().to_string()
    };
    assert_eq!(v("TAPS_RACING_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(v("TAPS_RACING_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(v("TAPS_RACING_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    assert_eq!(v("TAPS_RACING_VERSION_STRING"), format!("\"{}\"", env!("CARGO_PKG_VERSION")));
}

/// The compat header maps old names, none of which the main header still
/// declares, onto names it does declare. (Its text is checked against
/// scripts/migrate-0.1-names.py by the ctest compat_header_is_current.)
#[test]
fn the_compat_header_maps_old_names_onto_declared_ones() {
    let declared: std::collections::HashSet<String> = declarations(HEADER).into_iter().map(|(_, n)| n).collect();
    let mut olds = std::collections::HashSet::new();
    for line in code(COMPAT).lines() {
        let Some(rest) = line.trim().strip_prefix("#define ") else { continue };
        let mut words = rest.split_whitespace();
        let (old, new) = (words.next().unwrap(), words.next());
        if old == "TAPS_RACING_COMPAT_H" {
            continue;
        }
        let new = new.unwrap_or_else(|| panic!("#define {old} maps to nothing"));
        assert!(declared.contains(new), "#define {old} {new}: taps_racing.h does not declare {new}");
        assert!(!declared.contains(old), "#define {old} {new}: taps_racing.h still declares {old}");
        assert!(olds.insert(old.to_string()), "{old} is defined twice");
    }
    // 0.1 had 72 unprefixed functions, 34 types and 42 unprefixed constants.
    assert_eq!(olds.len(), 72 + 34 + 42);
    for old in ["Connection", "EventLoop", "TapsError", "event_loop_new", "ATTEMPT_OUTCOME_WON", "RACING_TYPE_DELAYED"] {
        assert!(olds.contains(old), "{old} is not mapped");
    }
}

/// The parser behind every_identifier_in_the_header_is_prefixed sees each
/// kind of declaration (so the test cannot pass by finding nothing).
#[test]
fn the_parser_sees_every_kind_of_declaration() {
    let sample = "#define LEGACY 1\n\
        typedef enum Kind { KIND_A = 1, KIND_B, } Kind;\n\
        typedef struct Handle Handle;\n\
        typedef void (*Callback)(const struct Event *e, void *user_data);\n\
        #ifdef __cplusplus\nextern \"C\" {\n#endif\n\
        // a comment naming not_a_function(void);\n\
        struct Handle *handle_new(int (*f)(int), size_t n);\n\
        void handle_free(struct Handle *h);\n\
        #ifdef __cplusplus\n}\n#endif\n";
    let got = declarations(sample);
    for want in [
        ("macro", "LEGACY"),
        ("tag", "Kind"),
        ("typedef", "Kind"),
        ("enum constant", "KIND_A"),
        ("enum constant", "KIND_B"),
        ("tag", "Handle"),
        ("typedef", "Handle"),
        ("typedef", "Callback"),
        ("tag", "Event"),
        ("function", "handle_new"),
        ("function", "handle_free"),
    ] {
        assert!(got.iter().any(|(k, n)| *k == want.0 && n == want.1), "{want:?} not in {got:?}");
    }
    assert!(!got.iter().any(|(_, n)| n == "not_a_function" || n == "f"), "{got:?}");
}
