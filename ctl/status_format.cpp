#include <boost/json.hpp>
#include <cstdio>
#include <map>

#include "ctl/status.h"

namespace ctl {

namespace json = boost::json;

namespace {

// Display width: count UTF-8 code points, not bytes ("—" is one column).
size_t width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string pad(const std::string& s, size_t w) { return s + std::string(w > width(s) ? w - width(s) : 0, ' '); }

const json::value* field(const json::value& v, const char* key) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(key);
}

std::string str(const json::value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_bool()) return v->as_bool() ? "yes" : "no";
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_double()) {
    char b[64];
    std::snprintf(b, sizeof b, "%g", v->as_double());
    return b;
  }
  return json::serialize(*v);
}

std::string str(const json::value& obj, const char* key) { return str(field(obj, key)); }

std::string latency(const json::value* v) {
  if (!v || !(v->is_double() || v->is_int64() || v->is_uint64())) return "-";
  double ms = v->is_double() ? v->as_double() : v->is_int64() ? double(v->as_int64()) : double(v->as_uint64());
  char b[64];
  if (ms < 10)
    std::snprintf(b, sizeof b, "%.1f ms", ms);
  else
    std::snprintf(b, sizeof b, "%.0f ms", ms);
  return b;
}

std::string check_result(const json::value& c) {
  std::string outcome = str(c, "last_outcome");
  if (outcome == "none") return "no check yet";
  std::string layer = str(c, "layer");
  static const std::map<std::string, std::string> words = {
      {"ok", "OK"},           {"l4_refused", "refused"},    {"l4_timeout", "timeout"},
      {"l4_error", "error"},  {"tls_error", "TLS error"},   {"l7_status", "wrong status"},
      {"l7_malformed", "invalid response"}, {"local_error", "not run (local resources)"},
      {"l7_not_primary", "not a writable primary"}, {"l7_not_running", "PostgreSQL not running"}};
  auto w = words.find(outcome);
  std::string s = (layer.empty() || layer == "-" ? "" : layer + " ") + (w != words.end() ? w->second : outcome);
  const json::value* hs = field(c, "http_status");
  if (hs && hs->is_number() && hs->to_number<int64_t>() != 0) s += " " + str(hs);
  std::string detail = str(c, "detail");
  // The checker's detail often repeats the status ("HTTP 503"): say it once.
  if (detail != "-" && !detail.empty() && outcome != "ok" && detail != "HTTP " + str(hs)) s += " (" + detail + ")";
  return s;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    char esc[8];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      // A C1 control in UTF-8 (U+009B is CSI on some terminals, like ESC [).
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned char>(text[++i]));
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string render_table(const std::string& raw_title, const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& raw_rows) {
  const std::string title = printable(raw_title);
  std::vector<std::vector<std::string>> rows;
  rows.reserve(raw_rows.size());
  for (const auto& r : raw_rows) {
    rows.emplace_back();
    for (const auto& cell : r) rows.back().push_back(printable(cell));
  }
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); ++i) w[i] = width(header[i]);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  std::string sep = "+";
  for (size_t x : w) sep += std::string(x + 2, '-') + "+";
  std::string top = sep;
  if (!title.empty()) {
    // "+ Title: x ----+-----+" like patronictl's "+ Cluster: ... ---".
    std::string t = "+ " + title + " ";
    if (width(t) < sep.size()) {
      top = t + sep.substr(width(t));
    } else {
      top = t + "+";
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (size_t i = 0; i < w.size(); ++i) s += " " + pad(i < cells.size() ? cells[i] : "", w[i]) + " |";
    return s + "\n";
  };
  std::string out = top + "\n" + line(header) + sep + "\n";
  for (const auto& r : rows) out += line(r);
  out += sep + "\n";
  return out;
}

