// README.md's "Configuration reference" against the loader, so the two cannot
// drift: an operator configures from those tables.
//
// - Keys: every key a table lists is one the loader takes at that level, and
//   every key the loader takes is listed. The loader's own list comes from
//   its "unknown key ...; expected one of: ..." message for a key no typo
//   distance reaches.
// - Defaults: a default written as one literal (`5s`, `true`, `auto`, `0`
//   (none)) is what `cfg::to_yaml` (every key) writes for a file that leaves
//   the key out.
// - Enumerations: a type written as `a` \| `b` is the loader's list of
//   spellings ("expected one of ..."); an extra spelling (an alias) must be
//   named in the row's meaning ("`warning` is accepted as `warn`").
// - Integer ranges: a type "integer A–B" loads at A and B and is refused at
//   A-1 and B+1.
#define BOOST_TEST_MODULE cfg_readme
#include <yaml-cpp/yaml.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cfg/dump.h"
#include "cfg/load.h"

namespace {

// One section of the file: where its mapping is in the template below, the
// lines that make it valid, and where to find it in the dump.
struct Section {
  std::string marker;              // "#NAME" line in kTemplate
  std::vector<std::string> fills;  // key lines that make the template load (all at their README default)
  std::vector<std::string> dump_path;  // map keys; "0" is the first list entry
};

const std::map<std::string, Section> kSections = {
    {"top", {"#TOP", {"node: n1"}, {}}},
    {"admin", {"#ADMIN", {"enabled: true"}, {"admin"}}},
    {"proxies", {"#PROXY", {"name: p", "listen: 127.0.0.1:15433"}, {"proxies", "0"}}},
    {"keepalive", {"#KEEPALIVE", {"enabled: true"}, {"proxies", "0", "keepalive"}}},
    {"check", {"#CHECK", {"rise: 2"}, {"proxies", "0", "check"}}},
    {"check.tls", {"#TLS", {"verify: true"}, {"proxies", "0", "check", "tls"}}},
    {"backends", {"#BACKEND", {"name: b", "address: 127.0.0.1:15432"}, {"proxies", "0", "backends", "0"}}},
    {"vrrp", {"#VRRP", {"name: v", "interface: lo", "virtual_router_id: 1"}, {"vrrp", "0"}}},
    {"authentication", {"#AUTH", {"type: none"}, {"vrrp", "0", "authentication"}}},
    {"virtual_ipaddresses", {"#VIP", {"address: 10.88.0.1"}, {"vrrp", "0", "virtual_ipaddresses", "0"}}},
    {"track", {"#TRACK", {"proxies: [p]"}, {"vrrp", "0", "track"}}},
    {"track.scripts", {"#SCRIPT", {"name: s", "command: /bin/true"}, {"vrrp", "0", "track", "scripts", "0"}}},
    {"notify", {"#NOTIFY", {"master: /bin/true"}, {"vrrp", "0", "notify"}}},
    {"garp", {"#GARP", {"master_repeat: 5"}, {"vrrp", "0", "garp"}}},
};

const char* kTemplate = R"(#TOP
admin:
  #ADMIN
proxies:
  - #PROXY
    keepalive:
      #KEEPALIVE
    check:
      #CHECK
      tls:
        #TLS
    backends:
      - #BACKEND
vrrp:
  - #VRRP
    authentication:
      #AUTH
    virtual_ipaddresses:
      - #VIP
    track:
      #TRACK
      scripts:
        - #SCRIPT
    notify:
      #NOTIFY
    garp:
      #GARP
)";

// The README's headings whose tables describe keys, in the order of their
// tables (a heading with two tables names two sections).
const std::map<std::string, std::vector<std::string>> kHeadings = {
    {"Top level", {"top"}},
    {"admin", {"admin"}},
    {"proxies", {"proxies"}},
    {"keepalive", {"keepalive"}},
    {"check", {"check"}},
    {"check.tls", {"check.tls"}},
    {"backends", {"backends"}},
    {"vrrp", {"vrrp"}},
    {"authentication", {"authentication"}},
    {"virtual_ipaddresses", {"virtual_ipaddresses"}},
    {"track", {"track", "track.scripts"}},
    {"notify", {"notify", "notify"}},
    {"garp", {"garp"}},
};

const std::string kUnknown = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

