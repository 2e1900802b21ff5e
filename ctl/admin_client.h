// How `vipproxy status` and `vipproxy doctor` reach the admin endpoint: at
// which address, and with which token. The token never has to be on the
// command line (visible to every user in `ps`): it comes from a file
// (--token-file), the environment ($VIPPROXY_TOKEN) or admin.token of the
// config file when that is readable (docs/admin.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cfg/config.h"

namespace ctl {

// "HOST:PORT" to reach admin.listen from this machine: a wildcard listen
// (0.0.0.0, ::) is reached on loopback.
std::string admin_address(const cfg::Admin& a);

// --admin as given: HOST:PORT, or the endpoint's URL as a browser shows it
// ("http://127.0.0.1:8405/", "http://[::1]:8405/status"), reduced to
// HOST:PORT. An https:// URL throws std::invalid_argument (the endpoint
// speaks plain HTTP).
std::string admin_argument(const std::string& given);

// The token in a token file's text: the first line without surrounding
// blanks (a trailing newline from `echo` or an editor is not part of it).
// nullopt when that is empty.
std::optional<std::string> parse_token_file(const std::string& text);

struct Token {
  std::string value;                  // empty: send no Authorization header
  std::string source;                 // "--token-file F", "$VIPPROXY_TOKEN", "admin.token of F", ""
  std::vector<std::string> warnings;  // for stderr: a file readable by every user...
};

// Reads a token file (see parse_token_file). Throws std::runtime_error naming
// the file when it cannot be read or holds no token; warns when every user
// may read it.
Token read_token_file(const std::string& path);

// The precedence both tools use: --token-file, then $VIPPROXY_TOKEN, then
// admin.token of the config (config_path names it in `source`).
Token resolve_token(const std::optional<std::string>& token_file, const cfg::Config* config,
                    const std::string& config_path);

}  // namespace ctl
