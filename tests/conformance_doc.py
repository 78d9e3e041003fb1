#!/usr/bin/env python3
"""Check that every test docs/CONFORMANCE.md names exists in the tree.

Usage: conformance_doc.py [REPO_ROOT] [--doc PATH]

The table convention (see docs/CONFORMANCE.md): a Markdown table whose last
column is "Tests"; each test is a name in backticks in that column.
A name is one of:

  - a Rust test function: `name` matches `fn name` in a .rs file under
    src/ or tests/;
  - a C case of the mocked suite, named as ctest names it:
    `c_mock_<group>_<case>` matches `case_<case>(` in a .c file under
    c-tests/ (the group is not checked: cases move between files);
  - a C case of the namespace bed: `c_netbed_<case>`, likewise.

Names are looked up across those directories, never in a given file:
tests move between files while the code is restructured.

Exit status: 0 when the table has rows and every name exists; 1 otherwise,
with the missing names (and their rows' sections) on stderr.
"""

import os
import re
import sys

C_PREFIXES = ("c_mock_", "c_netbed_")


def parse_rows(text):
    """Yield (section, tests_cell) for each data row of the conformance tables."""
    rows = []
    in_table = False
    tests_col = None
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("|"):
            in_table = False
            tests_col = None
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if not in_table:
            # Header row: the table counts only if its last column is "Tests".
            in_table = True
            tests_col = len(cells) - 1 if cells and cells[-1].lower() == "tests" else None
            continue
        if tests_col is None:
            continue
        if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
            continue  # the separator row
        if len(cells) <= tests_col:
            continue
        rows.append((cells[0], cells[tests_col]))
    return rows


def names_in(cell):
    return re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell)


def read_sources(root, subdirs, exts):
    out = []
    for sub in subdirs:
        base = os.path.join(root, sub)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d not in ("target", ".git")]
            for f in filenames:
                if f.endswith(exts):
                    try:
                        with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                            out.append(fh.read())
                    except OSError:
                        pass
    return "\n".join(out)


def c_case(name):
    for p in C_PREFIXES:
        if name.startswith(p):
            rest = name[len(p):]
            if p == "c_mock_":
                # c_mock_<group>_<case>: the group is one word.
                if "_" not in rest:
                    return None
                rest = rest.split("_", 1)[1]
            return rest
    return None


def main(argv):
    args = [a for a in argv[1:]]
    doc = None
    if "--doc" in args:
        i = args.index("--doc")
        doc = args[i + 1]
        del args[i:i + 2]
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    doc = doc or os.path.join(root, "docs", "CONFORMANCE.md")
    try:
        with open(doc, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        print(f"conformance_doc: cannot read {doc}: {e}", file=sys.stderr)
        return 1

    rows = parse_rows(text)
    if not rows:
        print(f"conformance_doc: {doc} has no table rows with a Tests column", file=sys.stderr)
        return 1

    rust = read_sources(root, ["src", "tests"], (".rs",))
    csrc = read_sources(root, ["c-tests"], (".c", ".h"))
    rust_fns = set(re.findall(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", rust))
    c_cases = set(re.findall(r"\bcase_([a-z0-9_]+)\s*\(", csrc))

    missing = []
    named = 0
    with_tests = 0
    for section, cell in rows:
        names = names_in(cell)
        if names:
            with_tests += 1
        for n in names:
            named += 1
            case = c_case(n)
            ok = (case in c_cases) if case is not None else (n in rust_fns)
            if not ok:
                missing.append((section, n))

    if missing:
        print(f"conformance_doc: {len(missing)} test name(s) in {doc} not found "
              "(Rust `fn NAME` under src/ or tests/, C `case_NAME(` under c-tests/):", file=sys.stderr)
        for section, n in missing:
            print(f"  {n}  (row {section})", file=sys.stderr)
        return 1
    print(f"conformance_doc: {len(rows)} rows, {with_tests} with tests, {named} test names, all found")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