// The template with section `at` holding its fills minus `drop_key`, plus `extra`.
std::string yaml(const std::string& at = {}, const std::string& drop_key = {}, const std::string& extra = {}) {
  std::string out;
  std::istringstream in(kTemplate);
  std::string line;
  while (std::getline(in, line)) {
    std::size_t hash = line.find('#');
    if (hash == std::string::npos) {
      out += line + "\n";
      continue;
    }
    std::string name;
    for (const auto& [n, s] : kSections)
      if (line.compare(hash, std::string::npos, s.marker) == 0) name = n;
    BOOST_REQUIRE_MESSAGE(!name.empty(), "template marker " << line);
    // A list entry's first line starts after "- "; the others line up with it.
    std::string first_indent = line.substr(0, hash);
    std::string indent(hash, ' ');
    std::vector<std::string> lines;
    for (const auto& f : kSections.at(name).fills)
      if (name != at || drop_key.empty() || f.rfind(drop_key + ":", 0) != 0) lines.push_back(f);
    if (name == at && !extra.empty()) lines.push_back(extra);
    for (std::size_t i = 0; i < lines.size(); ++i) out += (i == 0 ? first_indent : indent) + lines[i] + "\n";
  }
  return out;
}

// The loader's message for `text`, or nothing when it loads.
std::optional<std::string> error_of(const std::string& text) {
  try {
    cfg::load_string(text, "readme-test.yaml");
  } catch (const cfg::Error& e) {
    return e.reason();
  }
  return std::nullopt;
}

std::set<std::string> split_list(const std::string& s) {
  std::set<std::string> out;
  std::istringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto b = item.find_first_not_of(' ');
    auto e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.insert(item.substr(b, e - b + 1));
  }
  return out;
}

std::string show(const std::set<std::string>& s) {
  std::string o;
  for (const auto& x : s) o += (o.empty() ? "" : ", ") + x;
  return "{" + o + "}";
}

// Table cells, split at '|' that are not escaped as "\|".
std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::string cur;
  for (std::size_t i = 1; i < row.size(); ++i) {
    if (row[i] == '|' && row[i - 1] != '\\') {
      auto b = cur.find_first_not_of(' ');
      auto e = cur.find_last_not_of(' ');
      out.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += row[i];
    }
  }
  return out;
}

std::vector<std::string> backticked(const std::string& cell) {
  std::vector<std::string> out;
  static const std::regex tick("`([^`]+)`");
  for (std::sregex_iterator it(cell.begin(), cell.end(), tick), end; it != end; ++it) out.push_back((*it)[1]);
  return out;
}

struct Row {
  std::string section, key, type, def, meaning;
};

// The rows of the key tables of README.md's "Configuration reference".
std::vector<Row> readme_rows() {
  std::ifstream f(std::string(VIPPROXY_SOURCE_DIR) + "/README.md");
  BOOST_REQUIRE(f);
  std::vector<Row> rows;
  std::string line, heading;
  bool inside = false;
  std::size_t table_of_heading = 0;
  std::vector<std::string> header;
  bool in_table = false;
  while (std::getline(f, line)) {
    if (line == "## Configuration reference") {
      inside = true;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("## ", 0) == 0 || line == "### Cross-checks") break;
    if (line.rfind("#", 0) == 0) {
      heading = line.substr(line.find(' ') + 1);
      table_of_heading = 0;
      in_table = false;
      continue;
    }
    if (line.rfind("|", 0) != 0) {
      in_table = false;
      continue;
    }
    std::vector<std::string> c = cells(line);
    if (!in_table) {
      in_table = true;
      header = c;
      ++table_of_heading;
      continue;
    }
    if (line.rfind("|---", 0) == 0) continue;
    if (header.empty() || header[0] != "key") continue;  // "Value types": a table of types
    auto h = kHeadings.find(heading);
    BOOST_REQUIRE_MESSAGE(h != kHeadings.end(), "README table of keys under '" << heading << "' is not checked here");
    BOOST_REQUIRE_MESSAGE(table_of_heading <= h->second.size(),
                          "README: more key tables under '" << heading << "' than this test knows");
    Row r;
    r.section = h->second[table_of_heading - 1];
    for (std::size_t i = 0; i < header.size() && i < c.size(); ++i) {
      if (header[i] == "type") r.type = c[i];
      if (header[i] == "default") r.def = c[i];
      if (header[i] == "meaning") r.meaning = c[i];
    }
    for (const auto& k : backticked(c[0])) {
      r.key = k;
      rows.push_back(r);
    }
  }
  BOOST_REQUIRE_MESSAGE(rows.size() > 80, "README: found only " << rows.size() << " keys in the reference tables");
  return rows;
}

std::optional<cfg::Duration> as_duration(const std::string& s) {
  if (s == "0") return cfg::Duration{0};
  cfg::Duration d{};
  if (cfg::parse_duration(s, d)) return d;
  return std::nullopt;
}

}  // namespace

BOOST_AUTO_TEST_CASE(template_loads) {
  auto e = error_of(yaml());
  BOOST_TEST(!e.has_value(), "the test's own file: " << e.value_or(""));
}

