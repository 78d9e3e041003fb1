/* taps_race: race TCP connections to a host the Happy Eyeballs way (RFC 8305)
 * and print the timeline of the race.
 *
 *   taps_race [--attempt-delay MS] [--resolution-delay MS] [--timeout MS]
 *             [--interface IF]... [--pref64 PREFIX] [--history FILE]
 *             [--https auto|on|off] [--ech-required] [--json] [-v] [HOST PORT]
 *
 * PORT is a number or a service name ("https"). With no HOST and PORT the
 * program demonstrates itself: it listens on 127.0.0.1 (ephemeral port) and
 * races "localhost" plus the literal ::1 on that port, so ::1 is refused and
 * IPv4 wins.
 *
 * -v prints the library's log lines (debug level, through
 * taps_set_log_callback) on stderr with their times. On a terminal, a race
 * still running after 1 s shows a live line of the attempts it waits for.
 *
 * --history FILE loads the loop's history of earlier races from FILE (if it
 * exists) before the race and writes it back after: run twice, the second
 * run skips an address that failed in the first (HEv3 draft -04 §5.3). The
 * file names the hosts you connected to; it is written with mode 0600.
 *
 * With HTTPS records (HEv3), the timeline shows under each attempt its ALPN
 * ids, SvcPriority and whether its address came from a hint, and after it
 * the records used (priority, target, port, alpn, ECH); a race without
 * them prints none of it.
 *
 * Exit status: 0 connected, 1 the race failed, 2 bad usage.
 *
 * Uses only the public header taps_racing.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "taps_racing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_CONNECTED 0
#define EXIT_RACE_FAILED 1
#define EXIT_USAGE 2

static const char *prog = "taps_race";

static void usage(FILE *out) {
  fprintf(out,
          "usage: %s [--attempt-delay MS] [--resolution-delay MS] [--timeout MS] [--interface IF]... [--pref64 PREFIX]\n"
          "       [--history FILE] [--https auto|on|off] [--ech-required] [--json] [-v] [HOST PORT]\n"
          "\n"
          "Races TCP connections to HOST (a name or an IP literal) on PORT (a number\n"
          "or a service name) as RFC 8305 (Happy Eyeballs v2) describes, and prints\n"
          "the timeline of the attempts and the winner.\n"
          "\n"
          "  --attempt-delay MS     Connection Attempt Delay (default 250, RFC 8305 §5)\n"
          "  --resolution-delay MS  Resolution Delay (default 50, RFC 8305 §3)\n"
          "  --timeout MS           total timeout of the race (default 0: none)\n"
          "  --interface IF         race a path on interface IF (repeatable; paths race each\n"
          "                         other with the attempt delay, RFC 9623 §4.3; needs CAP_NET_RAW)\n"
          "  --pref64 PREFIX        NAT64 prefix (\"2001:db8:64::/96\"): an IPv4 literal with no IPv4 route\n"
          "                         is raced as its IPv6 address under it (RFC 6052, RFC 8305 §7.1)\n"
          "  --https auto|on|off    when the race asks HTTPS records (HEv3 draft §4.1; default auto: port 443\n"
          "                         only); asked only of a resolver that answers them\n"
          "  --ech-required         wait for the HTTPS records and try ECH services first (HEv3 draft §6.3)\n"
          "  --history FILE         load the history of earlier races from FILE, save it after\n"
          "  --json                 print one JSON object on stdout, nothing else\n"
          "  -v                     print the library's log lines (debug) on stderr, with their times\n"
          "  -h, --help             this help\n"
          "\n"
          "With no HOST and PORT it races localhost against a listener of its own on\n"
          "127.0.0.1 (and ::1 on the same port, which refuses).\n"
          "Exit status: 0 connected, 1 the race failed, 2 bad usage.\n",
          prog);
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", prog);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  usage(stderr);
  return EXIT_USAGE;
}

/* A decimal number in [0, max] spanning the whole string. */
static int parse_u32(const char *s, unsigned long max, uint32_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return -1;
  errno = 0;
  char *end = NULL;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v > max) return -1;
  *out = (uint32_t)v;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ---- logs and the live line ------------------------------------------ */

static double t_start_ms;       /* the program's start: log times count from it */
/* A live line is on stderr (a terminal). Atomic: the log callback may run
   on a resolver thread while the main thread draws the line. */
static _Atomic int live_shown;

/* Erase the live line, if one is shown. */
static void live_clear(void) {
  if (atomic_exchange(&live_shown, 0)) fputs("\r\033[K", stderr);
}

/* -v: one log line on stderr, with its time and level. Called on the thread
 * that logs (here: the main thread running the loop, or a resolver thread),
 * so it only formats and writes one line. */
