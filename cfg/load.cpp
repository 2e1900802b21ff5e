// YAML -> validated cfg::Config.
//
// The walk is strict on purpose: a typo in a failover daemon's config must
// stop it at start, with the file, line, key and what was expected, rather
// than run with a default the operator did not mean. Every map refuses keys
// it does not know (suggesting the nearest valid one, and the vipproxy name
// for keepalived/HAProxy spellings), every value is checked for type and
// range, and cross-references (track.proxies, unique names, listen
// addresses, VRIDs) are checked once the whole file has been read.
#include "cfg/load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "cfg/syntax.h"

namespace cfg {

namespace {

std::string format_message(const std::string& file, int line, int column, const std::string& key,
                           const std::string& what) {
  std::string m = file.empty() ? "<config>" : file;
  if (line > 0) {
    m += ":" + std::to_string(line);
    if (column > 0) m += ":" + std::to_string(column);
  }
  m += ": ";
  if (!key.empty()) m += key + ": ";
  m += what;
  return m;
}

}  // namespace

Error::Error(std::string file, int line, int column, std::string key, std::string what)
    : std::runtime_error(format_message(file, line, column, key, what)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      reason_(std::move(what)) {}

namespace {

using YAML::Node;

// Configs are a few kilobytes; the cap stops "vipproxy -c /dev/zero".
constexpr std::size_t kMaxFileSize = 4 * 1024 * 1024;

std::string quote(std::string_view s) {
  std::string out = "'";
  std::size_t n = 0;
  for (char c : s) {
    if (++n > 60) {
      out += "...";
      break;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out += c;
  }
  return out + "'";
}

std::string describe(const Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return quote(n.Scalar());
    default:
      return "nothing";
  }
}

std::string join(const std::vector<std::string_view>& v) {
  std::string out;
  for (auto s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

std::string ms_text(Duration d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

// Names from keepalived.conf and haproxy.cfg that operators will type out of
// habit. `target` must be valid at the level where the unknown key appears.
struct Hint {
  std::string_view from, target, text;
};
constexpr Hint kHints[] = {
    {"nopreempt", "preempt", "write 'preempt: false'"},
    {"auth_type", "authentication", "write 'authentication: {type: pass, password: ...}'"},
    {"auth_pass", "authentication", "write 'authentication: {type: pass, password: ...}'"},
    {"track_script", "track", "write 'track: {scripts: [...]}'"},
    {"track_interface", "track", "write 'track: {interfaces: [...]}'"},
    {"track_process", "track", "write 'track: {proxies: [...]}' for the built-in proxy"},
    {"notify_master", "notify", "write 'notify: {master: ...}'"},
    {"notify_backup", "notify", "write 'notify: {backup: ...}'"},
    {"notify_fault", "notify", "write 'notify: {fault: ...}'"},
    {"notify_stop", "notify", "write 'notify: {stop: ...}'"},
    {"garp_master_delay", "garp", "write 'garp: {master_delay: ...}'"},
    {"garp_master_repeat", "garp", "write 'garp: {master_repeat: ...}'"},
    {"garp_master_refresh", "garp", "write 'garp: {master_refresh: ...}'"},
    {"garp_interval", "garp", "write 'garp: {interval: ...}'"},
    {"vrid", "virtual_router_id", "did you mean 'virtual_router_id'?"},
    {"inter", "interval", "did you mean 'interval'? (HAProxy 'inter')"},
    {"bind", "listen", "did you mean 'listen'? (HAProxy 'bind')"},
    {"server", "backends", "did you mean 'backends'? (HAProxy 'server' lines)"},
    {"servers", "backends", "did you mean 'backends'?"},
    {"backend", "backends", "did you mean 'backends'?"},
    {"proxy", "proxies", "did you mean 'proxies'?"},
    {"<<", "", "YAML merge keys ('<<') are not supported; write the keys out"},
};

std::string unknown_key_reason(std::string_view key, std::initializer_list<std::string_view> allowed) {
  std::string head = "unknown key " + quote(key);
  for (const Hint& h : kHints) {
    if (h.from != key) continue;
    if (h.target.empty() || std::find(allowed.begin(), allowed.end(), h.target) != allowed.end())
      return head + "; " + std::string(h.text);
  }
  std::string_view best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (auto a : allowed) {
    std::size_t d = syntax::edit_distance(key, a);
    if (d < best_d) {
      best_d = d;
      best = a;
    }
  }
  // Close enough to be a typo: at most 2 edits, or a third of the word.
  if (!best.empty() && (best_d <= 2 || best_d * 3 <= std::max(key.size(), best.size())))
    return head + "; did you mean " + quote(best) + "?";
  return head + "; expected one of: " + join(std::vector<std::string_view>(allowed));
}

struct Located {
  Node node;
  std::string path;
};

class Loader;

// A YAML mapping whose keys have been checked against the set valid at this
// level: no unknown keys, no duplicates, no non-scalar keys.
class Map {
 public:
  Map(const Loader& l, const Node& node, std::string path, std::initializer_list<std::string_view> allowed,
      std::string_view what);

  std::optional<Node> get(std::string_view key) const {
    for (const auto& [k, v] : entries_)
      if (k == key) return v;
    return std::nullopt;
  }
  Node require(std::string_view key, std::string_view what) const;
  std::string path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  const Node& node() const { return node_; }
  const std::string& path() const { return path_; }

 private:
  const Loader& l_;
  Node node_;
  std::string path_;
  std::vector<std::pair<std::string, Node>> entries_;
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  Config load(std::string_view text);

  [[noreturn]] void fail(const Node& at, const std::string& key, const std::string& why) const {
    YAML::Mark m = at.Mark();
    // An empty value ("rise:") is marked where the next token starts, often
    // the next line: point at its key instead.
    if (at.IsNull())
      for (const auto& [value, key_mark] : null_values_)
        if (value.is(at)) m = key_mark;
    if (m.is_null()) throw Error(file_, 0, 0, key, why);
    throw Error(file_, m.line + 1, m.column + 1, key, why);
  }

  // Empty values and the mark of their key (see fail()).
  void note_null(const Node& value, const YAML::Mark& key_mark) const { null_values_.emplace_back(value, key_mark); }

  // ---- typed scalars ----

  std::string scalar(const Node& n, const std::string& path, std::string_view expected) const {
    if (!n.IsScalar()) fail(n, path, "expected " + std::string(expected) + ", got " + describe(n));
    return n.Scalar();
  }

  std::string string(const Node& n, const std::string& path) const { return scalar(n, path, "a string"); }

  std::string nonempty_string(const Node& n, const std::string& path, std::string_view expected) const {
    std::string s = scalar(n, path, expected);
    if (s.empty()) fail(n, path, "expected " + std::string(expected) + ", got an empty string");
    return s;
  }

  long long integer(const Node& n, const std::string& path, long long min, long long max,
                    std::string_view what = {}) const {
    std::string expected =
        what.empty() ? "a whole number from " + std::to_string(min) + " to " + std::to_string(max) : std::string(what);
    std::string s = scalar(n, path, expected);
    auto v = syntax::parse_integer(s, min < 0);
    if (!v) fail(n, path, "expected " + expected + ", got " + describe(n));
    if (*v < min || *v > max) fail(n, path, "expected " + expected + ", got " + s);
    return *v;
  }

  bool boolean(const Node& n, const std::string& path) const {
    std::string s = syntax::lower(scalar(n, path, "true or false"));
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    fail(n, path, "expected true or false, got " + describe(n));
  }

  // min/max bound the value; with none_means_zero, "none" and a bare 0 mean 0
  // where 0 means "disabled".
  Duration duration(const Node& n, const std::string& path, Duration min, std::optional<Duration> max = {},
                    bool none_means_zero = false) const {
    std::string s = scalar(n, path, "a duration like 250ms, 2s or 1m");
    if (none_means_zero && (syntax::lower(s) == "none" || s == "0")) {
      if (min > Duration{0}) fail(n, path, "expected a duration of at least " + ms_text(min));
      return Duration{0};
    }
    Duration d{};
    if (!parse_duration(s, d)) {
      if (syntax::parse_integer(s, true) || syntax::parse_decimal_seconds(s))
        fail(n, path,
             "expected a duration with a unit (250ms, 2s, 1m, 1h), got the bare number " + s +
                 ", which is ambiguous: write '" + s + "s' for seconds or '" + s + "ms' for milliseconds");
      fail(n, path, "expected a duration like 250ms, 2s, 1.5s, 1m or 1h, got " + describe(n));
    }
    if (d < min) {
      if (min == Duration{1}) fail(n, path, "expected a duration greater than 0, got " + s);
      fail(n, path, "expected a duration of at least " + ms_text(min) + ", got " + s);
    }
    if (max && d > *max) fail(n, path, "expected a duration of at most " + ms_text(*max) + ", got " + s);
    return d;
  }

  template <class E>
  E choice(const Node& n, const std::string& path,
           std::initializer_list<std::pair<std::string_view, E>> options) const {
    std::vector<std::string_view> names;
    for (const auto& o : options) names.push_back(o.first);
    std::string expected = "one of " + join(names);
    std::string s = syntax::lower(scalar(n, path, expected));
    for (const auto& o : options)
      if (o.first == s) return o.second;
    fail(n, path, "expected " + expected + ", got " + describe(n));
  }

  uint16_t port(const Node& n, const std::string& path) const {
    return static_cast<uint16_t>(integer(n, path, 1, 65535, "a port number from 1 to 65535"));
  }

  std::string name(const Node& n, const std::string& path) const {
    std::string s = nonempty_string(n, path, "a name");
    if (!syntax::is_name(s))
      fail(n, path, "expected a name of at most 64 letters, digits, '-', '_', '.', '@' or ':', got " + describe(n));
    return s;
  }

  std::string ifname(const Node& n, const std::string& path) const {
    std::string s = nonempty_string(n, path, "a network interface name");
    if (!syntax::is_ifname(s))
      fail(n, path, "expected a network interface name (1-15 characters, no '/', ':' or spaces), got " + describe(n));
    return s;
  }

  // "host:port", "[v6]:port"; for a listen address "*:port", ":port" and
  // "0.0.0.0:port" all mean every IPv4 address ("*" is stored as 0.0.0.0).
  Endpoint endpoint(const Node& n, const std::string& path, bool listen) const {
    std::string expected = listen ? "an address to listen on like 0.0.0.0:5433, *:5433, [::]:5433 or host:5433"
                                  : "an address like 192.168.1.151:5432, [fd00::1]:5432 or db1.example.com:5432";
    std::string s = scalar(n, path, expected);
    auto bad = [&](const std::string& why) -> void {
      fail(n, path, "expected " + expected + ", got " + quote(s) + why);
    };
    Endpoint ep;
    std::string port_text;
    if (!s.empty() && s.front() == '[') {
      auto close = s.find(']');
      if (close == std::string::npos) bad(" (missing ']')");
      ep.host = s.substr(1, close - 1);
      if (!syntax::is_ipv6(ep.host)) bad(" (not an IPv6 address between the brackets)");
      if (close + 1 >= s.size() || s[close + 1] != ':') bad(" (missing ':port' after ']')");
      port_text = s.substr(close + 2);
    } else {
      auto colon = s.rfind(':');
      if (colon == std::string::npos) bad(" (missing ':port')");
      ep.host = s.substr(0, colon);
      port_text = s.substr(colon + 1);
      if (ep.host.find(':') != std::string::npos) bad(" (an IPv6 address needs brackets: [addr]:port)");
      if (listen && (ep.host.empty() || ep.host == "*")) ep.host = "0.0.0.0";
      if (ep.host.empty()) bad(" (missing host)");
      if (!syntax::is_ipv4(ep.host) && !syntax::is_hostname(ep.host)) bad(" (not an IPv4 address or host name)");
    }
    if (!listen && (ep.host == "0.0.0.0" || ep.host == "::")) bad(" (the any-address is only valid for listen)");
    auto p = syntax::parse_integer(port_text, false);
    if (!p || *p < 1 || *p > 65535) bad(" (the port must be a number from 1 to 65535)");
    ep.port = static_cast<uint16_t>(*p);
    return ep;
  }

  const Node& list(const Node& n, const std::string& path, std::string_view of) const {
    if (!n.IsSequence()) fail(n, path, "expected a list of " + std::string(of) + ", got " + describe(n));
    return n;
  }

  static std::string index(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

 private:
  Config top(const Node& root);
  Admin admin(const Node& n, const std::string& path);
  Proxy proxy(const Node& n, const std::string& path);
  Check check(const Node& n, const std::string& path);
  TlsCheck tls(const Node& n, const std::string& path);
  TcpKeepalive keepalive(const Node& n, const std::string& path);
  VrrpInstance vrrp(const Node& n, const std::string& path);
  Duration advert_int(const Node& n, const std::string& path, unsigned version);
  VirtualAddress vip(const Node& n, const std::string& path, const std::string& interface);
  Track track(const Node& n, const std::string& path);
  Notify notify(const Node& n, const std::string& path);
  Garp garp(const Node& n, const std::string& path);
  int weight(const Node& n, const std::string& path) const {
    return static_cast<int>(integer(n, path, -254, 254, "a weight from -254 to 254"));
  }

  void check_encoding(std::string_view text) const;
  void cross_check(const Config& c);

  std::string file_;
  mutable std::vector<std::pair<Node, YAML::Mark>> null_values_;
  // Remembered while walking, for the cross checks and their messages.
  std::vector<Located> proxy_names_, listens_, vrrp_names_, track_proxy_refs_, vrrp_idents_;
};

Map::Map(const Loader& l, const Node& node, std::string path_in, std::initializer_list<std::string_view> allowed,
         std::string_view what)
    : l_(l), node_(node), path_(std::move(path_in)) {
  if (!node.IsMap()) l.fail(node, path_, "expected " + std::string(what) + ", got " + describe(node));
  std::map<std::string, int> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies: the iterator hands out a temporary pair.
    const Node k = it->first;
    const Node v = it->second;
    if (!k.IsScalar()) l.fail(k, path_, "expected a key name, got " + describe(k) + " as a key");
    const std::string& key = k.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      l.fail(k, this->path(key), unknown_key_reason(key, allowed));
    auto [pos, fresh] = seen.emplace(key, k.Mark().line + 1);
    if (!fresh) l.fail(k, this->path(key), "duplicate key (first given at line " + std::to_string(pos->second) + ")");
    if (v.IsNull()) l.note_null(v, k.Mark());
    entries_.emplace_back(key, v);
  }
}

Node Map::require(std::string_view key, std::string_view what) const {
  if (auto v = get(key)) return *v;
  l_.fail(node_, path(key), "missing: expected " + std::string(what));
}

// ---------------------------------------------------------------- encoding

void Loader::check_encoding(std::string_view text) const {
  // yaml-cpp reads NUL as end of input and takes stray bytes as Latin-1, so a
  // binary file or a file in the wrong encoding must be stopped here, with
  // the position of the first bad byte.
  int line = 1, col = 1;
  std::size_t i = 0;
  if (text.starts_with("\xEF\xBB\xBF")) i = 3;
  auto bad = [&](const std::string& why) -> void {
    throw Error(file_, line, col, "", why + ": expected UTF-8 text (is this a binary file?)");
  };
  char hex[8];
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c == 0) bad("NUL byte");
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
        std::snprintf(hex, sizeof hex, "0x%02X", c);
        bad(std::string("control character ") + hex);
      }
      ++i;
      if (c == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
      continue;
    }
    std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    std::snprintf(hex, sizeof hex, "0x%02X", c);
    if (len == 0 || c > 0xF4 || c == 0xC0 || c == 0xC1 || i + len > text.size())
      bad(std::string("invalid UTF-8 byte ") + hex);
    uint32_t cp = c & (0x7F >> len);
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) bad(std::string("invalid UTF-8 sequence starting with ") + hex);
      cp = (cp << 6) | (cc & 0x3F);
    }
    bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      bad(std::string("invalid UTF-8 sequence starting with ") + hex);
    i += len;
    ++col;
  }
}

// ---------------------------------------------------------------- top level

// Records where each event of one document starts, for the document count.
class FirstEvent : public YAML::EventHandler {
 public:
  bool started = false;
  bool null_only = true;  // the document is nothing but an empty node
  YAML::Mark mark = YAML::Mark::null_mark();

