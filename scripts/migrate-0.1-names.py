#!/usr/bin/env python3
"""Move C and C++ code from the taps-racing 0.1 names to the prefixed ones.

taps-racing 0.1 exported unprefixed names (`Connection`, `event_loop_new`,
`ATTEMPT_OUTCOME_WON`) that collide with other C libraries. Every exported
identifier now carries one prefix:

  functions       taps_ + the 0.1 name        event_loop_new -> taps_event_loop_new
  types           taps_ + snake_case of it    EventLoop -> taps_event_loop,
                                              TapsError -> taps_error
  enum constants  TAPS_ + the 0.1 name        ATTEMPT_OUTCOME_WON -> TAPS_ATTEMPT_OUTCOME_WON
  macros          TAPS_RACING_...

taps_strerror, taps_last_error, taps_last_error_message, TAPS_OK and
TAPS_ERROR_* were prefixed already and do not change.

Usage:
  migrate-0.1-names.py FILE...            rewrite the files in place
  migrate-0.1-names.py --check FILE...    list what would change (exit 1 if
                                          anything would), change nothing
  migrate-0.1-names.py --text FILE...     also rewrite inside string literals
                                          (for Markdown and other prose)
  migrate-0.1-names.py --map              print the old -> new table
  migrate-0.1-names.py --compat-header    print include/taps_racing_compat.h
  migrate-0.1-names.py --compat-header --check FILE
                                          exit 1 if FILE is not what it prints

Identifiers are replaced on word boundaries only (`my_connection_free` and
`taps_connection_free` are left alone), never after `::` (a Rust or C++
path), and by default not inside string or character literals. Comments are
rewritten. Programs that cannot move yet can include
<taps_racing_compat.h> instead of <taps_racing.h>: it maps the 0.1 names
onto the new ones with #define.

Python 3.6+, standard library only.
"""

import re
import sys

# The 0.1 functions that were not prefixed (every one gains "taps_").
FUNCTIONS_0_1 = """
event_loop_new event_loop_new_with_options event_loop_run event_loop_run_once
event_loop_set_resolution_cache event_loop_process event_loop_get_fd
event_loop_get_timeout_ms event_loop_start_thread event_loop_stop_thread
event_loop_shared event_loop_release event_loop_free event_loop_advance_clock
event_loop_now_us event_loop_add_protocol event_loop_set_resolver
remote_endpoint_new remote_endpoint_with_hostname remote_endpoint_with_port
remote_endpoint_with_service remote_endpoint_with_ipv4 remote_endpoint_with_ipv6
remote_endpoint_free
local_endpoint_new local_endpoint_with_interface local_endpoint_with_ipv4
local_endpoint_with_ipv6 local_endpoint_with_port local_endpoint_free
transport_properties_new transport_properties_free transport_properties_set
transport_properties_set_interface transport_properties_set_interface_type
racing_options_default
preconnection_new preconnection_free preconnection_initiate_with_racing
preconnection_add_local_endpoint preconnection_set_racing_type
connection_get_fd connection_get_remote_address connection_get_error
connection_get_os_error connection_get_id connection_get_protocol
connection_get_protocol_connection connection_attempt_count
connection_get_attempt connection_close connection_free
pool_options_default connection_pool_new connection_pool_acquire
connection_pool_buffered connection_pool_free
group_options_default connection_group_new connection_group_assign
connection_group_release_stream connection_group_mark_failed
connection_group_set_weight connection_group_member_metrics
connection_group_member_fd connection_group_members connection_group_free
protocol_attempt_ready protocol_attempt_failed protocol_attempt_index
resolver_query_answer resolver_query_fail
""".split()

# The 0.1 types: structs, opaque handles, enums, callback typedefs.
TYPES_0_1 = """
AssignPolicy AttemptInfo AttemptOutcome BranchKind Connection
ConnectionCallbacks ConnectionGroup ConnectionPool EventLoop EventLoopOptions
GroupEvent GroupEventCallback GroupEventKind GroupMemberMetrics GroupOptions
InterfaceType LocalEndpoint PoolEvent PoolEventCallback PoolEventKind
PoolOptions Preconnection Preference ProtocolAttempt ProtocolFlag
ProtocolImplementation RacingOptions RacingTypeCode RemoteEndpoint
ResolverImplementation ResolverQuery SelectionProperty TapsError
TransportProperties
""".split()

# The 0.1 enum constants that were not prefixed (every one gains "TAPS_").
CONSTANTS_0_1 = """
ATTEMPT_OUTCOME_RUNNING ATTEMPT_OUTCOME_WON ATTEMPT_OUTCOME_FAILED
ATTEMPT_OUTCOME_CANCELLED ATTEMPT_OUTCOME_SPARE
POOL_EVENT_KIND_RACE_STARTED POOL_EVENT_KIND_ATTEMPT_SUCCEEDED
POOL_EVENT_KIND_ATTEMPT_FAILED POOL_EVENT_KIND_RACE_WON
POOL_EVENT_KIND_RACE_FAILED POOL_EVENT_KIND_CONNECTION_BUFFERED
POOL_EVENT_KIND_CONNECTION_DISPOSED POOL_EVENT_KIND_BACKOFF
GROUP_EVENT_KIND_MEMBER_JOINED GROUP_EVENT_KIND_MEMBER_FAILED
GROUP_EVENT_KIND_ALL_FAILED GROUP_EVENT_KIND_RECOVERED
GROUP_EVENT_KIND_REBUILD_FAILED
ASSIGN_POLICY_ROUND_ROBIN ASSIGN_POLICY_LEAST_LOADED ASSIGN_POLICY_WEIGHTED
PREFERENCE_REQUIRE PREFERENCE_PREFER PREFERENCE_NO_PREFERENCE
PREFERENCE_AVOID PREFERENCE_PROHIBIT
INTERFACE_TYPE_LOOPBACK INTERFACE_TYPE_WIRED INTERFACE_TYPE_WIRELESS
INTERFACE_TYPE_OTHER
SELECTION_PROPERTY_RELIABILITY SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES
SELECTION_PROPERTY_MULTISTREAMING
RACING_TYPE_IMMEDIATE RACING_TYPE_DELAYED RACING_TYPE_FAILOVER
BRANCH_KIND_PATH BRANCH_KIND_PROTOCOL BRANCH_KIND_ENDPOINT
PROTOCOL_FLAG_RELIABLE PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES
PROTOCOL_FLAG_MULTISTREAMING
""".split()

