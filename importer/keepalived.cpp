#include "importer/keepalived.h"

#include <algorithm>

#include "cfg/syntax.h"

namespace importer::keepalived {

namespace {

std::string join(const std::vector<std::string>& w, std::size_t from = 0) {
  std::string s;
  for (std::size_t i = from; i < w.size(); ++i) {
    if (!s.empty()) s += ' ';
    s += w[i];
  }
  return s;
}

// One line of keepalived.conf as tokens: '{' and '}' are tokens of their own
// even when glued to a word; '#' and '!' start a comment outside quotes;
// "double quotes" group words (keepalived's script and notify lines).
std::vector<std::string> tokens(std::string_view line, int lineno, const std::string& file) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  auto flush = [&] {
    if (in_word) out.push_back(cur);
    cur.clear();
    in_word = false;
  };
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') {
      auto end = line.find('"', i + 1);
      if (end == std::string_view::npos) throw ParseError(file, lineno, "unterminated quoted string");
      cur.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '#' || c == '!') {
      break;
    } else if (c == '{' || c == '}') {
      flush();
      out.emplace_back(1, c);
    } else if (c == ' ' || c == '\t' || c == '\r') {
      flush();
    } else {
      cur += c;
      in_word = true;
    }
  }
  flush();
  return out;
}

// keepalived's re-reading of a `script` or notify line (vrrp_parser.c
// vrrp_vscript_script_handler: alloc_strvec_quoted_escaped; notify.c
// notify_script_init: alloc_strvec_quoted; both then keep only slot 1 as the
// command, set_script_params_array): words split at blanks, '...' and "..."
// group, and a backslash takes the next character as it is (`escapes`,
// script lines: `\"` is a quote, `\n` a newline) or stays with it (notify
// lines). The command is then run by /bin/sh -c, which splits it again as
// keepalived's second pass does. Stops at an unquoted '#' or '!' (a
// comment); '{' and '}' end a word (the braces of a one-line block).
std::vector<std::string> quoted_words(std::string_view line, bool escapes) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  auto escaped = [&](std::size_t& i) {
    char e = line[++i];
    if (!escapes) {
      cur += '\\';
      cur += e;
    } else {
      cur += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
    }
  };
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && i + 1 < line.size()) escaped(i);
      else cur += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      escaped(i);
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else if (c == '#' || c == '!' || c == '{' || c == '}') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
      if (c == '#' || c == '!') break;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

// The words after keyword `kw` on statement `n`'s line, split as keepalived
// re-reads script and notify lines (quoted_words); `n.words` is the
// importer's own split, which groups "..." only.
std::vector<std::string> words_after(const Node& n, const std::string& kw, bool escapes) {
  std::vector<std::string> w = quoted_words(n.raw, escapes);
  auto at = std::find(w.begin(), w.end(), kw);
  if (at == w.end()) return {n.words.begin() + 1, n.words.end()};
  return {at + 1, w.end()};
}

class Interpreter {
 public:
  explicit Interpreter(std::string file) : file_(std::move(file)) {}
  Config run(const std::vector<Node>& tree);

 private:
  [[noreturn]] void fail(int line, const std::string& why) const { throw ParseError(file_, line, why); }
  const std::string& value(const Node& n, std::size_t i = 1) const {
    if (n.words.size() <= i) fail(n.line, "'" + n.words[0] + "' needs a value");
    return n.words[i];
  }
  unsigned number(int line, const std::string& kw, const std::string& s) const {
    auto v = cfg::syntax::parse_integer(s, false);
    if (!v || *v > 1'000'000) fail(line, "'" + kw + "' expects a number, got '" + s + "'");
    return static_cast<unsigned>(*v);
  }
  int signed_number(int line, const std::string& kw, const std::string& s) const {
    auto v = cfg::syntax::parse_integer(s, true);
    if (!v || *v > 1'000'000 || *v < -1'000'000) fail(line, "'" + kw + "' expects a number, got '" + s + "'");
    return static_cast<int>(*v);
  }
  // keepalived times are seconds, decimals allowed ("1", "0.1").
  Duration seconds(int line, const std::string& kw, const std::string& s) const {
    auto v = cfg::syntax::parse_decimal_seconds(s);
    if (!v) fail(line, "'" + kw + "' expects seconds like 1 or 0.5, got '" + s + "'");
    return Duration{*v};
  }
  template <class T>
  std::optional<At<T>> at(T v, int line) const {
    return At<T>{std::move(v), line};
  }