BOOST_AUTO_TEST_CASE(every_key_is_in_the_readme_and_every_readme_key_is_loaded) {
  std::map<std::string, std::set<std::string>> readme;
  for (const auto& r : readme_rows()) readme[r.section].insert(r.key);
  for (const auto& [name, section] : kSections) {
    auto e = error_of(yaml(name, {}, kUnknown + ": 1"));
    BOOST_REQUIRE_MESSAGE(e, name << ": an unknown key loaded");
    auto at = e->find("expected one of: ");
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, name << ": " << *e);
    std::set<std::string> loader = split_list(e->substr(at + 17));
    BOOST_TEST(readme[name] == loader, "section " << name << ": README " << show(readme[name]) << ", loader "
                                                  << show(loader));
  }
}

BOOST_AUTO_TEST_CASE(defaults_are_what_the_loader_sets) {
  YAML::Node dumped = YAML::Load(cfg::to_yaml(cfg::load_string(yaml(), "readme-test.yaml")));
  static const std::regex literal("^`([^`]+)`( \\(none\\))?$");
  int compared = 0;
  for (const auto& r : readme_rows()) {
    std::smatch m;
    if (!std::regex_match(r.def, m, literal)) continue;  // prose: "the host name", "see below"
    YAML::Node n = YAML::Clone(dumped);
    for (const auto& p : kSections.at(r.section).dump_path) n = (p == "0") ? YAML::Node(n[0]) : YAML::Node(n[p]);
    if (!n.IsMap() || !n[r.key] || !n[r.key].IsScalar()) continue;  // not written when unset (check_port)
    std::string readme = m[1], loader = n[r.key].Scalar();
    auto dr = as_duration(readme), dl = as_duration(loader);
    bool same = readme == loader || (dr && dl && *dr == *dl);
    BOOST_TEST(same, r.section << "." << r.key << ": README default " << readme << ", loader " << loader);
    ++compared;
  }
  BOOST_TEST(compared > 40);
}

BOOST_AUTO_TEST_CASE(enumerations_are_the_loaders_spellings) {
  static const std::regex enumeration("^`[^`]+`( \\\\\\| `[^`]+`)+$");
  int compared = 0;
  for (const auto& r : readme_rows()) {
    if (!std::regex_match(r.type, enumeration)) continue;
    auto v = backticked(r.type);
    std::set<std::string> readme(v.begin(), v.end());
    auto e = error_of(yaml(r.section, r.key, r.key + ": " + kUnknown));
    BOOST_REQUIRE_MESSAGE(e, r.section << "." << r.key << ": '" << kUnknown << "' loaded");
    auto at = e->find("expected one of ");
    if (at == std::string::npos) {
      // version: "expected 2 or 3"
      BOOST_TEST(e->find("expected " + *v.begin() + " or " + v.back()) != std::string::npos,
                 r.section << "." << r.key << ": " << *e);
      continue;
    }
    auto end = e->find(", got ", at);
    std::set<std::string> loader = split_list(e->substr(at + 16, end - at - 16));
    for (const auto& s : readme)
      BOOST_TEST(loader.count(s) == 1, r.section << "." << r.key << ": README spelling " << s << " refused");
    for (const auto& s : loader)
      BOOST_TEST((readme.count(s) == 1 || r.meaning.find("`" + s + "` is accepted") != std::string::npos),
                 r.section << "." << r.key << ": the loader takes " << s << ", the README does not say");
    ++compared;
  }
  BOOST_TEST(compared >= 8);
}

BOOST_AUTO_TEST_CASE(integer_ranges_are_the_loaders) {
  // "integer 1–1000", "integer −254–254" (U+2013 dash, U+2212 minus).
  static const std::regex range("^integer ((?:\xe2\x88\x92|-)?[0-9]+)\xe2\x80\x93([0-9]+)");
  int compared = 0;
  for (const auto& r : readme_rows()) {
    std::smatch m;
    if (!std::regex_search(r.type, m, range)) continue;
    std::string lo_text = m[1];
    if (lo_text.rfind("\xe2\x88\x92", 0) == 0) lo_text = "-" + lo_text.substr(3);
    long long lo = std::stoll(lo_text), hi = std::stoll(m[2]);
    for (auto [value, ok] : {std::pair{lo, true}, {hi, true}, {lo - 1, false}, {hi + 1, false}}) {
      auto e = error_of(yaml(r.section, r.key, r.key + ": " + std::to_string(value)));
      BOOST_TEST(e.has_value() != ok, r.section << "." << r.key << ": " << value << (ok ? " refused: " : " loaded")
                                                << e.value_or(""));
    }
    ++compared;
  }
  BOOST_TEST(compared > 15);
}