  void OnDocumentStart(const YAML::Mark& m) override { mark = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m, true); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m, false); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override {
    note(m, false);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    note(m, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    note(m, false);
  }
  void OnMapEnd() override {}

 private:
  void note(const YAML::Mark& m, bool is_null) {
    if (!started) mark = m;
    started = true;
    null_only = null_only && is_null;
  }
};

// True when the text holds no YAML content: blank lines, comments and
// document markers only.
bool only_comments(std::string_view text) {
  while (!text.empty()) {
    auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line = line.substr(first);
    if ((line.starts_with("---") || line.starts_with("...")) &&
        (line.size() == 3 || line.find_first_not_of(" \t\r", 3) == std::string_view::npos ||
         line[line.find_first_not_of(" \t\r", 3)] == '#'))
      continue;
    return false;
  }
  return true;
}

Config Loader::load(std::string_view text) {
  check_encoding(text);
  const std::string expected =
      "expected a mapping of settings with 'proxies' and/or 'vrrp' (see README.md, Configuration reference)";
  Node root;
  auto yaml_error = [&](const YAML::Exception& e) {
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    int col = e.mark.is_null() ? 0 : e.mark.column + 1;
    std::string why = "YAML syntax error: " + e.msg;
    // yaml-cpp reports a tab in the indentation as some other error; the
    // hint saves the operator a hunt for an invisible character.
    if (line > 0) {
      std::string_view rest = text;
      for (int l = 1; l < line && !rest.empty(); ++l) {
        auto eol = rest.find('\n');
        rest = eol == std::string_view::npos ? std::string_view{} : rest.substr(eol + 1);
      }
      std::string_view indent = rest.substr(0, rest.find_first_not_of(" \t"));
      if (indent.find('\t') != std::string_view::npos)
        why += " (a tab in the indentation: YAML indents with spaces only)";
    }
    return Error(file_, line, col, "", why);
  };
  try {
    const std::string input(text);
    root = YAML::Load(input);
    // YAML::LoadAll() loops forever on some malformed input in yaml-cpp 0.7
    // (a stray ',' at top level: jbeder/yaml-cpp#1040, fixed upstream by
    // #1319), so a second document is looked for with a bounded walk over
    // the parser's events instead: at most two documents are read.
    std::istringstream in(input);
    YAML::Parser parser(in);
    FirstEvent first, second;
    if (parser.HandleNextDocument(first) && parser.HandleNextDocument(second) && second.started) {
      if (second.null_only && !first.null_only)
        throw Error(file_, second.mark.line + 1, second.mark.column + 1, "",
                    "YAML syntax error: unexpected text after the end of the document");
      if (!second.null_only)
        throw Error(file_, second.mark.line + 1, second.mark.column + 1, "",
                    "a second YAML document ('---'): expected exactly one");
    }
  } catch (const YAML::Exception& e) {
    throw yaml_error(e);
  }
  if (root.IsNull()) {
    if (only_comments(text)) throw Error(file_, 0, 0, "", "the file is empty or holds only comments: " + expected);
    fail(root, "", expected + ", got nothing");
  }
  if (!root.IsMap()) fail(root, "", expected + ", got " + describe(root));
  try {
    Config c = top(root);
    c.source = file_;
    return c;
  } catch (const YAML::Exception& e) {
    // Not expected (the walk only reads nodes it has type-checked), but a
    // library surprise must still come out as a config error, not a crash.
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    int col = e.mark.is_null() ? 0 : e.mark.column + 1;
    throw Error(file_, line, col, "", "cannot read the configuration: " + e.msg);
  }
}

std::string default_node_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

Config Loader::top(const Node& root) {
  Map m(*this, root, "", {"node", "threads", "log_level", "hard_stop_after", "admin", "proxies", "vrrp"}, "a mapping of settings");
  Config c;
  if (auto n = m.get("node")) {
    c.node = nonempty_string(*n, "node", "this node's name");
    for (unsigned char ch : c.node)
      if (ch <= ' ') fail(*n, "node", "expected a name without spaces, got " + describe(*n));
  } else {
    c.node = default_node_name();
  }
  if (auto n = m.get("threads"))
    c.threads =
        static_cast<unsigned>(integer(*n, "threads", 0, 256, "a number of threads from 0 (one per core) to 256"));
  if (auto n = m.get("hard_stop_after")) c.hard_stop_after = duration(*n, "hard_stop_after", Duration{0});
  if (auto n = m.get("log_level")) {
    // spdlog spells it "warning" in some places; accept both.
    c.log_level = choice<std::string_view>(*n, "log_level",
                                           {{"trace", "trace"},
                                            {"debug", "debug"},
                                            {"info", "info"},
                                            {"warn", "warn"},
                                            {"warning", "warn"},
                                            {"error", "error"},
                                            {"critical", "critical"},
                                            {"off", "off"}});
  }
  auto admin_node = m.get("admin");
  if (admin_node) c.admin = admin(*admin_node, "admin");
  if (c.admin.enabled) {
    // The admin endpoint binds too (by default 127.0.0.1:8405): it takes part
    // in the listen clash check, located at its key or at the admin block.
    std::optional<Node> at;
    if (admin_node && admin_node->IsMap()) at = static_cast<const Node&>(*admin_node)["listen"];
    if (at && at->IsDefined() && !at->IsNull())
      listens_.push_back({*at, "admin.listen"});
    else
      listens_.push_back({admin_node ? *admin_node : root, "admin.listen (default)"});
  }

  // A header whose entries are all commented out reads as null: an empty list.
  if (auto n = m.get("proxies"); n && !n->IsNull()) {
    list(*n, "proxies", "proxies (each a mapping with name, listen, backends...)");
    for (std::size_t i = 0; i < n->size(); ++i) c.proxies.push_back(proxy((*n)[i], index("proxies", i)));
  }
  if (auto n = m.get("vrrp"); n && !n->IsNull()) {
    list(*n, "vrrp", "VRRP instances (each a mapping with name, interface, virtual_router_id...)");
    for (std::size_t i = 0; i < n->size(); ++i) c.vrrp.push_back(vrrp((*n)[i], index("vrrp", i)));
  }
  if (c.proxies.empty() && c.vrrp.empty())
    fail(root, "", "nothing to do: expected at least one entry under 'proxies' or 'vrrp'");
  cross_check(c);
  return c;
}

Admin Loader::admin(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"enabled", "listen", "token"}, "a mapping with enabled, listen, token");
  Admin a;
  if (auto v = m.get("enabled")) a.enabled = boolean(*v, m.path("enabled"));
  if (auto v = m.get("listen")) a.listen = endpoint(*v, m.path("listen"), true);
  if (auto v = m.get("token")) a.token = string(*v, m.path("token"));
  return a;
}

