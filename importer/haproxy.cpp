#include "importer/haproxy.h"

#include <algorithm>
#include <array>
#include <limits>

#include "cfg/syntax.h"

namespace importer::haproxy {

namespace {

// One "$NAME" / "${NAME}" / "${NAME-default}" found inside double quotes.
struct EnvUse {
  std::string name;
  std::optional<std::string> fallback;  // after '-'
};

// Reads a variable reference at line[i] == '$'; returns false (and leaves i)
// when what follows is not one (a lone '$' stays a '$', as in HAProxy).
bool env_reference(std::string_view line, std::size_t& i, EnvUse& out) {
  auto name_char = [](char c, bool first) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
  };
  std::size_t j = i + 1;
  bool braced = j < line.size() && line[j] == '{';
  if (braced) ++j;
  std::size_t start = j;
  while (j < line.size() && name_char(line[j], j == start)) ++j;
  if (j == start) return false;
  out.name = std::string(line.substr(start, j - start));
  out.fallback.reset();
  if (braced) {
    if (j < line.size() && line[j] == '-') {
      auto close = line.find('}', j);
      if (close == std::string_view::npos) return false;
      out.fallback = std::string(line.substr(j + 1, close - j - 1));
      j = close;
    } else if (line.substr(j, 4) == "[*]}") {
      j += 3;  // the list form: expanded as one word here
    }
    if (j >= line.size() || line[j] != '}') return false;
    ++j;
  }
  i = j - 1;
  return true;
}

// HAProxy's tokenizer (doc/configuration.txt section 2.2): words separated by
// blanks, '#' starts a comment unless quoted or escaped, double and single
// quotes group words, a backslash escapes the next character, and a
// variable is expanded inside double quotes (section 2.3) through `env`.
std::vector<std::string> split_words(std::string_view line, int lineno, const std::string& file, const Env& env,
                                     std::vector<Unhandled>& expanded) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      EnvUse use;
      if (c == quote) {
        quote = 0;
      } else if (c == '$' && quote == '"' && env_reference(line, i, use)) {
        std::optional<std::string> v = env ? env(use.name) : std::nullopt;
        if (!v && !use.fallback)
          throw ParseError(file, lineno,
                           "environment variable '" + use.name + "' is not set: HAProxy expands it from its own "
                           "environment, the importer from its own; run the importer with the same variables (e.g. "
                           "set -a; . /etc/default/haproxy; set +a)");
        std::string value = v ? *v : *use.fallback;
        expanded.push_back({lineno, "${" + use.name + "}",
                            v ? "'" + value + "' (from the importer's environment: check HAProxy's is the same)"
                              : "'" + value + "' (the default written in the file: not set in the importer's environment)"});
        cur += value;
      } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
        cur += line[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\\' && i + 1 < line.size()) {
      cur += line[++i];
      in_word = true;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == '#') {
      break;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

std::string join(const std::vector<std::string>& words, std::size_t from = 0, std::size_t to = std::string::npos) {
  std::string s;
  for (std::size_t i = from; i < words.size() && i < to; ++i) {
    if (!s.empty()) s += ' ';
    s += words[i];
  }
  return s;
}

class Reader {
 public:
  Reader(std::string file, const Env& env) : file_(std::move(file)), env_(env) {}

  Config read(std::string_view text);

 private:
  [[noreturn]] void fail(int line, const std::string& why) const { throw ParseError(file_, line, why); }

  unsigned number(int line, const std::string& kw, const std::string& s, unsigned max = 1'000'000'000) const {
    auto v = cfg::syntax::parse_integer(s, false);
    if (!v || *v > max) fail(line, "'" + kw + "' expects a number, got '" + s + "'");
    return static_cast<unsigned>(*v);
  }
  Duration duration(int line, const std::string& kw, const std::string& s) const {
    Duration d{};
    if (!parse_duration(s, d))
      fail(line, "'" + kw + "' expects a time like 2000, 2s or 500ms, got '" + s + "'");
    return d;
  }
  const std::string& arg(int line, const std::vector<std::string>& w, std::size_t i) const {
    if (i >= w.size()) fail(line, "'" + w[i - 1] + "' needs a value");
    return w[i];
  }

  ServerOptions server_options(int line, const std::vector<std::string>& w, std::size_t from);
  void proxy_directive(Section& s, int line, const std::vector<std::string>& w);
  void start_section(Config& c, int line, const std::vector<std::string>& w);

  std::string file_;
  const Env& env_;
  std::optional<std::size_t> defaults_;  // index of the last `defaults` section
};

SectionKind kind_of(std::string_view kw) {
  if (kw == "global") return SectionKind::global;
  if (kw == "defaults") return SectionKind::defaults;
  if (kw == "frontend") return SectionKind::frontend;
  if (kw == "backend") return SectionKind::backend;
  if (kw == "listen") return SectionKind::listen;
  return SectionKind::other;
}

bool is_section_keyword(std::string_view kw) {
  static constexpr std::array<std::string_view, 18> kws = {
      "global",  "defaults", "frontend", "backend",    "listen",   "peers",      "resolvers", "userlist",  "mailers",
      "program", "cache",    "http-errors", "ring",    "log-forward", "fcgi-app", "crt-store", "traces", "dynamic-update"};
  return std::find(kws.begin(), kws.end(), kw) != kws.end();
}

// Server keywords taking one argument that the importer does not map; knowing
// their arity keeps the argument out of the next keyword's way.
bool takes_argument(std::string_view kw) {
  static constexpr std::array<std::string_view, 44> kws = {
      "addr",        "agent-addr",  "agent-inter", "agent-port",     "agent-send",  "alpn",         "check-alpn",
      "check-proto", "ciphers",     "ciphersuites", "cookie",        "crl-file",    "crt",          "curves",
      "error-limit", "id",          "init-addr",   "log-proto",      "max-reuse",   "maxqueue",     "minconn",
      "namespace",   "npn",         "observe",     "on-error",       "on-marked-up", "pool-low-conn", "pool-max-conn",
      "pool-purge-delay", "proto",  "redir",       "resolve-net",    "resolve-prefer", "resolvers", "send-proxy-v2-options",
      "shard",       "slowstart",   "sni",         "socks4",         "source",      "ssl-max-ver",  "ssl-min-ver",
      "tcp-ut",      "weight"};
  return std::find(kws.begin(), kws.end(), kw) != kws.end();
}

Config Reader::read(std::string_view text) {
  Config c;
  int line = 0;
  std::string_view raw;
  for (Lines lines(text, file_); lines.next(raw, line);) {
    auto w = split_words(raw, line, file_, env_, c.expanded);
    if (w.empty()) continue;
    if (is_section_keyword(w[0])) {
      start_section(c, line, w);
      continue;
    }
    if (c.sections.empty()) fail(line, "'" + w[0] + "' outside any section (expected global, defaults, frontend, backend or listen first)");
    Section& s = c.sections.back();
    switch (s.kind) {
      case SectionKind::global:
        if (w[0] == "maxconn" && w.size() >= 2)
          s.maxconn = At<unsigned>{number(line, w[0], w[1]), line};
        else if (w[0] == "crt-base" && w.size() >= 2)
          s.crt_base = At<std::string>{w[1], line};
        else if (w[0] == "ca-base" && w.size() >= 2)
          s.ca_base = At<std::string>{w[1], line};
        else
          s.unhandled.push_back({line, join(w), ""});
        break;
      case SectionKind::other:
        s.unhandled.push_back({line, join(w), ""});
        break;
      default:
        proxy_directive(s, line, w);
    }
  }
  return c;
}

void Reader::start_section(Config& c, int line, const std::vector<std::string>& w) {
  Section s;
  s.kind = kind_of(w[0]);
  s.keyword = w[0];
  s.line = line;
  if (w.size() >= 2) s.name = w[1];
  bool needs_name = s.kind == SectionKind::frontend || s.kind == SectionKind::backend || s.kind == SectionKind::listen;
  if (needs_name && s.name.empty()) fail(line, "'" + w[0] + "' needs a name");
  // HAProxy copies the last defaults section into each new proxy, or the
  // named one after `from` (doc/configuration.txt section 4, "defaults
  // [<name>] [ from <defaults_name> ]"), which a defaults section may use too.
  constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();
  std::size_t base = needs_name && defaults_ ? *defaults_ : kNone;
  std::size_t rest = 2;  // the first word after the name (and `from NAME`)
  if (w.size() >= 3 && w[2] == "from" && (needs_name || s.kind == SectionKind::defaults)) {
    if (w.size() < 4) fail(line, "'from' needs the name of a defaults section");
    base = kNone;
    for (std::size_t i = 0; i < c.sections.size(); ++i)
      if (c.sections[i].kind == SectionKind::defaults && c.sections[i].name == w[3]) base = i;
    if (base == kNone) fail(line, "'from " + w[3] + "': no defaults section of that name before this line");
    rest = 4;
  }
  if (base != kNone) {
    const Section& d = c.sections[base];
    s.mode = d.mode;
    s.default_backend = d.default_backend;
    s.check_option = d.check_option;
    s.http_method = d.http_method;
    s.http_uri = d.http_uri;
    s.http_version = d.http_version;
    s.expect_status = d.expect_status;
    s.expect_body = d.expect_body;
    s.tcp_check_probe = d.tcp_check_probe;
    s.timeouts = d.timeouts;
    s.balance = d.balance;
    s.maxconn = d.maxconn;
    s.disabled = d.disabled;
    s.default_server = d.default_server;
  }
  // Old syntax: "listen NAME ADDR:PORT" carries its bind on the header.
  if (s.kind == SectionKind::listen && w.size() > rest) s.binds.push_back({line, w[rest++], {}, {}});
  if (w.size() > rest && s.kind != SectionKind::other)
    s.unhandled.push_back({line, join(w, rest), "extra words after the section name"});
  if (s.kind == SectionKind::defaults) defaults_ = c.sections.size();
  c.sections.push_back(std::move(s));
}

ServerOptions Reader::server_options(int line, const std::vector<std::string>& w, std::size_t i) {
  ServerOptions o;
  for (; i < w.size(); ++i) {
    const std::string& kw = w[i];
    auto flag = [&](std::optional<At<bool>>& f, bool v) { f = At<bool>{v, line}; };
    auto text = [&](std::optional<At<std::string>>& f) { f = At<std::string>{arg(line, w, i + 1), line}; ++i; };
    auto num = [&](std::optional<At<unsigned>>& f, unsigned max) {
      f = At<unsigned>{number(line, kw, arg(line, w, i + 1), max), line};
      ++i;
    };
    auto dur = [&](std::optional<At<Duration>>& f) {
      f = At<Duration>{duration(line, kw, arg(line, w, i + 1)), line};
      ++i;
    };
    if (kw == "check") flag(o.check, true);
    else if (kw == "no-check") flag(o.check, false);
    else if (kw == "port") num(o.port, 65535);
    else if (kw == "inter") dur(o.inter);
    else if (kw == "fastinter") dur(o.fastinter);
    else if (kw == "downinter") dur(o.downinter);
    else if (kw == "rise") num(o.rise, 1'000'000);
    else if (kw == "fall") num(o.fall, 1'000'000);
    else if (kw == "verify") text(o.verify);
    else if (kw == "check-ssl") flag(o.check_ssl, true);
    else if (kw == "no-check-ssl") flag(o.check_ssl, false);
    else if (kw == "ssl") flag(o.ssl, true);
    else if (kw == "no-ssl") flag(o.ssl, false);
    else if (kw == "ca-file") text(o.ca_file);
    else if (kw == "crt") text(o.crt);
    else if (kw == "check-sni") text(o.check_sni);
    else if (kw == "verifyhost") text(o.verifyhost);
    else if (kw == "on-marked-down") text(o.on_marked_down);
    else if (kw == "backup") flag(o.backup, true);
    else if (kw == "no-backup") flag(o.backup, false);
    else if (kw == "maxconn") num(o.maxconn, 1'000'000'000);
    else if (kw == "disabled") flag(o.disabled, true);
    else if (kw == "enabled") flag(o.disabled, false);
    else if (takes_argument(kw) && i + 1 < w.size()) {
      o.unhandled.push_back({line, kw + " " + w[i + 1], ""});
      ++i;
    } else {
      o.unhandled.push_back({line, kw, ""});
    }
  }
  return o;
}

void Reader::proxy_directive(Section& s, int line, const std::vector<std::string>& w) {
  const std::string& kw = w[0];
  auto str = [&](std::size_t i) { return At<std::string>{arg(line, w, i), line}; };
  auto unhandled = [&](std::string reason = "") { s.unhandled.push_back({line, join(w), std::move(reason)}); };

  if (kw == "bind") {
    std::string addrs = arg(line, w, 1);
    Bind b{line, {}, {}, {}};
    std::size_t start = 0;
    while (true) {
      auto comma = addrs.find(',', start);
      std::string a = addrs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (b.address.empty()) b.address = a;
      else b.extra.push_back(a);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    b.options.assign(w.begin() + 2, w.end());
    s.binds.push_back(std::move(b));
  } else if (kw == "mode") {
    s.mode = str(1);
  } else if (kw == "default_backend") {
    s.default_backend = str(1);
  } else if (kw == "use_backend") {
    s.use_backends.push_back(str(1));
  } else if (kw == "option" && w.size() >= 2) {
    const std::string& opt = w[1];
    static constexpr std::array<std::string_view, 10> checks = {
        "httpchk",   "tcp-check", "pgsql-check",  "mysql-check",    "ssl-hello-chk",
        "smtpchk",   "ldap-check", "redis-check", "external-check", "spop-check"};
    if (std::find(checks.begin(), checks.end(), opt) == checks.end()) return unhandled();
    if (s.check_option && s.check_option->line != line) {
      // HAProxy keeps only the last check option of a section; the earlier one
      // has no effect there either. (Inherited ones come from defaults: they
      // are overridden silently, as in HAProxy.)
      if (s.check_option->line > s.line)
        s.unhandled.push_back({s.check_option->line, "option " + s.check_option->value,
                               "overridden by 'option " + opt + "' on line " + std::to_string(line) +
                                   " (HAProxy uses the last check option of a section)"});
    }
    s.check_option = At<std::string>{opt, line};
    if (opt == "httpchk") {
      // option httpchk | httpchk <uri> | httpchk <method> <uri> [<version>]
      s.http_method.reset();
      s.http_uri.reset();
      s.http_version.reset();
      if (w.size() == 3) {
        s.http_uri = str(2);
      } else if (w.size() >= 4) {
        s.http_method = str(2);
        s.http_uri = str(3);
        if (w.size() >= 5) s.http_version = At<std::string>{join(w, 4), line};
      }
    } else if (w.size() > 2) {
      s.unhandled.push_back({line, join(w, 2), "arguments of 'option " + opt + "'"});
    }
  } else if (kw == "http-check" && w.size() >= 2) {
    if (w[1] == "expect") {
      if (w.size() == 4 && w[2] == "status") {
        auto v = cfg::syntax::parse_integer(w[3], false);
        if (v && *v >= 100 && *v <= 599) {
          s.expect_status = At<unsigned>{static_cast<unsigned>(*v), line};
          return;
        }
      }
      if (w.size() >= 4 && (w[2] == "string" || w[2] == "rstring")) {
        s.expect_body = At<std::string>{join(w, 2), line};
        return;
      }
      return unhandled("vipproxy expects one HTTP status (http-check expect status N)");
    }
    if (w[1] == "send") {
      std::vector<std::string> rest;
      for (std::size_t i = 2; i < w.size(); ++i) {
        if (w[i] == "meth") s.http_method = str(++i);
        else if (w[i] == "uri") s.http_uri = str(++i);
        else if (w[i] == "ver") s.http_version = str(++i);
        else rest.push_back(w[i]);
      }
      if (!rest.empty())
        s.unhandled.push_back({line, "http-check send ... " + join(rest), "vipproxy sends no headers or body in its check"});
      return;
    }
    return unhandled();
  } else if (kw == "tcp-check" && w.size() >= 2 && (w[1].rfind("send", 0) == 0 || w[1] == "expect")) {
    if (!s.tcp_check_probe || s.tcp_check_probe->line < s.line) s.tcp_check_probe = At<std::string>{join(w), line};
  } else if (kw == "timeout" && w.size() >= 2) {
    s.timeouts[w[1]] = At<Duration>{duration(line, "timeout " + w[1], arg(line, w, 2)), line};
  } else if (kw == "contimeout" || kw == "srvtimeout" || kw == "clitimeout") {
    // Pre-1.5 spellings, still common in old configurations.
    std::string name = kw == "contimeout" ? "connect" : kw == "srvtimeout" ? "server" : "client";
    s.timeouts[name] = At<Duration>{duration(line, kw, arg(line, w, 1)), line};
  } else if (kw == "balance") {
    s.balance = str(1);
    if (w.size() > 2) s.unhandled.push_back({line, join(w), "arguments of 'balance " + w[1] + "'"});
  } else if (kw == "maxconn") {
    s.maxconn = At<unsigned>{number(line, kw, arg(line, w, 1)), line};
  } else if ((kw == "disabled" || kw == "enabled") && w.size() == 1) {
    s.disabled = At<bool>{kw == "disabled", line};
  } else if (kw == "default-server") {
    // Options the importer does not map are reported once, on this line,
    // rather than once for every server that inherits them.
    ServerOptions o = server_options(line, w, 1);
    s.unhandled.insert(s.unhandled.end(), o.unhandled.begin(), o.unhandled.end());
    o.unhandled.clear();
    s.default_server = ServerOptions::merge(s.default_server, o);
  } else if (kw == "server") {
    if (w.size() < 3) fail(line, "'server' needs a name and an address");
    Server srv;
    srv.line = line;
    srv.name = w[1];
    srv.address = w[2];
    srv.options = ServerOptions::merge(s.default_server, server_options(line, w, 3));
    s.servers.push_back(std::move(srv));
  } else {
    unhandled();
  }
}

}  // namespace

bool parse_duration(std::string_view text, Duration& out) {
  std::size_t i = 0;
  unsigned long long n = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    n = n * 10 + static_cast<unsigned>(text[i] - '0');
    if (n > 1'000'000'000'000ULL) return false;
  }
  if (i == 0) return false;
  std::string_view unit = text.substr(i);
  unsigned long long ms;
  if (unit.empty() || unit == "ms") ms = n;
  else if (unit == "us") ms = (n + 999) / 1000;
  else if (unit == "s") ms = n * 1000;
  else if (unit == "m") ms = n * 60'000;
  else if (unit == "h") ms = n * 3'600'000;
  else if (unit == "d") ms = n * 86'400'000;
  else return false;
  out = Duration{static_cast<long long>(ms)};
  return true;
}

ServerOptions ServerOptions::merge(const ServerOptions& base, const ServerOptions& over) {
  ServerOptions r = base;
  auto pick = [](auto& dst, const auto& src) {
    if (src) dst = src;
  };
  pick(r.port, over.port);
  pick(r.check, over.check);
  pick(r.inter, over.inter);
  pick(r.fastinter, over.fastinter);
  pick(r.downinter, over.downinter);
  pick(r.rise, over.rise);
  pick(r.fall, over.fall);
  pick(r.verify, over.verify);
  pick(r.check_ssl, over.check_ssl);
  pick(r.ssl, over.ssl);
  pick(r.ca_file, over.ca_file);
  pick(r.crt, over.crt);
  pick(r.check_sni, over.check_sni);
  pick(r.verifyhost, over.verifyhost);
  pick(r.on_marked_down, over.on_marked_down);
  pick(r.backup, over.backup);
  pick(r.maxconn, over.maxconn);
  pick(r.disabled, over.disabled);
  r.unhandled.insert(r.unhandled.end(), over.unhandled.begin(), over.unhandled.end());
  return r;
}

const Section* Config::find(SectionKind kind, std::string_view name) const {
  for (const auto& s : sections)
    if (s.kind == kind && s.name == name) return &s;
  return nullptr;
}

Config parse(std::string_view text, const std::string& file, const Env& env) { return Reader(file, env).read(text); }

}  // namespace importer::haproxy
