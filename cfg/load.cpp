// YAML -> validated cfg::Config.
//
// The walk is strict on purpose: a typo in a failover daemon's config must
// stop it at start, with the file, line, key and what was expected, rather
// than run with a default the operator did not mean. Every map refuses keys
// it does not know (suggesting the nearest valid one, and the vipproxy name
// for keepalived/HAProxy spellings), every value is checked for type and
// range, and cross-references (track.proxies, unique names, listen
// addresses, VRIDs) are checked once the whole file has been read.
//
// This file: the file itself (size, encoding, YAML syntax, one document),
// the top level and `admin`, and the helpers of cfg/loader.h. The sections
// are in load_proxy.cpp and load_vrrp.cpp, the cross-section checks in
// cross_check.cpp.
#include "cfg/load.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>

#include "cfg/loader.h"

namespace cfg {

namespace {

// Configs are a few kilobytes; the cap stops "vipproxy -c /dev/zero".
constexpr std::size_t kMaxFileSize = 4 * 1024 * 1024;
// yaml-cpp's parser stops at this depth (DepthGuard<500> in its
// singledocparser.cpp), before the stack runs out.
constexpr int kMaxYamlDepth = 500;

constexpr const char* kStillWritten =
    "the file is open for writing by another process (an editor or a tool still saving it?): expected a "
    "complete file; try again once it is saved";

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

namespace detail {

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

namespace {

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

// Every mapping the loader reads and its keys, for "it is a key of ...":
// a key put in the wrong section (hard_stop_after inside a proxy, interval
// beside check instead of under it). Keep in step with the Map(...) calls of
// load*.cpp (cfg_readme_test holds those to README's tables).
struct Section {
  std::string_view name;
  std::initializer_list<std::string_view> keys;
};
const Section kSections[] = {
    {"the top level",
     {"node", "threads", "vrrp_rt_priority", "log_level", "hard_stop_after", "admin", "proxies", "vrrp"}},
    {"admin", {"enabled", "listen", "token"}},
    {"a proxy",
     {"name", "listen", "check", "balance", "backends", "connect_timeout", "queue_timeout", "idle_timeout",
      "client_fin_timeout", "server_fin_timeout", "maxconn", "shutdown_sessions_on_down", "keepalive",
      "tcp_user_timeout", "data_path", "log_sessions"}},
    {"check",
     {"type", "port", "method", "path", "expect_status", "interval", "fast_interval", "timeout", "rise", "fall",
      "down_on_status", "expect_role", "tls"}},
    {"check.tls", {"enabled", "verify", "ca_file", "server_name", "cert_file", "key_file"}},
    {"keepalive", {"enabled", "idle", "interval", "count"}},
    {"a backend", {"name", "address", "check_port"}},
    {"a vrrp instance",
     {"name", "interface", "state", "virtual_router_id", "priority", "version", "advert_int", "preempt",
      "preempt_delay", "authentication", "virtual_ipaddresses", "unicast_src_ip", "unicast_peers", "checksum",
      "track", "notify", "garp"}},
    {"authentication", {"type", "password"}},
    {"a virtual_ipaddresses entry", {"address", "prefix", "prefix_len", "device", "label"}},
    {"track", {"proxies", "scripts", "interfaces"}},
    {"a track entry", {"name", "weight"}},
    {"a track script", {"name", "command", "interval", "timeout", "rise", "fall", "weight", "user"}},
    {"notify", {"master", "backup", "fault", "stop", "any", "timeout", "max_running"}},
    {"garp", {"master_delay", "master_repeat", "master_refresh", "interval"}},
};

// "check, keepalive, garp": the sections that have `key`, "" if none.
std::string sections_with(std::string_view key) {
  std::string out;
  for (const Section& sec : kSections)
    if (std::find(sec.keys.begin(), sec.keys.end(), key) != sec.keys.end() &&
        out.find(std::string(sec.name)) == std::string::npos)
      out += (out.empty() ? "" : ", ") + std::string(sec.name);
  return out;
}

// Close enough to be a typo: at most 2 edits, or a third of the word.
bool close_enough(std::string_view a, std::string_view b, std::size_t d) {
  return d <= 2 || d * 3 <= std::max(a.size(), b.size());
}

}  // namespace

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
  if (!best.empty() && close_enough(key, best, best_d)) return head + "; did you mean " + quote(best) + "?";
  const std::string valid = "; expected one of: " + join(std::vector<std::string_view>(allowed));
  // A key of another section, as written or nearly.
  if (std::string where = sections_with(key); !where.empty()) return head + " here: it is a key of " + where + valid;
  std::string_view near;
  std::size_t near_d = std::numeric_limits<std::size_t>::max();
  for (const Section& sec : kSections)
    for (auto k : sec.keys) {
      std::size_t d = syntax::edit_distance(key, k);
      if (d < near_d) {
        near_d = d;
        near = k;
      }
    }
  if (!near.empty() && close_enough(key, near, near_d))
    return head + "; did you mean " + quote(near) + "? (a key of " + sections_with(near) + ", not of this mapping)" +
           valid;
  return head + valid;
}


std::optional<YAML::Mark> dash_before(std::string_view text, const YAML::Mark& at) {
  if (at.is_null() || at.line < 0) return std::nullopt;
  std::vector<std::string_view> lines;
  while (static_cast<int>(lines.size()) <= at.line && !text.empty()) {
    auto eol = text.find('\n');
    lines.push_back(text.substr(0, eol));
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
  }
  for (int l = std::min(at.line, static_cast<int>(lines.size()) - 1); l >= 0; --l) {
    std::string_view s = lines[static_cast<std::size_t>(l)];
    if (l == at.line) s = s.substr(0, static_cast<std::size_t>(std::max(at.column, 0)));
    // A comment starts at a '#' after a blank or at the start of the line.
    for (std::size_t i = 0; i < s.size(); ++i)
      if (s[i] == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
        s = s.substr(0, i);
        break;
      }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    if (s.empty()) continue;
    if (s.back() != '-' || (s.size() > 1 && s[s.size() - 2] != ' ' && s[s.size() - 2] != '\t')) return std::nullopt;
    YAML::Mark m = at;
    m.line = l;
    m.column = static_cast<int>(s.size()) - 1;
    return m;
  }
  return std::nullopt;
}

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

void Loader::check_encoding(std::string_view text) const {
  // yaml-cpp reads NUL as end of input and takes stray bytes as Latin-1, so a
  // binary file or a file in the wrong encoding must be stopped here, with
  // the position of the first bad byte.
  if (auto bad = syntax::first_encoding_error(text))
    throw Error(file_, bad->line, bad->column, "", bad->what + ": expected UTF-8 text (is this a binary file?)");
}

// ---------------------------------------------------------------- top level

namespace {

// Records where each event of one document starts, for the document count.
class FirstEvent : public YAML::EventHandler {
 public:
  bool started = false;
  bool null_only = true;  // the document is nothing but an empty node
  YAML::Mark mark = YAML::Mark::null_mark();
  // The document's last scalar and its tag ("!" for a quoted or block one).
  YAML::Mark last_scalar = YAML::Mark::null_mark();
  std::string last_scalar_tag;