std::string role_from_check(const std::string& state, const std::string& path) {
  if (state == "DOWN") return "—";
  if (state != "UP") return "?";
  std::string p = path;
  if (auto q = p.find('?'); q != std::string::npos) p = p.substr(0, q);
  if (p == "/primary" || p == "/master" || p == "/leader" || p == "/read-write") return "primary";
  if (p == "/standby-leader" || p == "/standby_leader") return "standby leader";
  if (p == "/replica" || p.rfind("/asynchronous", 0) == 0 || p.rfind("/async", 0) == 0) return "replica";
  if (p == "/sync" || p == "/synchronous") return "sync replica";
  if (p == "/read-only") return "readable";
  if (p == "/health" || p == "/liveness" || p == "/readiness") return "running";
  return "up (" + p + ")";
}

std::string format_status(const json::value& st, const StatusOptions& opt) {
  std::string out;
  out += printable("Node: " + str(st, "node") + "   vipproxy " + str(st, "version")) + "\n";
  if (const json::value* s = field(st, "stopping"); s && s->is_bool() && s->as_bool())
    out += "Stopping: established sessions drain (hard_stop_after); no new connection is accepted\n";
  // Worker threads whose event loop has stopped turning (daemon/worker_watch.h):
  // their share of the clients hangs, whatever the tables below say.
  if (const json::value* w = field(st, "workers"); w && w->is_object()) {
    const json::value* stuck = field(*w, "stuck");
    if (stuck && stuck->is_array() && !stuck->as_array().empty()) {
      std::string which;
      for (const auto& i : stuck->as_array()) which += (which.empty() ? "" : ", ") + json::serialize(i);
      out += printable("Stuck workers: " + which + " (of " + str(*w, "threads") +
                       "): event loop not turning, their clients hang; restart the daemon") +
             "\n";
    }
  }
  const json::value* proxies = field(st, "proxies");
  std::vector<std::vector<std::string>> prow, brow;
  std::string overlaps;  // a line per proxy with several backends passing at once
  if (proxies && proxies->is_array()) {
    for (const auto& p : proxies->as_array()) {
      std::string pname = str(p, "name");
      std::string current = str(p, "current_backend");
      prow.push_back({pname, str(p, "listen"), str(p, "balance"), current == "-" ? "none (no eligible backend)" : current,
                      str(p, "sessions_current"), str(p, "maxconn")});
      auto path_it = opt.check_paths.find(pname);
      std::string path = path_it != opt.check_paths.end() ? path_it->second : "/primary";
      const json::value* bs = field(p, "backends");
      if (!bs || !bs->is_array()) continue;
      // Daemons since the timeline rule: each overlapping backend's
      // timeline (GET /patroni), which new sessions follow (README, `balance`).
      std::string timelines;
      for (const auto& b : bs->as_array()) {
        const json::value* o = field(b, "overlap");
        if (!o || !o->is_object()) continue;
        std::string one = str(b, "name");
        const std::string tl = str(*o, "timeline"), err = str(*o, "error");
        const json::value* reading = field(*o, "reading");
        const bool busy = reading && reading->is_bool() && reading->as_bool();
        if (tl != "-") one += " on timeline " + tl;
        else if (err != "-" && !err.empty()) one += " not read (" + err + ")" + (busy ? ", reading again" : "");
        else one += busy ? " being read" : " not read";
        timelines += (timelines.empty() ? "" : ", ") + one;
      }
      if (!timelines.empty())
        overlaps += printable("Overlap on " + pname + ": " + timelines + "; new sessions go to " +
                              (current == "-" ? "none" : current)) + "\n";
      for (const auto& b : bs->as_array()) {
        const json::value* c = field(b, "check");
        std::string state = c ? str(*c, "state") : "-";
        std::string name = str(b, "name");
        if (name == current) name += " *";
        brow.push_back({pname, name, str(b, "address"), c ? role_from_check(state, path) : "?", state,
                        c ? check_result(*c) : "-", c ? latency(field(*c, "latency_ms")) : "-", str(b, "sessions"),
                        str(b, "connect_errors")});
      }
    }
  }
  out += render_table("Proxies", {"Proxy", "Listen", "Balance", "Current backend", "Sessions", "Max"}, prow);
  out += render_table("Backends (* = current)",
                      {"Proxy", "Backend", "Address", "Role", "State", "Last check", "Latency", "Sessions", "Conn errors"},
                      brow);
  out += overlaps;
  const json::value* vrrp = field(st, "vrrp");
  if (vrrp && vrrp->is_array() && !vrrp->as_array().empty()) {
    std::vector<std::vector<std::string>> vrow;
    for (const auto& v : vrrp->as_array()) {
      std::string prio = str(v, "priority");
      std::string conf = str(v, "configured_priority");
      if (conf != "-" && conf != prio) prio += " (configured " + conf + ")";
      std::string state = str(v, "state");
      std::string fault = str(v, "fault_reason");
      if (fault != "-") state += ": " + fault;
      std::string vips;
      if (const json::value* a = field(v, "vips"); a && a->is_array()) {
        // Desired vs. actual (daemons since issue 10): say when the kernel
        // has not done what the state wants, and why.
        for (const auto& x : a->as_array()) {
          std::string one = str(x, "address");
          const std::string desired = str(x, "desired"), actual = str(x, "actual"), err = str(x, "last_error");
          if (desired == "present" && actual != "present")
            one += " (NOT INSTALLED" + (err != "-" ? ": " + err : std::string()) + ")";
          else if (desired == "absent" && actual == "present")
            one += " (still here, removal failing" + (err != "-" ? ": " + err : std::string()) + ")";
          vips += (vips.empty() ? "" : ",") + one;
        }
      } else if (const json::value* a = field(v, "virtual_ipaddresses"); a && a->is_array()) {
        for (const auto& x : a->as_array()) vips += (vips.empty() ? "" : ",") + str(&x);
      }
      std::string master = str(v, "master_address");
      std::string mprio = str(v, "master_priority");
      if (master != "-" && mprio != "-" && mprio != "0") master += " (prio " + mprio + ")";
      vrow.push_back({str(v, "name"), str(v, "interface"), str(v, "virtual_router_id"), "v" + str(v, "version"), state,
                      prio, master, vips.empty() ? "-" : vips});
    }
    out += render_table("VRRP", {"Instance", "Interface", "VRID", "Ver", "State", "Priority", "Master", "VIPs"}, vrow);
    // A MASTER whose adverts the kernel refuses: nobody hears it, a peer
    // becomes MASTER too (README "On a shared LAN"). As FAULT its reason says it.
    for (const auto& v : vrrp->as_array()) {
      const std::string err = str(v, "advert_send_error");
      if (err != "-" && str(v, "state") == "MASTER")
        out += printable("Adverts not sent on VRID " + str(v, "virtual_router_id") + " (" + str(v, "name") + "): " +
                         err + ": no peer hears this MASTER (an OUTPUT firewall rule for protocol 112?)") + "\n";
    }
    // Routers on our VRID whose adverts are ignored (another cluster, or a
    // peer configured differently): worth a line each.
    for (const auto& v : vrrp->as_array()) {
      const json::value* fr = field(v, "foreign_routers");
      if (!fr || !fr->is_array()) continue;
      for (const auto& r : fr->as_array()) {
        std::string addrs;
        if (const json::value* a = field(r, "addresses"); a && a->is_array())
          for (const auto& x : a->as_array()) addrs += (addrs.empty() ? "" : ",") + str(&x);
        out += printable("Ignored on VRID " + str(v, "virtual_router_id") + " (" + str(v, "name") + "): " + str(r, "source") +
               " priority " + str(r, "priority") + ", lists " + (addrs.empty() ? "-" : addrs) + " (" +
               str(r, "reason") + ", " + str(r, "adverts") + " adverts)") + "\n";
      }
    }
  } else {
    out += "VRRP: no instances configured\n";
  }
  return out;
}

}  // namespace ctl
