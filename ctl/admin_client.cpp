#include "ctl/admin_client.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace ctl {

std::string admin_address(const cfg::Admin& a) {
  std::string h = a.listen.host;
  if (h == "0.0.0.0" || h == "*") h = "127.0.0.1";
  if (h == "::" || h == "[::]") h = "::1";
  return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(a.listen.port);
}

std::string admin_argument(const std::string& given) {
  auto starts = [&](const char* p) {
    const std::string_view g(given), prefix(p);
    return g.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), g.begin(), [](char p, char c) {
             return std::tolower(static_cast<unsigned char>(c)) == p;
           });
  };
  if (starts("https://"))
    throw std::invalid_argument("'" + given + "': the admin endpoint speaks plain HTTP; give HOST:PORT");
  if (!starts("http://")) return given;
  std::string rest = given.substr(7);
  return rest.substr(0, rest.find_first_of("/?#"));
}

std::optional<std::string> parse_token_file(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!line.empty() && blank(line.back())) line.pop_back();
  size_t start = 0;
  while (start < line.size() && blank(line[start])) ++start;
  line.erase(0, start);
  if (line.empty()) return std::nullopt;
  return line;
}

Token read_token_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("--token-file " + path + ": cannot read it");
  std::stringstream ss;
  ss << f.rdbuf();
  auto t = parse_token_file(ss.str());
  if (!t) throw std::runtime_error("--token-file " + path + ": no token in its first line");
  Token out{*t, "--token-file " + path, {}};
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(st.st_mode & 07777));
    out.warnings.push_back(path + " holds the admin token and every user can read it (mode " + mode +
                           "): chmod o-r " + path);
  }
  return out;
}

Token resolve_token(const std::optional<std::string>& token_file, const cfg::Config* config,
                    const std::string& config_path) {
  if (token_file) return read_token_file(*token_file);
  if (const char* t = std::getenv("VIPPROXY_TOKEN"); t && *t) return {t, "$VIPPROXY_TOKEN", {}};
  if (config && !config->admin.token.empty()) return {config->admin.token, "admin.token of " + config_path, {}};
  return {};
}

}  // namespace ctl