  void global_defs(Config& c, const Node& n);
  Script script(const Node& n);
  Instance instance(const Node& n);
  void virtual_ips(std::vector<VirtualIp>& ips, const Node& block);
  std::vector<TrackItem> track_items(const Node& block, std::vector<Unhandled>& unhandled);

  std::string file_;
};

void Interpreter::global_defs(Config& c, const Node& n) {
  for (const Node& s : n.children) {
    const std::string& kw = s.words.empty() ? std::string() : s.words[0];
    if (kw == "vrrp_version") c.vrrp_version = at(number(s.line, kw, value(s)), s.line);
    else if (kw == "script_user") c.script_user = at(value(s), s.line);
    else if (kw == "vrrp_garp_master_delay") c.garp_master_delay = at(seconds(s.line, kw, value(s)), s.line);
    else if (kw == "vrrp_garp_master_refresh") c.garp_master_refresh = at(seconds(s.line, kw, value(s)), s.line);
    else if (kw == "vrrp_garp_interval") c.garp_interval = at(seconds(s.line, kw, value(s)), s.line);
    else if (kw == "vrrp_garp_master_repeat") c.garp_master_repeat = at(number(s.line, kw, value(s)), s.line);
    else if (kw == "vrrp_rt_priority") c.vrrp_rt_priority = at(number(s.line, kw, value(s)), s.line);
    else c.unhandled.push_back({s.line, s.text(), ""});
    if (kw == "script_user" && s.words.size() > 2)
      c.unhandled.push_back({s.line, s.text(), "the group is not translated (scripts run with the user's group)"});
  }
}

Script Interpreter::script(const Node& n) {
  Script sc;
  sc.line = n.line;
  sc.name = n.words[1];
  for (const Node& s : n.children) {
    const std::string& kw = s.words[0];
    if (kw == "script") {
      // keepalived runs the first word only (a command with arguments must
      // be quoted: script "killall -0 haproxy"); the rest of an unquoted
      // line is dropped without a word in its log.
      std::vector<std::string> w = words_after(s, kw, true);
      if (w.empty()) fail(s.line, "'script' needs a value");
      sc.script = at(w[0], s.line);
      sc.script_ignored = join(w, 1);
    }
    else if (kw == "interval") sc.interval = at(seconds(s.line, kw, value(s)), s.line);
    else if (kw == "timeout") sc.timeout = at(seconds(s.line, kw, value(s)), s.line);
    else if (kw == "rise") sc.rise = at(number(s.line, kw, value(s)), s.line);
    else if (kw == "fall") sc.fall = at(number(s.line, kw, value(s)), s.line);
    else if (kw == "weight") {
      sc.weight = at(signed_number(s.line, kw, value(s)), s.line);
      if (s.words.size() > 2) sc.unhandled.push_back({s.line, s.text(), "'reverse' weights have no equivalent"});
    } else if (kw == "user") {
      sc.user = at(value(s), s.line);
      if (s.words.size() > 2) sc.unhandled.push_back({s.line, s.text(), "the group is not translated"});
    } else {
      sc.unhandled.push_back({s.line, s.text(), ""});
    }
  }
  return sc;
}

std::vector<TrackItem> Interpreter::track_items(const Node& block, std::vector<Unhandled>& unhandled) {
  // NAME [weight N], one per line, or several on one line.
  std::vector<TrackItem> items;
  for (const Node& s : block.children) {
    for (std::size_t i = 0; i < s.words.size(); ++i) {
      if (s.words[i] == "weight" && !items.empty() && i + 1 < s.words.size()) {
        items.back().weight = signed_number(s.line, "weight", s.words[++i]);
        if (i + 1 < s.words.size() && s.words[i + 1] == "reverse") {
          unhandled.push_back({s.line, s.text(), "'reverse' weights have no equivalent"});
          ++i;
        }
      } else {
        items.push_back({s.line, s.words[i], std::nullopt});
      }
    }
  }
  return items;
}