static void on_log(taps_log_level level, const char *target, const char *message, void *user_data) {
  (void)target;
  (void)user_data;
  static const char *names[] = {"off", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
  const char *name = (unsigned)level < 6 ? names[level] : "?";
  live_clear();
  fprintf(stderr, "%10.2f ms %-5s %s\n", now_ms() - t_start_ms, name, message);
}

/* The live line: the attempts in flight and for how long. */
static void live_show(const taps_connection *c, double elapsed_ms) {
  char line[160];
  int len = snprintf(line, sizeof line, "racing for %.1f s:", elapsed_ms / 1000.0);
  size_t n = taps_connection_attempt_count(c);
  int running = 0;
  for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof line - 40; i++) {
    taps_attempt_info info;
    if (taps_connection_get_attempt(c, i, &info) != TAPS_OK || info.outcome != TAPS_ATTEMPT_OUTCOME_RUNNING) continue;
    char host[INET6_ADDRSTRLEN] = "?";
    const void *ip = info.address.ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)&info.address)->sin6_addr
                                                        : (const void *)&((const struct sockaddr_in *)&info.address)->sin_addr;
    inet_ntop(info.address.ss_family, ip, host, sizeof host);
    len += snprintf(line + len, sizeof line - (size_t)len, " #%zu %s for %.1f s", i + 1, host,
                    (elapsed_ms - (double)info.started_us / 1000.0) / 1000.0);
    running++;
  }
  if (running == 0) snprintf(line + len, sizeof line - (size_t)len, " waiting for DNS answers");
  fprintf(stderr, "\r\033[K%s", line);
  atomic_store(&live_shown, 1);
}

/* ---- the race -------------------------------------------------------- */

typedef struct RaceState {
  double t_initiate_ms;
  double elapsed_ms;
  int done;
  int won;
} RaceState;

static int on_ready(taps_connection *c, void *ud) {
  (void)c;
  RaceState *s = (RaceState *)ud;
  s->elapsed_ms = now_ms() - s->t_initiate_ms;
  s->done = 1;
  s->won = 1;
  return 0;
}

static int on_establishment_error(taps_connection *c, void *ud) {
  (void)c;
  RaceState *s = (RaceState *)ud;
  s->elapsed_ms = now_ms() - s->t_initiate_ms;
  s->done = 1;
  s->won = 0;
  return 0;
}

static int on_other(taps_connection *c, void *ud) {
  (void)c;
  (void)ud;
  return 0;
}

/* ---- formatting ------------------------------------------------------ */

typedef struct Addr {
  char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2]; /* without brackets, with %scope */
  unsigned port;
  const char *family; /* "ipv4", "ipv6" or "unknown" */
} Addr;

static void addr_format(const struct sockaddr_storage *ss, Addr *out) {
  strcpy(out->text, "?");
  out->port = 0;
  out->family = "unknown";
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, out->text, sizeof out->text);
    out->port = ntohs(s4->sin_port);
    out->family = "ipv4";
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, out->text, sizeof out->text);
    if (s6->sin6_scope_id != 0) {
      char ifname[IF_NAMESIZE];
      size_t len = strlen(out->text);
      if (if_indextoname(s6->sin6_scope_id, ifname) != NULL)
        snprintf(out->text + len, sizeof out->text - len, "%%%s", ifname);
      else
        snprintf(out->text + len, sizeof out->text - len, "%%%" PRIu32, (uint32_t)s6->sin6_scope_id);
    }
    out->port = ntohs(s6->sin6_port);
    out->family = "ipv6";
  }
}

static const char *outcome_name(taps_attempt_outcome o) {
  switch (o) {
    case TAPS_ATTEMPT_OUTCOME_RUNNING: return "running";
    case TAPS_ATTEMPT_OUTCOME_WON: return "won";
    case TAPS_ATTEMPT_OUTCOME_FAILED: return "failed";
    case TAPS_ATTEMPT_OUTCOME_CANCELLED: return "cancelled";
    case TAPS_ATTEMPT_OUTCOME_SPARE: return "spare";
    case TAPS_ATTEMPT_OUTCOME_PRUNED: return "pruned";
  }
  return "unknown";
}

static void json_string(FILE *out, const char *s) {
  if (s == NULL) {
    fputs("null", out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", out); break;
      case '\\': fputs("\\\\", out); break;
      case '\n': fputs("\\n", out); break;
      case '\r': fputs("\\r", out); break;
      case '\t': fputs("\\t", out); break;
      default:
        if (*p < 0x20)
          fprintf(out, "\\u%04x", *p);
        else
          fputc(*p, out);
    }
  }
  fputc('"', out);
}

/* The loop's NAT64 prefix as text, "" when none (--pref64, or discovered),
   and where it came from (taps_event_loop_get_pref64_source). */
