// haproxy.cfg -> plain structs. Pure: text in, structs out, no I/O.
//
// Only what a TCP proxy in front of Patroni uses is modelled (bind, mode,
// default_backend, server and default-server options, health-check rules,
// timeouts, balance, maxconn). Every other directive is kept as Unhandled
// with its line, so the importer can say what it did not translate.
//
// `defaults` works as in HAProxy: a frontend/backend/listen section starts
// from a copy of the typed settings of the last `defaults` section before it,
// or of the named one it gives with `from NAME` (HAProxy 2.4+, also between
// defaults sections), and `default-server` applies to the `server` lines that
// follow it.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "importer/common.h"

namespace importer::haproxy {

// HAProxy time format: a bare number is milliseconds; units us, ms, s, m, h,
// d. Microseconds are rounded up to a whole millisecond (HAProxy's own tick).
// Returns false when the text is not a duration.
bool parse_duration(std::string_view text, Duration& out);

// Options of a `server` or `default-server` line. Each is empty when not
// given; `no-check`, `no-ssl`, `no-check-ssl`, `no-backup` set false.
struct ServerOptions {
  std::optional<At<unsigned>> port;  // `port N`: the health-check port
  std::optional<At<bool>> check;
  std::optional<At<Duration>> inter, fastinter, downinter;
  std::optional<At<unsigned>> rise, fall;
  std::optional<At<std::string>> verify;  // "none" | "required"
  std::optional<At<bool>> check_ssl, ssl;
  std::optional<At<std::string>> ca_file, check_sni, verifyhost;
  std::optional<At<std::string>> crt;  // the check's client certificate (PEM, maybe with its key)
  std::optional<At<std::string>> on_marked_down;  // "shutdown-sessions", ...
  std::optional<At<bool>> backup;
  std::optional<At<unsigned>> maxconn;
  // global: the directories a relative `crt` / `ca-file` is read under
  // (HAProxy's crt-base and ca-base; Debian's default haproxy.cfg sets
  // /etc/ssl/private and /etc/ssl/certs).
  std::optional<At<std::string>> crt_base, ca_base;
  std::optional<At<bool>> disabled;  // `disabled` (maintenance) / `enabled`
  std::vector<Unhandled> unhandled;

  // `over` wins where it is set; unhandled lists are concatenated.
  static ServerOptions merge(const ServerOptions& base, const ServerOptions& over);
};

struct Server {
  int line = 0;
  std::string name;
  std::string address;  // as written: "192.168.1.151:5432", "[::1]:5432", "db1"
  ServerOptions options;  // default-server options already applied
};

struct Bind {
  int line = 0;
  std::string address;               // first address as written: "*:5433", ":5000"
  std::vector<std::string> extra;    // further comma-separated addresses
  std::vector<std::string> options;  // words after the address (ssl, crt ...)
};

enum class SectionKind { global, defaults, frontend, backend, listen, other };

struct Section {
  SectionKind kind = SectionKind::other;
  std::string keyword;  // as written: "frontend", "peers"...
  std::string name;     // may be empty for global/defaults
  int line = 0;

  std::vector<Bind> binds;
  std::optional<At<std::string>> mode;  // "tcp" | "http" | ...
  std::optional<At<std::string>> default_backend;
  std::vector<At<std::string>> use_backends;  // target backends; conditions dropped

  // The health-check rule: the last of `option httpchk`, `option tcp-check`,
  // `option pgsql-check`... wins, as in HAProxy. Value is the option name.
  std::optional<At<std::string>> check_option;
  std::optional<At<std::string>> http_method, http_uri, http_version;
  std::optional<At<unsigned>> expect_status;
  // `http-check expect string|rstring PATTERN`: the body decides (e.g.
  // Patroni's "role": "master" on /patroni, where every node answers 200).
  std::optional<At<std::string>> expect_body;
  // The first `tcp-check send...`/`expect` rule: a protocol spoken on the
  // check connection (e.g. an HTTP request to Patroni's port), not a connect.
  std::optional<At<std::string>> tcp_check_probe;

  std::map<std::string, At<Duration>> timeouts;  // "connect", "server", "client", "check", "queue"...
  std::optional<At<std::string>> balance;
  std::optional<At<unsigned>> maxconn;
  // global: the directories a relative `crt` / `ca-file` is read under
  // (HAProxy's crt-base and ca-base; Debian's default haproxy.cfg sets
  // /etc/ssl/private and /etc/ssl/certs).
  std::optional<At<std::string>> crt_base, ca_base;
  std::optional<At<bool>> disabled;  // the section's `disabled` / `enabled` (also from defaults)
  ServerOptions default_server;
  std::vector<Server> servers;
  std::vector<Unhandled> unhandled;
};

struct Config {
  std::vector<Section> sections;
  // Environment variables expanded, one entry per use: text is
  // "${NAME}" -> the value, for a note pointing at the line.
  std::vector<Unhandled> expanded;
  const Section* find(SectionKind kind, std::string_view name) const;
};

// The environment HAProxy would expand "$NAME", "${NAME}" and
// "${NAME-default}" from (inside double quotes only, doc/configuration.txt
// section 2.3). Empty function: no variable is set.
using Env = std::function<std::optional<std::string>(const std::string& name)>;

// Throws ParseError (with file and line) on input that is not a haproxy.cfg:
// a directive outside any section, a section without its name, a malformed
// number or duration in an option the importer maps, a variable that `env`
// does not set and that has no default (HAProxy would read it from its own
// environment, which the importer cannot see).
Config parse(std::string_view text, const std::string& file, const Env& env = {});

}  // namespace importer::haproxy