void Interpreter::virtual_ips(std::vector<VirtualIp>& ips, const Node& block) {
  // ADDR[/PFX] [dev X] [label Y] [brd X] [scope X] [no_track] ... per line.
  static const std::vector<std::string> with_arg = {"brd", "broadcast", "scope", "preferred_lft", "track_group", "metric"};
  for (const Node& s : block.children) {
    for (std::size_t i = 0; i < s.words.size(); ++i) {
      const std::string& w = s.words[i];
      if (w == "dev" && !ips.empty() && i + 1 < s.words.size()) {
        ips.back().device = s.words[++i];
      } else if (w == "label" && !ips.empty() && i + 1 < s.words.size()) {
        ips.back().label = s.words[++i];
      } else if (!ips.empty() && ips.back().line == s.line &&
                 std::find(with_arg.begin(), with_arg.end(), w) != with_arg.end() && i + 1 < s.words.size()) {
        ips.back().unhandled.push_back(w + " " + s.words[i + 1]);
        ++i;
      } else if (!ips.empty() && ips.back().line == s.line &&
                 w.find_first_of(".:") == std::string::npos) {
        ips.back().unhandled.push_back(w);  // no_track, home, nodad...
      } else {
        VirtualIp ip;
        ip.line = s.line;
        auto slash = w.find('/');
        ip.address = w.substr(0, slash);
        if (slash != std::string::npos) ip.prefix = number(s.line, "virtual_ipaddress", w.substr(slash + 1));
        ips.push_back(std::move(ip));
      }
    }
  }
}

Instance Interpreter::instance(const Node& n) {
  Instance v;
  v.line = n.line;
  v.name = n.words[1];
  for (const Node& s : n.children) {
    const std::string& kw = s.words.empty() ? std::string() : s.words[0];
    auto text = [&](std::optional<At<std::string>>& f) { f = at(join(s.words, 1), s.line); };
    auto secs = [&](std::optional<At<Duration>>& f) { f = at(seconds(s.line, kw, value(s)), s.line); };
    auto num = [&](std::optional<At<unsigned>>& f) { f = at(number(s.line, kw, value(s)), s.line); };
    // notify_* <STRING>|<QUOTED-STRING> [username [groupname]]
    // (keepalived.conf(5); notify_script_init() in keepalived's scripts
    // code): the first word is the whole command, a quoted one included; the
    // words after it name the user and group to run it as, not arguments.
    // Split as keepalived does ('...' groups like "..."; notify.c
    // notify_script_init, alloc_strvec_quoted).
    auto notify = [&](std::optional<At<std::string>>& f) {
      std::vector<std::string> w = words_after(s, kw, false);
      if (w.empty()) fail(s.line, "'" + kw + "' needs a value");
      f = at(w[0], s.line);
      if (w.size() > 1)
        v.unhandled.push_back({s.line, kw + " ... " + join(w, 1),
                               "keepalived runs the command as this user [group], it does not pass it as an "
                               "argument: vipproxy runs notify commands as the daemon's user (quote the command "
                               "with its arguments, as keepalived needs too)"});
    };
    if (s.block) {
      if (kw == "authentication") {
        for (const Node& a : s.children)
          for (std::size_t i = 0; i + 1 < a.words.size(); i += 2) {
            if (a.words[i] == "auth_type") v.auth_type = at(a.words[i + 1], a.line);
            else if (a.words[i] == "auth_pass") v.auth_pass = at(a.words[i + 1], a.line);
            else v.unhandled.push_back({a.line, a.words[i] + " " + a.words[i + 1], ""});
          }
      } else if (kw == "virtual_ipaddress") {
        virtual_ips(v.virtual_ipaddresses, s);
      } else if (kw == "virtual_ipaddress_excluded") {
        virtual_ips(v.virtual_ipaddresses_excluded, s);
        v.excluded_line = s.line;
      } else if (kw == "unicast_peer") {
        for (const Node& p : s.children)
          for (std::size_t i = 0; i < p.words.size(); ++i) {
            if ((p.words[i] == "min_ttl" || p.words[i] == "max_ttl") && i + 1 < p.words.size()) {
              v.unhandled.push_back({p.line, p.words[i] + " " + p.words[i + 1], "peer TTL limits have no equivalent"});
              ++i;
            } else {
              v.unicast_peers.push_back({p.words[i], p.line});
            }
          }
      } else if (kw == "track_script") {
        auto items = track_items(s, v.unhandled);
        v.track_scripts.insert(v.track_scripts.end(), items.begin(), items.end());
      } else if (kw == "track_interface") {
        auto items = track_items(s, v.unhandled);
        v.track_interfaces.insert(v.track_interfaces.end(), items.begin(), items.end());
      } else {
        v.unhandled.push_back({s.line, s.text(), ""});
      }
      continue;
    }
    if (kw == "state") text(v.state);
    else if (kw == "interface") text(v.interface);
    else if (kw == "virtual_router_id") num(v.virtual_router_id);
    else if (kw == "priority") num(v.priority);
    else if (kw == "version") num(v.version);
    else if (kw == "advert_int") {
      secs(v.advert_int);
      v.advert_int_text = at(value(s), s.line);
    } else if (kw == "nopreempt") v.nopreempt = at(true, s.line);
    else if (kw == "preempt_delay") secs(v.preempt_delay);
    else if (kw == "unicast_src_ip" || kw == "mcast_src_ip") {
      // keepalived reads both with one handler (vrrp_srcip_handler): the
      // advert source, multicast or unicast; the last one wins.
      text(v.unicast_src_ip);
      v.src_ip_from_mcast = kw == "mcast_src_ip";
    }
    else if (kw == "notify_master") notify(v.notify_master);
    else if (kw == "notify_backup") notify(v.notify_backup);
    else if (kw == "notify_fault") notify(v.notify_fault);
    else if (kw == "notify_stop") notify(v.notify_stop);
    else if (kw == "notify") notify(v.notify);
    else if (kw == "garp_master_delay") secs(v.garp_master_delay);
    else if (kw == "garp_master_refresh") secs(v.garp_master_refresh);
    else if (kw == "garp_interval") secs(v.garp_interval);
    else if (kw == "garp_master_repeat") num(v.garp_master_repeat);
    else v.unhandled.push_back({s.line, s.text(), ""});
  }
  return v;
}