static char pref64_text[64];
static int pref64_source;

static const char *pref64_source_name(int source) {
  switch (source) {
    case TAPS_PREF64_SOURCE_CALLER: return "caller";
    case TAPS_PREF64_SOURCE_ROUTER_ADVERTISEMENT: return "ra";
    case TAPS_PREF64_SOURCE_DNS: return "dns";
    default: return NULL;
  }
}

/* The IPv4 address attempt `i` was synthesized from, into `a`; 0 when it
   was not synthesized. */
static int synthesized_from(const taps_connection *c, size_t i, Addr *a) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (taps_connection_get_attempt_synthesized_from(c, i, &ss, &len) != 1) return 0;
  addr_format(&ss, a);
  return 1;
}

/* ---- HTTPS records (HEv3) in --json ----------------------------------- */

/* A JSON array of C strings got(c, i, 0..n). */
static void json_alpn(FILE *out, const taps_connection *c, size_t i, size_t n,
                      const char *(*get)(const taps_connection *, size_t, size_t)) {
  fputc('[', out);
  for (size_t j = 0; j < n; j++) {
    if (j) fputs(", ", out);
    json_string(out, get(c, i, j));
  }
  fputc(']', out);
}

/* Attempt i's HEv3 fields: "alpn", "service_priority", "from_hint". */
static void json_attempt_https(FILE *out, const taps_connection *c, size_t i) {
  fputs(", \"alpn\": ", out);
  json_alpn(out, c, i, taps_connection_get_attempt_alpn_count(c, i), taps_connection_get_attempt_alpn);
  uint16_t prio = 0;
  if (taps_connection_get_attempt_service_priority(c, i, &prio) == 1)
    fprintf(out, ", \"service_priority\": %u", prio);
  else
    fputs(", \"service_priority\": null", out);
  fprintf(out, ", \"from_hint\": %s", taps_connection_get_attempt_from_hint(c, i) == 1 ? "true" : "false");
}

static const char *dns_type_name(taps_dns_type t) {
  switch (t) {
    case TAPS_DNS_TYPE_HTTPS: return "HTTPS";
    case TAPS_DNS_TYPE_AAAA: return "AAAA";
    case TAPS_DNS_TYPE_A: return "A";
  }
  return "unknown";
}

/* The race's "https_records" and "dns_answers" (empty when it asked no
   HTTPS record). */
static void json_dns_report(FILE *out, const taps_connection *c) {
  fputs(", \"https_records\": [", out);
  size_t n = taps_connection_get_https_record_count(c);
  for (size_t i = 0; i < n; i++) {
    taps_https_record_info r = TAPS_HTTPS_RECORD_INFO_INIT;
    if (taps_connection_get_https_record(c, i, &r) != TAPS_OK) continue;
    fprintf(out, "%s{\"priority\": %u, \"target\": ", i ? ", " : "", r.priority);
    json_string(out, r.target);
    if (r.port != 0)
      fprintf(out, ", \"port\": %u", r.port);
    else
      fputs(", \"port\": null", out);
    fputs(", \"alpn\": ", out);
    json_alpn(out, c, i, r.alpn_count, taps_connection_get_https_record_alpn);
    fprintf(out, ", \"ech\": %s}", r.ech ? "true" : "false");
  }
  fputs("], \"dns_answers\": [", out);
  n = taps_connection_get_dns_answer_count(c);
  for (size_t i = 0; i < n; i++) {
    taps_dns_answer_info a = TAPS_DNS_ANSWER_INFO_INIT;
    if (taps_connection_get_dns_answer(c, i, &a) != TAPS_OK) continue;
    fprintf(out, "%s{\"type\": \"%s\", \"name\": ", i ? ", " : "", dns_type_name(a.record_type));
    json_string(out, a.name);
    fprintf(out, ", \"ms\": %.2f, ", (double)a.at_us / 1000.0);
    if (a.error == 0)
      fprintf(out, "\"count\": %zu}", a.count);
    else
      fprintf(out, "\"error\": %d}", a.error);
  }
  fputc(']', out);
}

/* --https and --ech-required on the preconnection; 0 or a taps_error. */
static int apply_https_options(taps_preconnection *pre, int https_policy, int ech_required) {
  int rc = TAPS_OK;
  if (https_policy >= 0) rc = taps_preconnection_set_https_policy(pre, https_policy);
  if (rc == TAPS_OK && ech_required) rc = taps_preconnection_set_ech_required(pre, true);
  return rc;
}