// ---------------------------------------------------------------- proxies

Proxy Loader::proxy(const Node& n, const std::string& path) {
  Map m(*this, n, path,
        {"name", "listen", "check", "balance", "backends", "connect_timeout", "queue_timeout", "idle_timeout",
         "maxconn", "shutdown_sessions_on_down", "keepalive", "tcp_user_timeout"},
        "a proxy (a mapping with name, listen, check, backends...)");
  Proxy p;
  Node name_node = m.require("name", "the proxy's name");
  p.name = name(name_node, m.path("name"));
  proxy_names_.push_back({name_node, m.path("name")});
  Node listen_node = m.require("listen", "the address to listen on, like 0.0.0.0:5433");
  p.listen = endpoint(listen_node, m.path("listen"), true);
  listens_.push_back({listen_node, m.path("listen")});
  if (auto v = m.get("check")) p.check = check(*v, m.path("check"));
  if (auto v = m.get("balance"))
    p.balance = choice<Balance>(
        *v, m.path("balance"),
        {{"first", Balance::first}, {"roundrobin", Balance::roundrobin}, {"leastconn", Balance::leastconn}});
  Node backends = m.require("backends", "a list of backends, each {name, address}");
  list(backends, m.path("backends"), "backends (each {name, address, check_port})");
  if (backends.size() == 0) fail(backends, m.path("backends"), "expected at least one backend, got an empty list");
  std::map<std::string, int> names, addresses;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    std::string bpath = index(m.path("backends"), i);
    Map b(*this, backends[i], bpath, {"name", "address", "check_port"},
          "a backend (a mapping with name, address, check_port)");
    Backend be;
    Node bn = b.require("name", "the backend's name");
    be.name = name(bn, b.path("name"));
    if (auto [pos, fresh] = names.emplace(be.name, bn.Mark().line + 1); !fresh)
      fail(bn, b.path("name"),
           "duplicate backend name " + quote(be.name) + " (first at line " + std::to_string(pos->second) +
               "): expected names unique within the proxy");
    Node an = b.require("address", "the backend's host:port, like 192.168.1.151:5432");
    be.address = endpoint(an, b.path("address"), false);
    std::string key = syntax::lower(be.address.to_string());
    if (auto [pos, fresh] = addresses.emplace(key, an.Mark().line + 1); !fresh)
      fail(an, b.path("address"),
           "duplicate backend address " + quote(be.address.to_string()) + " (first at line " +
               std::to_string(pos->second) + ")");
    if (auto v = b.get("check_port")) be.check_port = port(*v, b.path("check_port"));
    p.backends.push_back(std::move(be));
  }
  if (auto v = m.get("connect_timeout")) p.connect_timeout = duration(*v, m.path("connect_timeout"), Duration{1});
  if (auto v = m.get("queue_timeout")) p.queue_timeout = duration(*v, m.path("queue_timeout"), Duration{0});
  if (auto v = m.get("idle_timeout")) p.idle_timeout = duration(*v, m.path("idle_timeout"), Duration{0}, {}, true);
  if (auto v = m.get("maxconn")) p.maxconn = static_cast<unsigned>(integer(*v, m.path("maxconn"), 1, 1'000'000));
  if (auto v = m.get("shutdown_sessions_on_down"))
    p.shutdown_sessions_on_down = boolean(*v, m.path("shutdown_sessions_on_down"));
  if (auto v = m.get("keepalive")) p.keepalive = keepalive(*v, m.path("keepalive"));
  // TCP_USER_TIMEOUT is an unsigned int of milliseconds; INT_MAX keeps it
  // clear of sign trouble in the socket code.
  if (auto v = m.get("tcp_user_timeout"))
    p.tcp_user_timeout =
        duration(*v, m.path("tcp_user_timeout"), Duration{0}, Duration{std::numeric_limits<int>::max()}, true);
  return p;
}

