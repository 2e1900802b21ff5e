// The loader's parts shared by its files (internal to cfg/): the typed-scalar
// helpers every section reads its values with, the checked mapping (Map) and
// the Loader that walks a file. load.cpp reads the file and the top level,
// load_proxy.cpp the proxies, load_vrrp.cpp the VRRP instances,
// cross_check.cpp what spans sections.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cfg/config.h"
#include "cfg/load.h"
#include "cfg/names.h"
#include "cfg/syntax.h"

namespace cfg::detail {

using YAML::Node;

// 'text', cut at 60 characters, newlines and tabs shown.
std::string quote(std::string_view s);
// What a node is, for "expected X, got Y": a mapping, a list, 'scalar', nothing.
std::string describe(const Node& n);
std::string join(const std::vector<std::string_view>& v);
std::string ms_text(Duration d);
// "unknown key 'x'; did you mean 'y'?" (or the vipproxy name of a keepalived
// or HAProxy spelling, or the list of valid keys).
std::string unknown_key_reason(std::string_view key, std::initializer_list<std::string_view> allowed);
// Where the '-' of an empty list entry is, from the mark yaml-cpp gives it
// (see Loader::list()); nullopt when no '-' stands before it.
std::optional<YAML::Mark> dash_before(std::string_view text, const YAML::Mark& at);

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
    // "password: !Bac1234": '!' starts a YAML tag, which yaml-cpp takes off
    // the value ("" here, or the words after a space). YAML's own tags
    // ("!!str") are fine; a local one is a value that needed quotes.
    if (const std::string& tag = n.Tag();
        tag.size() > 1 && tag[0] == '!' && !tag.starts_with("!!") && !tag.starts_with("tag:yaml.org,2002:"))
      fail(n, path,
           "expected " + std::string(expected) + ", got the YAML tag " + quote(tag) +
               ": a value starting with '!' must be quoted");
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

  // An enum of the configuration, in the one spelling of cfg/names.
  template <class E>
  E choice(const Node& n, const std::string& path) const {
    std::string expected = "one of " + names::expected<E>();
    std::string s = syntax::lower(scalar(n, path, expected));
    if (auto e = names::parse<E>(s)) return *e;
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
      if (auto zone = ep.host.find('%'); zone != std::string::npos && syntax::is_ipv6(ep.host.substr(0, zone)))
        bad(" (an IPv6 zone ('" + ep.host.substr(zone) +
            "') is not supported: use a global or unique local address, not a link-local one)");
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
    // An empty entry ("-" alone, or an entry commented out) is marked where
    // the next token starts, often the next entry's line: point at its '-'.
    // No entry may be empty, so the first one is the error; one look back
    // keeps a file of a million "-" lines linear.
    for (const auto& e : n)
      if (e.IsNull()) {
        if (auto dash = dash_before(text_, e.Mark())) note_null(e, *dash);
        break;
      }
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
  // Loader::vrrp, one rule group each (load_vrrp.cpp).
  void vrrp_identity(const Map& m, VrrpInstance& v, std::optional<Node>& version_node);
  void vrrp_timing(const Map& m, VrrpInstance& v);
  void authentication(const Map& m, VrrpInstance& v);
  void virtual_ipaddresses(const Map& m, VrrpInstance& v, const std::optional<Node>& version_node);
  void unicast(const Map& m, VrrpInstance& v);
  void checksum(const Map& m, VrrpInstance& v);
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
  std::string_view text_;  // the file, while load() runs
  mutable std::vector<std::pair<Node, YAML::Mark>> null_values_;
  // Remembered while walking, for the cross checks and their messages.
  std::vector<Located> proxy_names_, listens_, vrrp_names_, track_proxy_refs_, vrrp_idents_;
  std::vector<std::vector<Located>> backend_addresses_;  // per proxy, in the file's order
};

}  // namespace cfg::detail