# Where a type name is an English word, not the type: "the Connection
# Attempt Delay" (RFC 8305), "No Preference" (RFC 9622). Left alone.


def snake(name):
    """CamelCase -> snake_case."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def type_name(old):
    return "taps_error" if old == "TapsError" else "taps_" + snake(old)


FUNCTIONS = {old: "taps_" + old for old in FUNCTIONS_0_1}
TYPES = {old: type_name(old) for old in TYPES_0_1}
CONSTANTS = {old: "TAPS_" + old for old in CONSTANTS_0_1}
NAMES = {**FUNCTIONS, **TYPES, **CONSTANTS}

_IDENT = re.compile(
    r"(?<![\w:])(?<!No )(" + "|".join(sorted(NAMES, key=len, reverse=True)) + r")(?!\w)"
    r"(?! Attempt Delay)"
)
# Comments, string literals and character literals of C, C++ and Rust.
_LEXEME = re.compile(
    r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])'",
    re.S,
)


def rename(text, names=None):
    """Replace every old name in a piece of code or prose."""
    table = NAMES if names is None else names
    return _IDENT.sub(lambda m: table.get(m.group(1), m.group(1)), text)


def rewrite(source, in_strings=False, names=None):
    """The source with every old identifier replaced; literals are kept
    unless `in_strings`."""
    if in_strings:
        return rename(source, names)
    out, pos = [], 0
    for m in _LEXEME.finditer(source):
        out.append(rename(source[pos:m.start()], names))
        lexeme = m.group(0)
        out.append(rename(lexeme, names) if lexeme.startswith("/") else lexeme)
        pos = m.end()
    out.append(rename(source[pos:], names))
    return "".join(out)


def compat_header():
    lines = [
        "/*",
        " * taps_racing_compat.h: the taps-racing 0.1 names, for programs written",
        " * against them. Opt-in: include it instead of <taps_racing.h>.",
        " *",
        " * Every exported identifier now carries the taps_ / TAPS_ prefix (see",
        " * CHANGELOG.md). This header includes <taps_racing.h> and maps each 0.1",
        " * name onto the new one with #define, so `Connection *`,",
        " * `struct Connection *`, `event_loop_new()` and `ATTEMPT_OUTCOME_WON`",
        " * still compile and link. The macros are plain identifiers: they also",
        " * rename any other use of these words in the including file, which is why",
        " * the header is opt-in. scripts/migrate-0.1-names.py moves code to the",
        " * new names for good.",
        " *",
        " * Generated by scripts/migrate-0.1-names.py --compat-header; do not edit.",
        " */",
        "",
        "#ifndef TAPS_RACING_COMPAT_H",
        "#define TAPS_RACING_COMPAT_H",
        "",
        "#include \"taps_racing.h\"",
    ]
    for title, table in (("Types", TYPES), ("Functions", FUNCTIONS), ("Enum constants", CONSTANTS)):
        lines += ["", "/* " + title + ". */"]
        width = max(len(old) for old in table)
        lines += ["#define %-*s %s" % (width, old, new) for old, new in table.items()]
    lines += ["", "#endif /* TAPS_RACING_COMPAT_H */", ""]
    return "\n".join(lines)


def main(argv):
    args = argv[1:]
    if args[:1] == ["--map"]:
        for old, new in NAMES.items():
            print(old, new)
        return 0
    if args[:1] == ["--compat-header"]:
        if args[1:2] == ["--check"] and len(args) == 3:
            with open(args[2], encoding="utf-8") as f:
                if f.read() != compat_header():
                    print("%s differs from what --compat-header prints; regenerate it with\n"
                          "  scripts/migrate-0.1-names.py --compat-header > %s" % (args[2], args[2]))
                    return 1
            return 0
        sys.stdout.write(compat_header())
        return 0
    check = "--check" in args
    in_strings = "--text" in args
    files = [a for a in args if a not in ("--check", "--text")]
    if not files or any(f.startswith("--") for f in files):
        sys.stderr.write(__doc__)
        return 2
    changed = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            before = f.read()
        after = rewrite(before, in_strings)
        if after == before:
            continue
        changed += 1
        if check:
            for n, (a, b) in enumerate(zip(before.split("\n"), after.split("\n")), 1):
                if a != b:
                    olds = sorted({m.group(1) for m in _IDENT.finditer(a)} - {m.group(1) for m in _IDENT.finditer(b)})
                    print("%s:%d: %s" % (path, n, ", ".join("%s -> %s" % (o, NAMES[o]) for o in olds)))
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(after)
            print("rewrote " + path)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