Check Loader::check(const Node& n, const std::string& path) {
  Map m(*this, n, path,
        {"type", "port", "method", "path", "expect_status", "interval", "fast_interval", "timeout", "rise", "fall",
         "down_on_status", "expect_role", "tls"},
        "a check (a mapping with type, port, path, interval...)");
  Check c;
  if (auto v = m.get("type"))
    c.type = choice<CheckType>(*v, m.path("type"), {{"http", CheckType::http}, {"tcp", CheckType::tcp}});
  if (auto v = m.get("port")) c.port = port(*v, m.path("port"));
  // A TCP check sends nothing: HTTP settings there are a mistake, not a no-op.
  for (const char* http_only : {"method", "path", "expect_status", "expect_role"})
    if (auto v = m.get(http_only); v && c.type == CheckType::tcp)
      fail(*v, m.path(http_only), "only valid with 'type: http' (this check is 'type: tcp')");
  if (auto v = m.get("method")) {
    c.method = nonempty_string(*v, m.path("method"), "an HTTP method like OPTIONS, HEAD or GET");
    if (!syntax::is_http_token(c.method))
      fail(*v, m.path("method"),
           "expected an HTTP method (an RFC 9110 token) like OPTIONS, HEAD or GET, got " + describe(*v));
  }
  if (auto v = m.get("path")) {
    c.path = scalar(*v, m.path("path"), "an HTTP path starting with '/', like /primary");
    if (c.path.empty() || c.path.front() != '/')
      fail(*v, m.path("path"), "expected an HTTP path starting with '/', like /primary, got " + describe(*v));
    for (unsigned char ch : c.path)
      if (ch <= ' ' || ch == 0x7f)
        fail(*v, m.path("path"), "expected an HTTP path without spaces or control characters, got " + describe(*v));
  }
  if (auto v = m.get("expect_status"))
    c.expect_status =
        static_cast<unsigned>(integer(*v, m.path("expect_status"), 100, 599, "an HTTP status from 100 to 599"));
  if (auto v = m.get("interval")) c.interval = duration(*v, m.path("interval"), Duration{1});
  if (auto v = m.get("fast_interval")) {
    c.fast_interval = duration(*v, m.path("fast_interval"), Duration{1});
    if (c.fast_interval > c.interval)
      fail(*v, m.path("fast_interval"),
           "expected a duration no longer than interval (" + ms_text(c.interval) + "), got " + v->Scalar());
  } else {
    // The default fast interval is only a speed-up: never slower than interval.
    c.fast_interval = std::min(c.fast_interval, c.interval);
  }
  if (auto v = m.get("timeout")) c.timeout = duration(*v, m.path("timeout"), Duration{1});
  if (auto v = m.get("rise")) c.rise = static_cast<unsigned>(integer(*v, m.path("rise"), 1, 1000));
  if (auto v = m.get("fall")) c.fall = static_cast<unsigned>(integer(*v, m.path("fall"), 1, 1000));
  if (auto v = m.get("down_on_status")) c.down_on_status = boolean(*v, m.path("down_on_status"));
  if (auto v = m.get("expect_role"))
    c.expect_role = choice<ExpectRole>(
        *v, m.path("expect_role"),
        {{"auto", ExpectRole::automatic}, {"primary", ExpectRole::primary}, {"any", ExpectRole::any}});
  if (auto v = m.get("tls")) c.tls = tls(*v, m.path("tls"));
  return c;
}