static void print_json(const taps_connection *c, const RaceState *st) {
  FILE *out = stdout;
  fputs("{\"pref64\": ", out);
  json_string(out, pref64_text[0] ? pref64_text : NULL);
  fputs(", \"pref64_source\": ", out);
  json_string(out, pref64_source_name(pref64_source));
  fputs(", \"winner\": ", out);
  struct sockaddr_storage ra;
  socklen_t ralen = sizeof ra;
  size_t n = taps_connection_attempt_count(c);
  if (st->won && taps_connection_get_remote_address(c, &ra, &ralen) == TAPS_OK) {
    Addr a;
    addr_format(&ra, &a);
    const char *protocol = "tcp";
    for (size_t i = 0; i < n; i++) {
      taps_attempt_info info;
      if (taps_connection_get_attempt(c, i, &info) == TAPS_OK && info.outcome == TAPS_ATTEMPT_OUTCOME_WON &&
          info.protocol != NULL)
        protocol = info.protocol;
    }
    fputs("{\"address\": ", out);
    json_string(out, a.text);
    fprintf(out, ", \"port\": %u, \"family\": \"%s\", \"protocol\": ", a.port, a.family);
    json_string(out, protocol);
    fputs("}", out);
  } else {
    fputs("null", out);
  }
  fprintf(out, ", \"elapsed_ms\": %.2f, \"error\": ", st->elapsed_ms);
  json_string(out, st->won ? NULL : taps_strerror(taps_connection_get_error(c)));
  fputs(", \"attempts\": [", out);
  for (size_t i = 0; i < n; i++) {
    taps_attempt_info info;
    if (taps_connection_get_attempt(c, i, &info) != TAPS_OK) continue;
    Addr a;
    addr_format(&info.address, &a);
    fprintf(out, "%s{\"address\": ", i ? ", " : "");
    json_string(out, a.text);
    fprintf(out, ", \"port\": %u, \"family\": \"%s\", \"protocol\": ", a.port, a.family);
    json_string(out, info.protocol);
    fputs(", \"interface\": ", out);
    json_string(out, info.interface_name);
    fprintf(out, ", \"started_ms\": %.2f, \"ended_ms\": ", (double)info.started_us / 1000.0);
    if (info.outcome == TAPS_ATTEMPT_OUTCOME_RUNNING)
      fputs("null", out);
    else
      fprintf(out, "%.2f", (double)info.ended_us / 1000.0);
    fprintf(out, ", \"outcome\": \"%s\", \"error\": ", outcome_name(info.outcome));
    json_string(out, info.os_error ? strerror(info.os_error) : NULL);
    Addr from;
    fputs(", \"synthesized_from\": ", out);
    json_string(out, synthesized_from(c, i, &from) ? from.text : NULL);
    json_attempt_https(out, c, i);
    fputs("}", out);
  }
  fputs("]", out);
  json_dns_report(out, c);
  fputs("}\n", out);
}

/* ---- HTTPS records (HEv3) in the readable output ---------------------- */

/* got(c, i, 0..n) joined by ',' into buf (size > 0). */
static void text_alpn(char *buf, size_t size, const taps_connection *c, size_t i, size_t n,
                      const char *(*get)(const taps_connection *, size_t, size_t)) {
  buf[0] = '\0';
  for (size_t j = 0; j < n; j++) {
    const char *id = get(c, i, j);
    size_t len = strlen(buf);
    snprintf(buf + len, size - len, "%s%s", j ? "," : "", id ? id : "?");
  }
}

/* Attempt i's HEv3 fields (ALPN, SvcPriority, from a hint) on a line of
   their own under its row; nothing when it has none (no HTTPS record). */
static void text_attempt_https(const taps_connection *c, size_t i) {
  char line[512] = "";
  size_t n = taps_connection_get_attempt_alpn_count(c, i);
  if (n > 0) {
    char alpn[400];
    text_alpn(alpn, sizeof alpn, c, i, n, taps_connection_get_attempt_alpn);
    snprintf(line, sizeof line, "  alpn %s", alpn);
  }
  uint16_t prio = 0;
  if (taps_connection_get_attempt_service_priority(c, i, &prio) == 1) {
    size_t len = strlen(line);
    snprintf(line + len, sizeof line - len, "  SvcPriority %u", prio);
  }
  if (taps_connection_get_attempt_from_hint(c, i) == 1) {
    size_t len = strlen(line);
    snprintf(line + len, sizeof line - len, "  from hint");
  }
  if (line[0]) printf("   %s\n", line);
}

