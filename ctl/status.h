// `vipproxy status`: the admin endpoint's /status JSON as a table a person
// reads, like `patronictl list`. format_status() is pure (unit-tested).
#pragma once

#include <boost/json/value.hpp>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ctl {

// Text from the daemon made safe for a terminal: C0 control characters,
// DEL and the C1 controls (U+0080-U+009F) become visible escapes ("\x1b",
// "\n", "\u009b"), everything else (UTF-8 included) stays. A check's last
// reason holds what a backend answered (Patroni's "role" string): raw, an
// ESC sequence would drive the operator's terminal and a newline would
// break the table.
std::string printable(std::string_view text);

// A box table in the style of patronictl (prettytable): "+---+", "| a |".
std::string render_table(const std::string& title, const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows);

struct StatusOptions {
  // proxy name -> its check path (from the config when one was readable).
  // The role a passing check proves follows from the path: /primary ->
  // "primary", /replica -> "replica"... Unknown proxies assume /primary (the
  // default check path).
  std::map<std::string, std::string> check_paths;
};

// The role a backend has according to its check: the path's role while UP,
// "—" while DOWN, "?" before the first result.
std::string role_from_check(const std::string& state, const std::string& path);

// The /status document (daemon/admin.cpp) as text. Tolerates missing fields
// (older or newer daemons): they show as "-".
std::string format_status(const boost::json::value& status, const StatusOptions& opt = {});

// args[0] is "status". 0: reachable (table or JSON on out), 1: not reachable
// or not understood (message on err), 2: usage error.
int run_status_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace ctl