TlsCheck Loader::tls(const Node& n, const std::string& path) {
  // `tls: true` is the short form of `tls: {enabled: true}`.
  TlsCheck t;
  if (n.IsScalar()) {
    t.enabled = boolean(n, path);
    return t;
  }
  Map m(*this, n, path, {"enabled", "verify", "ca_file", "server_name"},
        "true/false or a mapping with enabled, verify, ca_file, server_name");
  // Writing a tls block means TLS is wanted unless it says enabled: false.
  t.enabled = true;
  if (auto v = m.get("enabled")) t.enabled = boolean(*v, m.path("enabled"));
  if (auto v = m.get("verify")) t.verify = boolean(*v, m.path("verify"));
  if (auto v = m.get("ca_file"))
    t.ca_file = nonempty_string(*v, m.path("ca_file"), "a path to a PEM file of CA certificates");
  if (auto v = m.get("server_name")) {
    t.server_name = nonempty_string(*v, m.path("server_name"), "a host name");
    if (!syntax::is_hostname(t.server_name))
      fail(*v, m.path("server_name"), "expected a DNS host name, got " + describe(*v));
  }
  return t;
}

TcpKeepalive Loader::keepalive(const Node& n, const std::string& path) {
  TcpKeepalive k;
  if (n.IsScalar()) {
    k.enabled = boolean(n, path);
    return k;
  }
  Map m(*this, n, path, {"enabled", "idle", "interval", "count"},
        "true/false or a mapping with enabled, idle, interval, count");
  if (auto v = m.get("enabled")) k.enabled = boolean(*v, m.path("enabled"));
  // TCP_KEEPIDLE and TCP_KEEPINTVL count whole seconds, 1 to 32767 (tcp(7)).
  auto seconds = [&](std::string_view key, Duration& out) {
    auto v = m.get(key);
    if (!v) return;
    out = duration(*v, m.path(key), Duration{1000}, Duration{32767 * 1000});
    if (out.count() % 1000 != 0)
      fail(*v, m.path(key), "expected a whole number of seconds (the kernel counts seconds), got " + v->Scalar());
  };
  seconds("idle", k.idle);
  seconds("interval", k.interval);
  if (auto v = m.get("count")) k.count = static_cast<unsigned>(integer(*v, m.path("count"), 1, 127));
  return k;
}

// ---------------------------------------------------------------- vrrp