/* The HTTPS records the race used, one a line; nothing when none. */
static void text_https_records(const taps_connection *c) {
  size_t n = taps_connection_get_https_record_count(c);
  if (n == 0) return;
  printf("\nHTTPS records:\n");
  for (size_t i = 0; i < n; i++) {
    taps_https_record_info r = TAPS_HTTPS_RECORD_INFO_INIT;
    if (taps_connection_get_https_record(c, i, &r) != TAPS_OK) continue;
    printf("  priority %u  target %s", r.priority, r.target ? r.target : "?");
    if (r.port != 0) printf("  port %u", r.port);
    if (r.alpn_count > 0) {
      char alpn[400];
      text_alpn(alpn, sizeof alpn, c, i, r.alpn_count, taps_connection_get_https_record_alpn);
      printf("  alpn %s", alpn);
    }
    printf("%s\n", r.ech ? "  ECH" : "");
  }
}

static void print_timeline(const taps_connection *c, const RaceState *st) {
  size_t n = taps_connection_attempt_count(c);
  printf("\n  #  %-42s %10s %10s  %-9s  %s\n", "address", "start ms", "end ms", "outcome", "error");
  for (size_t i = 0; i < n; i++) {
    taps_attempt_info info;
    if (taps_connection_get_attempt(c, i, &info) != TAPS_OK) continue;
    Addr a;
    addr_format(&info.address, &a);
    char where[INET6_ADDRSTRLEN + 2 * IF_NAMESIZE + 96];
    if (info.address.ss_family == AF_INET6)
      snprintf(where, sizeof where, "[%s]:%u", a.text, a.port);
    else
      snprintf(where, sizeof where, "%s:%u", a.text, a.port);
    if (info.interface_name != NULL) {
      size_t len = strlen(where);
      snprintf(where + len, sizeof where - len, " via %s", info.interface_name);
    }
    if (strcmp(info.protocol, "tcp") != 0) {
      size_t len = strlen(where);
      snprintf(where + len, sizeof where - len, " (%s)", info.protocol);
    }
    Addr from;
    if (synthesized_from(c, i, &from)) {
      size_t len = strlen(where);
      snprintf(where + len, sizeof where - len, " (NAT64 from %s)", from.text);
    }
    char end[32];
    if (info.outcome == TAPS_ATTEMPT_OUTCOME_RUNNING)
      snprintf(end, sizeof end, "-");
    else
      snprintf(end, sizeof end, "%.2f", (double)info.ended_us / 1000.0);
    printf("%3zu  %-42s %10.2f %10s  %-9s  %s\n", i + 1, where, (double)info.started_us / 1000.0, end,
           outcome_name(info.outcome), info.os_error ? strerror(info.os_error) : "-");
    text_attempt_https(c, i);
  }
  text_https_records(c);
  printf("\n");
  struct sockaddr_storage ra;
  socklen_t ralen = sizeof ra;
  if (st->won && taps_connection_get_remote_address(c, &ra, &ralen) == TAPS_OK) {
    Addr a;
    addr_format(&ra, &a);
    /* The table's times are the library's (the attempt's end); the ready
       callback comes a little later. */
    double won_ms = -1;
    for (size_t i = 0; i < n; i++) {
      taps_attempt_info info;
      if (taps_connection_get_attempt(c, i, &info) == TAPS_OK && info.outcome == TAPS_ATTEMPT_OUTCOME_WON)
        won_ms = (double)info.ended_us / 1000.0;
    }
    if (won_ms >= 0)
      printf("winner: %s port %u (%s, tcp) won at %.2f ms (ready callback at %.2f ms)\n", a.text, a.port, a.family,
             won_ms, st->elapsed_ms);
    else
      printf("winner: %s port %u (%s, tcp), ready callback at %.2f ms\n", a.text, a.port, a.family, st->elapsed_ms);
  } else {
    printf("no winner: %s (callback at %.2f ms)\n", taps_strerror(taps_connection_get_error(c)), st->elapsed_ms);
  }
}

/* ---- demo listener ----------------------------------------------------- */

/* Listens on 127.0.0.1 (ephemeral port) and reserves [::1] on the same port
 * without listening, so that ::1 refuses. Returns the listener. */
static int demo_listen(uint16_t *port, int *v6_reserved) {
  *v6_reserved = -1;
  for (int tries = 0; tries < 20; tries++) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l, 16) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0) {
      close(l);
      return -1;
    }
    *port = ntohs(sa.sin_port);
    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    if (v6 < 0) return l; /* no IPv6 at all: ::1 fails anyway */
    int one = 1;
    setsockopt(v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_loopback;
    s6.sin6_port = htons(*port);
    if (bind(v6, (struct sockaddr *)&s6, sizeof s6) == 0) {
      *v6_reserved = v6;
      return l;
    }
    int e = errno;
    close(v6);
    if (e != EADDRINUSE) return l; /* e.g. no ::1 here */
    close(l);                      /* someone has [::1]:port: pick another port */
  }
  return -1;
}

/* ---- history file ------------------------------------------------------ */

/* Load `path` into the loop's history; a missing file is an empty history.
 * Returns 0, or -1 after a message. */