  void OnDocumentStart(const YAML::Mark& m) override { mark = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m, true); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m, false); }
  void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t, const std::string&) override {
    note(m, false);
    last_scalar = m;
    last_scalar_tag = tag;
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

// yaml-cpp 0.7 ends a quoted scalar that is never closed at the end of the
// input instead of failing ("password: \"secret" as the last line loads as
// "secret "; "token: \"abc" takes the lines after it into the token). Only
// the last scalar of a document can run to the end, so only it is looked
// at: the quote character when it starts with a quote (at `at`, as
// yaml-cpp marks it) that nothing closes, else 0.
char quote_left_open(std::string_view text, const YAML::Mark& at) {
  if (at.is_null() || at.line < 0 || at.column < 0) return 0;
  std::size_t pos = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // yaml-cpp does not count the BOM
  for (int l = 0; l < at.line; ++l) {
    pos = text.find('\n', pos);
    if (pos == std::string_view::npos) return 0;
    ++pos;
  }
  pos += static_cast<std::size_t>(at.column);
  if (pos >= text.size()) return 0;
  const char q = text[pos];
  if (q != '"' && q != '\'') return 0;  // a block scalar, or a mark elsewhere
  for (std::size_t i = pos + 1; i < text.size(); ++i) {
    if (q == '"' && text[i] == '\\') {
      ++i;  // an escape: the next character is not the end
    } else if (text[i] == q) {
      if (q == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;  // '' is a quote inside single quotes
        continue;
      }
      return 0;
    }
  }
  return q;
}

// yaml-cpp's messages name its parser's states ("illegal map value", "end of
// map flow not found"); the common ones are said as what the file got wrong.
std::string plain_yaml_error(const std::string& msg) {
  static const std::pair<std::string_view, std::string_view> kPlain[] = {
      {YAML::ErrorMsg::MAP_VALUE,
       "a ':' where none may be (a value holding ': ' must be quoted, or the line is indented deeper than "
       "its key)"},
      {YAML::ErrorMsg::END_OF_MAP_FLOW, "a '{' is not closed by '}'"},
      {YAML::ErrorMsg::END_OF_SEQ_FLOW, "a '[' is not closed by ']'"},
      {YAML::ErrorMsg::FLOW_END, "a ']' or '}' that closes no bracket (or the other kind of bracket)"},
      {YAML::ErrorMsg::END_OF_MAP, "the indentation of this line matches no key above it"},
      {YAML::ErrorMsg::END_OF_SEQ, "the indentation of this line matches no list or key above it"},
      {YAML::ErrorMsg::BLOCK_ENTRY, "a list entry ('- ') where none may be (check the indentation)"},
      {YAML::ErrorMsg::MAP_KEY, "a '?' key where none may be"},
      {YAML::ErrorMsg::UNKNOWN_TOKEN, "a character that starts no YAML value here"},
      {YAML::ErrorMsg::EOF_IN_SCALAR, "a quoted value is not closed before the end of the file"},
  };
  for (const auto& [from, to] : kPlain)
    if (msg == from) return std::string(to);
  if (msg.starts_with(YAML::ErrorMsg::INVALID_ESCAPE))
    return "unknown escape '\\" + msg.substr(std::string_view(YAML::ErrorMsg::INVALID_ESCAPE).size()) +
           "' in a double-quoted value (write '\\\\' for a backslash, or use single quotes)";
  return msg;
}

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

std::string default_node_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

Config Loader::load(std::string_view text) {
  check_encoding(text);
  text_ = text;
  const std::string expected =
      "expected a mapping of settings with 'proxies' and/or 'vrrp' (see README.md, Configuration reference)";
  Node root;
  auto yaml_error = [&](const YAML::Exception& e) {
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    int col = e.mark.is_null() ? 0 : e.mark.column + 1;
    std::string why = "YAML syntax error: " + plain_yaml_error(e.msg);
    // yaml-cpp's depth guard says only "bad file".
    if (dynamic_cast<const YAML::DeepRecursion*>(&e))
      why = "the YAML is nested more than " + std::to_string(kMaxYamlDepth) +
            " levels deep: expected a configuration file";
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
      // A value that starts with a YAML indicator: HAProxy's "*:5433" (an
      // alias), a password "@..." or "%..." (reserved). yaml-cpp only says
      // "the referenced anchor is not defined" or "unknown token".
      std::string_view at = rest.substr(0, rest.find('\n'));
      if (col >= 1 && static_cast<std::size_t>(col) <= at.size()) {
        char c = at[static_cast<std::size_t>(col - 1)];
        if (std::string_view("*@`%|>").find(c) != std::string_view::npos)
          why += std::string(" (a value starting with '") + c + "' must be quoted: \"" + c + "...\")";
      }
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
    if (first.last_scalar_tag == "!")
      if (char q = quote_left_open(text, first.last_scalar))
        throw Error(file_, first.last_scalar.line + 1, first.last_scalar.column + 1, "",
                    std::string("YAML syntax error: the quote (") + q +
                        ") that starts this value is never closed: expected a closing " + q +
                        " (without it the value runs to the end of the file)");
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

Config Loader::top(const Node& root) {
  Map m(*this, root, "",
        {"node", "threads", "vrrp_rt_priority", "log_level", "hard_stop_after", "admin", "proxies", "vrrp"},
        "a mapping of settings");
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
  if (auto n = m.get("vrrp_rt_priority"))
    c.vrrp_rt_priority = static_cast<unsigned>(
        integer(*n, "vrrp_rt_priority", 0, 99, "a realtime priority from 1 to 99, or 0 (off)"));
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

}  // namespace detail

Config load_string(std::string_view yaml, const std::string& source_name) {
  detail::Loader l(source_name);
  return l.load(yaml);
}

Config load_file(const std::string& path) {
  // O_NONBLOCK: a FIFO nobody writes to would hold open() until a writer
  // comes, and a SIGHUP reads the file on the thread that sends the VRRP
  // adverts. Reads block again (a pipe being written, "<(...)", is read to
  // its end); a FIFO without a writer reads as empty.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(path, 0, 0, "", std::string("cannot open the file: ") + std::strerror(errno));
  if (int flags = ::fcntl(fd, F_GETFL); flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  // An editor or tool that writes the file in place (truncate, write) leaves
  // a prefix until it is done, and a prefix cut at the end of a line is a
  // valid file with a proxy, a backend or the vrrp section missing: applied,
  // it removed them. A read lease (fcntl(2) F_SETLEASE) is refused while
  // any process has the file open for writing, and is broken when one opens
  // it while we read, so the text read is one no writer had in hand. Without
  // leases (not the file's owner nor CAP_LEASE, a FIFO, NFS) the file is read
  // as it is. A writer's open waits for our read only; its break is sent as
  // SIGURG, ignored by default (SIGIO, the default, would end the daemon).
  bool leased = false;
  if (::fcntl(fd, F_SETSIG, SIGURG) == 0) {
    if (::fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
      leased = true;
    } else if (errno == EAGAIN) {
      ::close(fd);
      throw Error(path, 0, 0, "", kStillWritten);
    }
  }
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
  if (leased) {
    const bool broken = ::fcntl(fd, F_GETLEASE) != F_RDLCK;  // a writer opened it meanwhile
    (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
    if (broken) {
      ::close(fd);
      throw Error(path, 0, 0, "", kStillWritten);
    }
  }
  ::close(fd);
  return load_string(text, path);
}

}  // namespace cfg