Duration Loader::advert_int(const Node& n, const std::string& path, unsigned version) {
  // keepalived users write "advert_int 1" (seconds) and, for VRRPv3, "0.1":
  // a bare number here means seconds. Anywhere else a bare number is refused.
  std::string s = scalar(n, path, "an advertisement interval like 1s or 100ms");
  Duration d{};
  if (auto ms = syntax::parse_decimal_seconds(s)) {
    d = Duration{*ms};
  } else if (!parse_duration(s, d)) {
    fail(n, path, "expected an advertisement interval like 1s, 100ms or a number of seconds, got " + describe(n));
  }
  if (version == 2) {
    // RFC 3768 section 5.3.7: an 8-bit count of seconds.
    if (d.count() % 1000 != 0 || d < Duration{1000} || d > Duration{255'000})
      fail(n, path, "expected whole seconds from 1s to 255s for version 2 (VRRPv2 counts seconds), got " + s);
  } else {
    // RFC 5798 section 5.2.7: a 12-bit count of centiseconds.
    if (d.count() % 10 != 0 || d < Duration{10} || d > Duration{40'950})
      fail(n, path,
           "expected a multiple of 10ms from 10ms to 40.95s for version 3 (VRRPv3 counts centiseconds), got " + s);
  }
  return d;
}

std::string canonical_ip(const std::string& s, bool v6) {
  if (!v6) return s;
  in6_addr a{};
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1 || !inet_ntop(AF_INET6, &a, buf, sizeof buf)) return s;
  return buf;
}

bool is_unspecified(const std::string& canon) { return canon == "0.0.0.0" || canon == "::"; }

VirtualAddress Loader::vip(const Node& n, const std::string& path, const std::string& interface) {
  // "192.168.1.160/24", or {address, prefix | prefix_len, device, label}.
  VirtualAddress va;
  Node addr_node = n;
  std::string addr_path = path;
  std::optional<Node> prefix_node, label_node;
  std::string prefix_path, text;
  const char* expected = "an address like 192.168.1.160/24 or a mapping with address, prefix, device, label";
  if (n.IsMap()) {
    Map m(*this, n, path, {"address", "prefix", "prefix_len", "device", "label"}, expected);
    addr_path = m.path("address");
    addr_node = m.require("address", "an IPv4 or IPv6 address");
    text = nonempty_string(addr_node, addr_path, "an IPv4 or IPv6 address");
    auto p1 = m.get("prefix");
    auto p2 = m.get("prefix_len");
    if (p1 && p2) fail(*p2, m.path("prefix_len"), "give either 'prefix' or 'prefix_len', not both");
    prefix_node = p1 ? p1 : p2;
    prefix_path = m.path(p1 ? "prefix" : "prefix_len");
    if (prefix_node && text.find('/') != std::string::npos)
      fail(*prefix_node, prefix_path, "the address already has a /prefix; give it once");
    if (auto v = m.get("device")) va.device = ifname(*v, m.path("device"));
    label_node = m.get("label");
  } else {
    text = scalar(n, path, expected);
  }
  auto slash = text.find('/');
  std::string addr = text.substr(0, slash);
  va.is_ipv6 = syntax::is_ipv6(addr);
  if (!va.is_ipv6 && !syntax::is_ipv4(addr))
    fail(addr_node, addr_path, "expected an IPv4 or IPv6 address like 192.168.1.160/24, got " + describe(addr_node));
  va.address = canonical_ip(addr, va.is_ipv6);
  if (is_unspecified(va.address))
    fail(addr_node, addr_path, "expected a host address, got the unspecified address " + addr);
  unsigned max = va.is_ipv6 ? 128 : 32;
  std::string prefix_expected = "a prefix length from 0 to " + std::to_string(max);
  if (slash != std::string::npos) {
    auto p = syntax::parse_integer(std::string_view(text).substr(slash + 1), false);
    if (!p || *p > max) fail(addr_node, addr_path, "expected " + prefix_expected + " after '/', got " + quote(text));
    va.prefix_len = static_cast<unsigned>(*p);
  } else if (prefix_node) {
    va.prefix_len = static_cast<unsigned>(integer(*prefix_node, prefix_path, 0, max, prefix_expected));
  } else {
    va.prefix_len = max;  // keepalived's default: a host address
  }
  if (label_node) {
    std::string lpath = path + ".label";
    va.label = nonempty_string(*label_node, lpath, "an address label like eth0:vip");
    if (va.is_ipv6) fail(*label_node, lpath, "labels exist for IPv4 addresses only");
    // The kernel shows a label as an alias of its device: ip(8) requires it
    // to be "<device>:<suffix>", at most 15 characters (IFNAMSIZ - 1).
    std::string dev = va.device.empty() ? interface : va.device;
    if (!va.label.starts_with(dev + ":") || va.label.size() > 15 || va.label.size() == dev.size() + 1)
      fail(*label_node, lpath,
           "expected a label of the form " + dev + ":<suffix> of at most 15 characters, got " + describe(*label_node));
  }
  return va;
}

VrrpInstance Loader::vrrp(const Node& n, const std::string& path) {
  Map m(*this, n, path,
        {"name", "interface", "state", "virtual_router_id", "priority", "version", "advert_int", "preempt",
         "preempt_delay", "authentication", "virtual_ipaddresses", "unicast_src_ip", "unicast_peers", "checksum",
         "track", "notify", "garp"},
        "a VRRP instance (a mapping with name, interface, virtual_router_id...)");
  VrrpInstance v;
  Node name_node = m.require("name", "the instance's name, like VI_1");
  v.name = name(name_node, m.path("name"));
  vrrp_names_.push_back({name_node, m.path("name")});
  v.interface = ifname(m.require("interface", "the network interface, like eth0"), m.path("interface"));
  if (auto x = m.get("state"))
    v.state = choice<VrrpState>(*x, m.path("state"), {{"master", VrrpState::master}, {"backup", VrrpState::backup}});
  Node vrid = m.require("virtual_router_id", "a VRID from 1 to 255, the same on every node of this VIP");
  v.virtual_router_id = static_cast<unsigned>(integer(vrid, m.path("virtual_router_id"), 1, 255));
  if (auto x = m.get("priority")) v.priority = static_cast<unsigned>(integer(*x, m.path("priority"), 1, 255));
  auto version_node = m.get("version");
  if (version_node) v.version = static_cast<unsigned>(integer(*version_node, m.path("version"), 2, 3, "2 or 3"));
  if (auto x = m.get("advert_int")) v.advert_int = advert_int(*x, m.path("advert_int"), v.version);
  if (auto x = m.get("preempt")) v.preempt = boolean(*x, m.path("preempt"));
  if (auto x = m.get("preempt_delay"))
    v.preempt_delay = duration(*x, m.path("preempt_delay"), Duration{0}, Duration{1000 * 1000});

  if (auto a = m.get("authentication")) {
    std::string apath = m.path("authentication");
    Map am(*this, *a, apath, {"type", "password"}, "a mapping {type: pass|none, password}");
    Node type_node = am.require("type", "pass or none");
    v.auth_type = choice<AuthType>(type_node, am.path("type"), {{"pass", AuthType::pass}, {"none", AuthType::none}});
    auto pw = am.get("password");
    if (v.auth_type == AuthType::pass) {
      if (v.version != 2)
        fail(type_node, am.path("type"),
             "PASS authentication exists in VRRPv2 only (RFC 5798 removed it); use version: 2 or type: none");
      if (!pw) am.require("password", "a password of 1 to 8 characters for type: pass");
      v.auth_password = scalar(*pw, am.path("password"), "a password of 1 to 8 characters");
      if (v.auth_password.empty() || v.auth_password.size() > 8)
        fail(*pw, am.path("password"),
             "expected a password of 1 to 8 characters, got " + std::to_string(v.auth_password.size()) +
                 ": VRRPv2 carries 8 bytes and keepalived silently truncates longer ones, so they would not match");
    } else if (pw) {
      fail(*pw, am.path("password"), "a password is only used with type: pass");
    }
  }

  Node vips = m.require("virtual_ipaddresses", "a list of at least one address, like [192.168.1.160/24]");
  std::string vpath = m.path("virtual_ipaddresses");
  list(vips, vpath, "addresses like 192.168.1.160/24");
  if (vips.size() == 0) fail(vips, vpath, "expected at least one address, got an empty list");
  std::set<std::string> seen_vips;
  for (std::size_t i = 0; i < vips.size(); ++i) {
    VirtualAddress va = vip(vips[i], index(vpath, i), v.interface);
    // RFC 5798 section 5.2.9: one instance advertises one address family.
    if (i > 0 && va.is_ipv6 != v.virtual_ipaddresses[0].is_ipv6)
      fail(vips[i], index(vpath, i),
           "expected only " + std::string(v.virtual_ipaddresses[0].is_ipv6 ? "IPv6" : "IPv4") +
               " addresses: an instance is IPv4 or IPv6; put the other family in a second instance");
    if (!seen_vips.insert(va.address).second) fail(vips[i], index(vpath, i), "duplicate address " + va.address);
    v.virtual_ipaddresses.push_back(std::move(va));
  }
  bool v6 = v.virtual_ipaddresses[0].is_ipv6;
  if (v6 && v.version == 2)
    fail(version_node ? *version_node : vips, version_node ? m.path("version") : vpath,
         "VRRPv2 carries IPv4 only (RFC 3768); set version: 3 for IPv6 addresses");
  vrrp_idents_.push_back({vrid, m.path("virtual_router_id")});

  std::string family = v6 ? "an IPv6" : "an IPv4";
  auto peer_ip = [&](const Node& x, const std::string& p) {
    std::string s = nonempty_string(x, p, family + " address");
    if (!(v6 ? syntax::is_ipv6(s) : syntax::is_ipv4(s)))
      fail(x, p, "expected " + family + " address (the family of virtual_ipaddresses), got " + describe(x));
    std::string canon = canonical_ip(s, v6);
    if (is_unspecified(canon)) fail(x, p, "expected a host address, got the unspecified address " + s);
    return canon;
  };
  if (auto x = m.get("unicast_src_ip")) v.unicast_src_ip = peer_ip(*x, m.path("unicast_src_ip"));
  if (auto x = m.get("unicast_peers")) {
    std::string ppath = m.path("unicast_peers");
    list(*x, ppath, "peer addresses");
    if (x->size() == 0)
      fail(*x, ppath, "expected at least one peer address (leave unicast_peers out for multicast), got an empty list");
    for (std::size_t i = 0; i < x->size(); ++i) {
      std::string ip = peer_ip((*x)[i], index(ppath, i));
      if (std::find(v.unicast_peers.begin(), v.unicast_peers.end(), ip) != v.unicast_peers.end())
        fail((*x)[i], index(ppath, i), "duplicate peer " + ip);
      if (ip == v.unicast_src_ip)
        fail((*x)[i], index(ppath, i), "this is unicast_src_ip, this node's own address: expected the other nodes");
      v.unicast_peers.push_back(ip);
    }
    v.unicast = true;
  }
  if (auto x = m.get("checksum")) {
    v.checksum = choice<ChecksumForm>(*x, m.path("checksum"),
                                      {{"keepalived", ChecksumForm::keepalived}, {"rfc9568", ChecksumForm::rfc9568}});
    if (v.version != 3 || v6)
      fail(*x, m.path("checksum"),
           "only applies to version 3 over IPv4 (the other forms have a single checksum rule); remove it");
  }
  if (auto x = m.get("track")) v.track = track(*x, m.path("track"));
  if (auto x = m.get("notify")) v.notify = notify(*x, m.path("notify"));
  if (auto x = m.get("garp")) v.garp = garp(*x, m.path("garp"));
  return v;
}

Track Loader::track(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"proxies", "scripts", "interfaces"}, "a mapping with proxies, scripts, interfaces");
  Track t;
  // Entries of proxies/interfaces are a bare name or {name, weight}.
  auto named = [&](const Node& x, const std::string& p, bool is_interface, int& weight) {
    if (x.IsMap()) {
      Map em(*this, x, p, {"name", "weight"}, "a name or a mapping {name, weight}");
      Node nn = em.require("name", is_interface ? "an interface name" : "a proxy name");
      if (auto w = em.get("weight")) weight = this->weight(*w, em.path("weight"));
      return std::pair{nn, em.path("name")};
    }
    return std::pair{x, p};
  };
  if (auto x = m.get("proxies")) {
    std::string p = m.path("proxies");
    list(*x, p, "proxy names or {name, weight}");
    for (std::size_t i = 0; i < x->size(); ++i) {
      TrackProxy tp;
      auto [nn, np] = named((*x)[i], index(p, i), false, tp.weight);
      tp.name = name(nn, np);
      for (const auto& other : t.proxies)
        if (other.name == tp.name) fail(nn, np, "proxy " + quote(tp.name) + " is already tracked");
      track_proxy_refs_.push_back({nn, np});
      t.proxies.push_back(std::move(tp));
    }
  }
  if (auto x = m.get("interfaces")) {
    std::string p = m.path("interfaces");
    list(*x, p, "interface names or {name, weight}");
    for (std::size_t i = 0; i < x->size(); ++i) {
      TrackInterface ti;
      auto [nn, np] = named((*x)[i], index(p, i), true, ti.weight);
      ti.name = ifname(nn, np);
      for (const auto& other : t.interfaces)
        if (other.name == ti.name) fail(nn, np, "interface " + quote(ti.name) + " is already tracked");
      t.interfaces.push_back(std::move(ti));
    }
  }
  if (auto x = m.get("scripts")) {
    std::string p = m.path("scripts");
    list(*x, p, "scripts, each {name, command, interval, ...}");
    for (std::size_t i = 0; i < x->size(); ++i) {
      Map sm(*this, (*x)[i], index(p, i), {"name", "command", "interval", "timeout", "rise", "fall", "weight", "user"},
             "a script (a mapping with name, command, interval, timeout, rise, fall, weight, user)");
      TrackScript s;
      Node nn = sm.require("name", "the script's name");
      s.name = name(nn, sm.path("name"));
      for (const auto& other : t.scripts)
        if (other.name == s.name) fail(nn, sm.path("name"), "duplicate script name " + quote(s.name));
      s.command = nonempty_string(sm.require("command", "the command to run"), sm.path("command"), "a command line");
      if (auto v = sm.get("interval")) s.interval = duration(*v, sm.path("interval"), Duration{1});
      if (auto v = sm.get("timeout")) s.timeout = duration(*v, sm.path("timeout"), Duration{1});
      if (auto v = sm.get("rise")) s.rise = static_cast<unsigned>(integer(*v, sm.path("rise"), 1, 1000));
      if (auto v = sm.get("fall")) s.fall = static_cast<unsigned>(integer(*v, sm.path("fall"), 1, 1000));
      if (auto v = sm.get("weight")) s.weight = weight(*v, sm.path("weight"));
      if (auto v = sm.get("user")) s.user = nonempty_string(*v, sm.path("user"), "a user name");
      t.scripts.push_back(std::move(s));
    }
  }
  return t;
}

Notify Loader::notify(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"master", "backup", "fault", "stop", "any"},
        "a mapping with master, backup, fault, stop, any (commands)");
  Notify no;
  auto cmd = [&](std::string_view key, std::string& out) {
    if (auto v = m.get(key)) out = string(*v, m.path(key));
  };
  cmd("master", no.master);
  cmd("backup", no.backup);
  cmd("fault", no.fault);
  cmd("stop", no.stop);
  cmd("any", no.any);
  return no;
}