Config Interpreter::run(const std::vector<Node>& tree) {
  Config c;
  for (const Node& n : tree) {
    const std::string& kw = n.words.empty() ? std::string() : n.words[0];
    if (kw == "global_defs" && n.block) {
      global_defs(c, n);
    } else if ((kw == "vrrp_script" || kw == "vrrp_instance") && n.block) {
      if (n.words.size() < 2) fail(n.line, "'" + kw + "' needs a name");
      if (kw == "vrrp_script") c.scripts.push_back(script(n));
      else c.instances.push_back(instance(n));
    } else if (kw == "include") {
      c.unhandled.push_back({n.line, n.text(),
                             "included files are not read; run the importer on them too and merge the results"});
    } else {
      c.unhandled.push_back({n.line, n.text(), ""});
    }
  }
  return c;
}

}  // namespace

std::string Node::text() const {
  std::string s = join(words);
  if (block) s += children.empty() ? " { }" : " { ... }";
  return s;
}

std::vector<Node> parse_tree(std::string_view text, const std::string& file) {
  std::vector<Node> root;
  std::vector<std::vector<Node>*> open{&root};
  std::vector<const Node*> opened;  // the block statements still open, for the error message
  int line = 0;
  std::string_view raw;
  for (Lines lines(text, file); lines.next(raw, line);) {
    std::vector<std::string> words;
    auto flush = [&] {
      if (!words.empty()) open.back()->push_back(Node{line, std::move(words), false, {}, std::string(raw)});
      words.clear();
    };
    for (std::string& t : tokens(raw, line, file)) {
      if (t == "{") {
        if (words.empty()) {
          // "vrrp_instance VI_1" on one line and "{" on the next.
          auto& siblings = *open.back();
          if (siblings.empty() || siblings.back().block)
            throw ParseError(file, line, "'{' without a keyword before it");
          siblings.back().block = true;
        } else {
          open.back()->push_back(Node{line, std::move(words), true, {}, std::string(raw)});
          words.clear();
        }
        Node& b = open.back()->back();
        opened.push_back(&b);
        open.push_back(&b.children);
      } else if (t == "}") {
        flush();
        if (open.size() == 1) throw ParseError(file, line, "'}' without a matching '{'");
        open.pop_back();
        opened.pop_back();
      } else {
        words.push_back(std::move(t));
      }
    }
    flush();
  }
  if (!opened.empty()) {
    const Node& b = *opened.back();
    throw ParseError(file, b.line, "'{' of '" + join(b.words) + "' is never closed (missing '}')");
  }
  return root;
}

const Script* Config::find_script(std::string_view name) const {
  for (const auto& s : scripts)
    if (s.name == name) return &s;
  return nullptr;
}

Config parse(std::string_view text, const std::string& file) { return Interpreter(file).run(parse_tree(text, file)); }

}  // namespace importer::keepalived