static int history_load(taps_event_loop *loop, const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return errno == ENOENT ? 0 : (fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno)), -1);
  char *text = NULL;
  size_t len = 0, cap = 0;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      char *grown = realloc(text, cap);
      if (grown == NULL) {
        free(text);
        fclose(f);
        return -1;
      }
      text = grown;
    }
    memcpy(text + len, chunk, n);
    len += n;
  }
  fclose(f);
  int rc = text == NULL ? 0 : (text[len] = '\0', taps_event_loop_import_history(loop, text));
  free(text);
  if (rc < 0) fprintf(stderr, "%s: %s: not a history file (%s); ignored\n", prog, path, taps_strerror(rc));
  return 0;
}

/* Write the loop's history to `path` (mode 0600). */
static void history_save(taps_event_loop *loop, const char *path) {
  int n = taps_event_loop_export_history(loop, NULL, 0);
  if (n < 0) return;
  char *text = malloc((size_t)n + 1);
  if (text == NULL) return;
  if (taps_event_loop_export_history(loop, text, (size_t)n + 1) == n) {
    FILE *f = fopen(path, "w");
    if (f == NULL) {
      fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
    } else {
      fchmod(fileno(f), 0600);
      fwrite(text, 1, (size_t)n, f);
      fclose(f);
    }
  }
  free(text);
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc > 0 && argv[0] != NULL) {
    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
  }
  taps_racing_options opts = taps_racing_options_default();
  int json = 0;
  int verbose = 0;
  t_start_ms = now_ms();
  const char *pos[2] = {NULL, NULL};
  const char *history_file = NULL;
  const char *interfaces[16];
  int n_interfaces = 0;
  const char *pref64 = NULL;
  int https_policy = -1; /* --https: the library's default */
  int ech_required = 0;
  int npos = 0, only_pos = 0;

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!only_pos && strcmp(arg, "--") == 0) {
      only_pos = 1;
    } else if (!only_pos && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)) {
      usage(stdout);
      return 0;
    } else if (!only_pos && strcmp(arg, "--json") == 0) {
      json = 1;
    } else if (!only_pos && strcmp(arg, "-v") == 0) {
      verbose = 1;
    } else if (!only_pos && (strcmp(arg, "--attempt-delay") == 0 || strcmp(arg, "--resolution-delay") == 0 ||
                             strcmp(arg, "--timeout") == 0)) {
      if (i + 1 >= argc) return usage_error("%s needs a value in milliseconds", arg);
      uint32_t v;
      if (parse_u32(argv[i + 1], UINT32_MAX, &v) != 0)
        return usage_error("bad number of milliseconds: '%s'", argv[i + 1]);
      if (strcmp(arg, "--attempt-delay") == 0)
        opts.connection_attempt_delay_ms = v;
      else if (strcmp(arg, "--resolution-delay") == 0)
        opts.resolution_delay_ms = v;
      else
        opts.total_timeout_ms = v;
      i++;
    } else if (!only_pos && strcmp(arg, "--history") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') return usage_error("%s needs a file name", arg);
      history_file = argv[++i];
    } else if (!only_pos && strcmp(arg, "--interface") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') return usage_error("%s needs an interface name", arg);
      if (n_interfaces >= 16) return usage_error("%s", "at most 16 --interface options");
      interfaces[n_interfaces++] = argv[++i];
    } else if (!only_pos && strcmp(arg, "--pref64") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') return usage_error("%s needs a prefix (2001:db8:64::/96)", arg);
      pref64 = argv[++i];
    } else if (!only_pos && strcmp(arg, "--https") == 0) {
      const char *v = i + 1 < argc ? argv[++i] : "";
      if (strcmp(v, "auto") == 0)
        https_policy = TAPS_HTTPS_POLICY_AUTO;
      else if (strcmp(v, "on") == 0)
        https_policy = TAPS_HTTPS_POLICY_ON;
      else if (strcmp(v, "off") == 0)
        https_policy = TAPS_HTTPS_POLICY_OFF;
      else
        return usage_error("--https takes auto, on or off, not '%s'", v);
    } else if (!only_pos && strcmp(arg, "--ech-required") == 0) {
      ech_required = 1;
    } else if (!only_pos && arg[0] == '-' && arg[1] != '\0') {
      return usage_error("unknown option '%s'", arg);
    } else {
      if (npos >= 2) return usage_error("unexpected argument '%s'", arg);
      pos[npos++] = arg;
    }
  }
  if (npos == 1) return usage_error("%s", "HOST and PORT go together: both or neither");
  const int demo = (npos == 0);
  const char *host = demo ? "localhost" : pos[0];
  if (host[0] == '\0') return usage_error("%s", "empty HOST");

  int listener = -1, v6_reserved = -1;
  uint16_t port = 0;
  const char *service = NULL;
  if (demo) {
    listener = demo_listen(&port, &v6_reserved);
    if (listener < 0) {
      fprintf(stderr, "%s: cannot listen on 127.0.0.1: %s\n", prog, strerror(errno));
      return EXIT_RACE_FAILED;
    }
  } else {
    uint32_t v;
    const char *p = pos[1];
    if (p[0] >= '0' && p[0] <= '9') {
      if (parse_u32(p, 65535, &v) != 0 || v == 0) return usage_error("bad port '%s' (1-65535)", p);
      port = (uint16_t)v;
    } else if (p[0] == '\0' || p[0] == '-') {
      return usage_error("bad port '%s' (1-65535)", p);
    } else {
      service = p;
    }
  }

  /* Remote endpoints. */
  taps_remote_endpoint *remotes[2] = {NULL, NULL};
  size_t n_remotes = 0;
  int rc;
  remotes[n_remotes] = taps_remote_endpoint_new();
  if (remotes[n_remotes] == NULL) {
    fprintf(stderr, "%s: remote_endpoint_new: %s\n", prog, taps_strerror(taps_last_error()));
    return EXIT_RACE_FAILED;
  }
  rc = taps_remote_endpoint_with_hostname(remotes[0], host);
  if (rc != TAPS_OK) {
    taps_remote_endpoint_free(remotes[0]);
    return usage_error("bad HOST: %s", taps_strerror(rc));
  }
  rc = service ? taps_remote_endpoint_with_service(remotes[0], service) : taps_remote_endpoint_with_port(remotes[0], port);
  if (rc != TAPS_OK) {
    fprintf(stderr, "%s: bad PORT '%s': %s\n", prog, service ? service : pos[1], taps_strerror(rc));
    usage(stderr);
    taps_remote_endpoint_free(remotes[0]);
    return EXIT_USAGE;
  }
  n_remotes++;
  if (demo) {
    taps_remote_endpoint *v6 = taps_remote_endpoint_new();
    if (v6 == NULL || taps_remote_endpoint_with_ipv6(v6, in6addr_loopback) != TAPS_OK ||
        taps_remote_endpoint_with_port(v6, port) != TAPS_OK) {
      fprintf(stderr, "%s: cannot build the ::1 endpoint\n", prog);
      taps_remote_endpoint_free(v6);
      taps_remote_endpoint_free(remotes[0]);
      return EXIT_RACE_FAILED;
    }
    remotes[n_remotes++] = v6;
  }

  if (verbose && taps_set_log_callback(TAPS_LOG_LEVEL_DEBUG, on_log, NULL) != TAPS_OK)
    fprintf(stderr, "%s: -v: cannot set the log callback: %s\n", prog, taps_strerror(taps_last_error()));
  taps_event_loop *loop = taps_event_loop_new();
  if (loop == NULL) {
    fprintf(stderr, "%s: event_loop_new: %s\n", prog, taps_strerror(taps_last_error()));
    return EXIT_RACE_FAILED;
  }
  if (pref64 != NULL) {
    if (taps_event_loop_set_pref64(loop, pref64) != TAPS_OK) {
      fprintf(stderr, "%s: bad --pref64 '%s': %s\n", prog, pref64, taps_last_error_message());
      for (size_t j = 0; j < n_remotes; j++) taps_remote_endpoint_free(remotes[j]);
      taps_event_loop_free(loop);
      return EXIT_USAGE;
    }
  }
  if (history_file != NULL && history_load(loop, history_file) != 0) {
    for (size_t j = 0; j < n_remotes; j++) taps_remote_endpoint_free(remotes[j]);
    taps_event_loop_free(loop);
    return EXIT_RACE_FAILED;
  }
  taps_preconnection *pre =
      taps_preconnection_new(loop, (const taps_remote_endpoint *const *)remotes, n_remotes, NULL, &opts);
  int pre_error = pre ? TAPS_OK : taps_last_error();
  if (pre != NULL && apply_https_options(pre, https_policy, ech_required) != TAPS_OK) {
    fprintf(stderr, "%s: --https / --ech-required: %s\n", prog, taps_last_error_message());
    for (size_t j = 0; j < n_remotes; j++) taps_remote_endpoint_free(remotes[j]);
    taps_preconnection_free(pre);
    taps_event_loop_free(loop);
    return EXIT_USAGE;
  }
  /* Each --interface is a path branch: a local endpoint bound to it. */
  for (int i = 0; pre != NULL && i < n_interfaces; i++) {
    taps_local_endpoint *local = taps_local_endpoint_new();
    int lrc = local ? taps_local_endpoint_with_interface(local, interfaces[i]) : TAPS_ERROR_IO;
    if (lrc == TAPS_OK) lrc = taps_preconnection_add_local_endpoint(pre, local);
    taps_local_endpoint_free(local);
    if (lrc != TAPS_OK) {
      fprintf(stderr, "%s: bad --interface '%s': %s\n", prog, interfaces[i], taps_strerror(lrc));
      for (size_t j = 0; j < n_remotes; j++) taps_remote_endpoint_free(remotes[j]);
      taps_preconnection_free(pre);
      taps_event_loop_free(loop);
      return EXIT_USAGE;
    }
  }
  for (size_t i = 0; i < n_remotes; i++) taps_remote_endpoint_free(remotes[i]);
  if (pre == NULL) {
    const char *detail = taps_last_error_message();
    fprintf(stderr, "%s: preconnection_new: %s\n", prog, (detail && *detail) ? detail : taps_strerror(pre_error));
    if (pre_error == TAPS_ERROR_INVALID_OPTION) usage(stderr);
    taps_event_loop_free(loop);
    return pre_error == TAPS_ERROR_INVALID_OPTION ? EXIT_USAGE : EXIT_RACE_FAILED;
  }

  if (!json) {
    if (demo) {
      printf("demo: listening on 127.0.0.1 port %u (IPv4 only), racing localhost port %u\n", port, port);
      printf("demo: also racing the literal ::1 on port %u, because localhost often resolves to 127.0.0.1 "
             "only: nothing listens on ::1, so it is refused and IPv4 wins\n",
             port);
    } else {
      printf("racing %s port %s\n", host, pos[1]);
    }
    /* RFC 8305 §5: the library clamps the attempt delay to [10, 2000] ms. */
    uint32_t delay = opts.connection_attempt_delay_ms;
    delay = delay < 10 ? 10 : delay > 2000 ? 2000 : delay;
    printf("connection attempt delay %" PRIu32 " ms%s, resolution delay %" PRIu32 " ms, total timeout %s", delay,
           delay != opts.connection_attempt_delay_ms ? " (clamped)" : "", opts.resolution_delay_ms,
           opts.total_timeout_ms ? "" : "none\n");
    if (opts.total_timeout_ms) printf("%" PRIu32 " ms\n", opts.total_timeout_ms);
    fflush(stdout);
  }

  RaceState st;
  memset(&st, 0, sizeof st);
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = on_ready;
  cb.establishment_error = on_establishment_error;
  cb.connection_error = on_other;
  cb.closed = on_other;
  cb.user_data = &st;
  taps_connection *conn = NULL;
  st.t_initiate_ms = now_ms();
  rc = taps_preconnection_initiate_with_racing(pre, cb, &conn);
  if (rc != TAPS_OK) {
    fprintf(stderr, "%s: preconnection_initiate_with_racing: %s\n", prog, taps_strerror(rc));
    taps_preconnection_free(pre);
    taps_event_loop_free(loop);
    return EXIT_RACE_FAILED;
  }
  /* Run in steps of 250 ms: on a terminal, a race past 1 s shows what it
     waits for; past 5 s without --timeout, a hint. */
  int live = !json && isatty(STDERR_FILENO);
  int hinted = 0;
  rc = TAPS_OK;
  while (!st.done && rc >= 0) {
    rc = taps_event_loop_run_once(loop, 250);
    double elapsed = now_ms() - st.t_initiate_ms;
    if (st.done) break;
    if (live && elapsed >= 1000) live_show(conn, elapsed);
    if (!json && !hinted && elapsed >= 5000 && opts.total_timeout_ms == 0) {
      live_clear();
      fprintf(stderr, "%s: still racing after 5 s; --timeout MS ends a race that takes too long\n", prog);
      hinted = 1;
    }
  }
  live_clear();
  if (rc >= 0) rc = taps_event_loop_run(loop);
  if (rc < 0) fprintf(stderr, "%s: event_loop_run: %s\n", prog, taps_strerror(rc));
  if (!st.done) st.elapsed_ms = now_ms() - st.t_initiate_ms;

  if (json) {
    /* The prefix the race used: set, or discovered while it started. */
    taps_event_loop_get_pref64(loop, pref64_text, sizeof pref64_text);
    pref64_source = taps_event_loop_get_pref64_source(loop);
    print_json(conn, &st);
  } else {
    print_timeline(conn, &st);
  }
  fflush(stdout);

  int status = (st.done && st.won) ? EXIT_CONNECTED : EXIT_RACE_FAILED;
  if (history_file != NULL) history_save(loop, history_file);
  taps_connection_free(conn);
  taps_preconnection_free(pre);
  taps_event_loop_free(loop);
  if (listener >= 0) close(listener);
  if (v6_reserved >= 0) close(v6_reserved);
  return status;
}