Garp Loader::garp(const Node& n, const std::string& path) {
  Map m(*this, n, path, {"master_delay", "master_repeat", "master_refresh", "interval"},
        "a mapping with master_delay, master_repeat, master_refresh, interval");
  Garp g;
  if (auto v = m.get("master_delay")) g.master_delay = duration(*v, m.path("master_delay"), Duration{0}, {}, true);
  if (auto v = m.get("master_repeat"))
    g.master_repeat = static_cast<unsigned>(integer(*v, m.path("master_repeat"), 1, 255));
  if (auto v = m.get("master_refresh"))
    g.master_refresh = duration(*v, m.path("master_refresh"), Duration{0}, {}, true);
  if (auto v = m.get("interval")) g.interval = duration(*v, m.path("interval"), Duration{0}, Duration{10'000});
  return g;
}

// ---------------------------------------------------------------- cross checks

bool listen_conflict(const Endpoint& a, const Endpoint& b) {
  if (a.port != b.port) return false;
  if (syntax::lower(a.host) == syntax::lower(b.host)) return true;
  // A wildcard bind takes the port for every address of its family ("::"
  // for both families unless bindv6only), so a second bind would fail.
  auto covers = [](const Endpoint& w, const Endpoint& o) {
    if (w.host == "::") return true;
    return w.host == "0.0.0.0" && !syntax::is_ipv6(o.host);
  };
  return covers(a, b) || covers(b, a);
}

void Loader::cross_check(const Config& c) {
  auto line_of = [](const Located& l) { return std::to_string(l.node.Mark().line + 1); };
  for (std::size_t i = 0; i < c.proxies.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (c.proxies[i].name == c.proxies[j].name)
        fail(proxy_names_[i].node, proxy_names_[i].path,
             "duplicate proxy name " + quote(c.proxies[i].name) + " (first at line " + line_of(proxy_names_[j]) +
                 "): expected names unique");

  // listens_ holds admin.listen (when enabled) first, then each proxy's.
  std::vector<Endpoint> eps;
  if (c.admin.enabled) eps.push_back(c.admin.listen);
  for (const auto& p : c.proxies) eps.push_back(p.listen);
  for (std::size_t i = 0; i < eps.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (listen_conflict(eps[i], eps[j]))
        fail(listens_[i].node, listens_[i].path,
             eps[i].to_string() + " clashes with " + listens_[j].path + " (" + eps[j].to_string() + ", line " +
                 line_of(listens_[j]) + "): expected each listen address:port once");

  for (std::size_t i = 0; i < c.vrrp.size(); ++i) {
    const auto& vi = c.vrrp[i];
    for (std::size_t j = 0; j < i; ++j) {
      const auto& vj = c.vrrp[j];
      if (vi.name == vj.name)
        fail(vrrp_names_[i].node, vrrp_names_[i].path,
             "duplicate instance name " + quote(vi.name) + " (first at line " + line_of(vrrp_names_[j]) + ")");
      // RFC 5798 section 7.3: a VRID identifies one router per LAN and family.
      bool v6i = vi.virtual_ipaddresses[0].is_ipv6, v6j = vj.virtual_ipaddresses[0].is_ipv6;
      if (vi.interface == vj.interface && vi.virtual_router_id == vj.virtual_router_id && v6i == v6j)
        fail(vrrp_idents_[i].node, vrrp_idents_[i].path,
             "VRID " + std::to_string(vi.virtual_router_id) + " on " + vi.interface + " (" + (v6i ? "IPv6" : "IPv4") +
                 ") is already used by " + vrrp_names_[j].path + " " + quote(vj.name) +
                 ": expected one instance per interface, VRID and address family");
      for (const auto& a : vi.virtual_ipaddresses)
        for (const auto& b : vj.virtual_ipaddresses)
          if (a.address == b.address)
            fail(vrrp_names_[i].node, vrrp_names_[i].path,
                 "address " + a.address + " is also managed by instance " + quote(vj.name) +
                     ": expected each virtual address in one instance");
    }
  }

  for (const auto& ref : track_proxy_refs_) {
    std::string n = ref.node.Scalar();
    bool found = std::any_of(c.proxies.begin(), c.proxies.end(), [&](const Proxy& p) { return p.name == n; });
    if (!found) {
      std::vector<std::string_view> names;
      for (const auto& p : c.proxies) names.push_back(p.name);
      fail(ref.node, ref.path,
           "no proxy named " + quote(n) +
               (names.empty() ? std::string(" (no proxies are defined)") : "; expected one of: " + join(names)));
    }
  }
}

}  // namespace

Config load_string(std::string_view yaml, const std::string& source_name) {
  Loader l(source_name);
  return l.load(yaml);
}

Config load_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path, 0, 0, "", std::string("cannot open the file: ") + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw Error(path, 0, 0, "", std::string("cannot read the file: ") + std::strerror(e));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxFileSize) {
      ::close(fd);
      throw Error(path, 0, 0, "",
                  "the file is larger than " + std::to_string(kMaxFileSize / (1024 * 1024)) +
                      " MiB: expected a configuration file");
    }
  }
  ::close(fd);
  return load_string(text, path);
}

}  // namespace cfg
