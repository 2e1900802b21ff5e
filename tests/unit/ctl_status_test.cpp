// `vipproxy status` formatting: a /status document captured from a running
// daemon (catalog01 as VRRP master, catalog02's check failing) in, text out.
#define BOOST_TEST_MODULE ctl_status
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "ctl/http.h"
#include "ctl/status.h"

namespace {

// Captured from GET /status (daemon/admin.cpp), trimmed of counters.
const char* kStatus = R"({"node":"catalog01","version":"0.1.0","pipes_in_use":4,
 "proxies":[{"name":"postgres","listen":"0.0.0.0:5433","balance":"first","current_backend":"catalog01",
   "sessions_current":3,"maxconn":10000,"counters":{"sessions_total":17},
   "backends":[
    {"name":"catalog01","address":"192.168.1.151:5432","eligible":true,"sessions":3,"sessions_total":17,
     "connect_errors":0,"check":{"state":"UP","last_outcome":"ok","layer":"L7","http_status":200,"detail":"",
     "latency_ms":1.234,"checks":120,"failures":0,"malformed":0,"transitions":1}},
    {"name":"catalog02","address":"192.168.1.152:5432","eligible":false,"sessions":0,"sessions_total":0,
     "connect_errors":0,"check":{"state":"DOWN","last_outcome":"l7_status","layer":"L7","http_status":503,
     "detail":"HTTP 503","latency_ms":2.5,"checks":120,"failures":120,"malformed":0,"transitions":0}}]}],
 "vrrp":[{"name":"VI_1","interface":"enp0s3","state":"MASTER","virtual_router_id":51,"version":2,
   "priority":100,"configured_priority":100,"source_address":"192.168.1.151",
   "master_address":"192.168.1.151","master_priority":100,"link_up":true,"fault_reason":null,
   "virtual_ipaddresses":["192.168.1.160/32"],"last_peer":"192.168.1.152","peer_checksum":null,
   "drops":{},"track_scripts":[]}]})";

std::string lines_with(const std::string& text, const std::string& needle) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.find(needle) != std::string::npos) out += line + "\n";
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(table_shows_proxies_backends_and_vrrp) {
  auto v = boost::json::parse(kStatus);
  std::string t = ctl::format_status(v);
  BOOST_TEST_MESSAGE("\n" << t);
  BOOST_TEST(t.find("Node: catalog01") != std::string::npos);
  // Proxy row: listen address, current backend, sessions.
  std::string prow = lines_with(t, "| postgres | 0.0.0.0:5433");
  BOOST_TEST(prow.find("catalog01") != std::string::npos);
  BOOST_TEST(prow.find("| 3 ") != std::string::npos);
  // Backend rows: role from the check, result with layer, latency.
  std::string b1 = lines_with(t, "catalog01 *");
  BOOST_TEST(b1.find("192.168.1.151:5432") != std::string::npos);
  BOOST_TEST(b1.find("primary") != std::string::npos);
  BOOST_TEST(b1.find("L7 OK 200") != std::string::npos);
  BOOST_TEST(b1.find("1.2 ms") != std::string::npos);
  std::string b2 = lines_with(t, "192.168.1.152:5432");
  BOOST_TEST(b2.find("—") != std::string::npos);
  BOOST_TEST(b2.find("DOWN") != std::string::npos);
  BOOST_TEST(b2.find("L7 wrong status 503") != std::string::npos);
  BOOST_TEST(b2.find("(HTTP 503)") == std::string::npos);  // said once
  BOOST_TEST(b2.find("2.5 ms") != std::string::npos);
  // VRRP: state, effective priority, master address.
  std::string vr = lines_with(t, "VI_1");
  BOOST_TEST(vr.find("MASTER") != std::string::npos);
  BOOST_TEST(vr.find("| 100 ") != std::string::npos);
  BOOST_TEST(vr.find("192.168.1.151 (prio 100)") != std::string::npos);
  BOOST_TEST(vr.find("192.168.1.160/32") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(table_rows_line_up) {
  std::string t = ctl::format_status(boost::json::parse(kStatus));
  // Every line of one table has the same display width (UTF-8 aware).
  auto width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  std::string block = lines_with(t, "|");
  size_t w0 = 0;
  std::string backends = t.substr(t.find("+ Backends"), t.find("+ VRRP") - t.find("+ Backends"));
  size_t pos = 0;
  while ((pos = backends.find('\n')) != std::string::npos) {
    std::string line = backends.substr(0, pos);
    backends = backends.substr(pos + 1);
    if (w0 == 0) w0 = width(line);
    BOOST_TEST(width(line) == w0, "line '" << line << "'");
  }
  BOOST_TEST(!block.empty());
}

BOOST_AUTO_TEST_CASE(degraded_priority_fault_and_no_backend) {
  auto v = boost::json::parse(kStatus);
  auto& p = v.at("proxies").as_array()[0].as_object();
  p["current_backend"] = nullptr;
  auto& inst = v.at("vrrp").as_array()[0].as_object();
  inst["state"] = "FAULT";
  inst["priority"] = 80;
  inst["fault_reason"] = "link enp0s3 down";
  inst["master_address"] = nullptr;
  std::string t = ctl::format_status(v);
  BOOST_TEST(t.find("none (no eligible backend)") != std::string::npos);
  BOOST_TEST(t.find("FAULT: link enp0s3 down") != std::string::npos);
  BOOST_TEST(t.find("80 (configured 100)") != std::string::npos);
}

// A MASTER whose adverts the kernel refuses (/status advert_send_error).
BOOST_AUTO_TEST_CASE(master_with_refused_adverts_is_shown) {
  auto v = boost::json::parse(kStatus);
  auto& inst = v.at("vrrp").as_array()[0].as_object();
  std::string t = ctl::format_status(v);
  BOOST_TEST(t.find("Adverts not sent") == std::string::npos, t);
  inst["state"] = "MASTER";
  inst["advert_send_error"] = "Operation not permitted";
  t = ctl::format_status(v);
  BOOST_TEST(t.find("Adverts not sent on VRID 51 (VI_1): Operation not permitted: no peer hears this MASTER") !=
                 std::string::npos,
             t);
}

BOOST_AUTO_TEST_CASE(vips_out_of_sync_and_foreign_routers_are_shown) {
  auto v = boost::json::parse(kStatus);
  auto& inst = v.at("vrrp").as_array()[0].as_object();
  inst["vips"] = boost::json::parse(R"([
    {"address":"192.168.1.160/32","device":"enp0s3","desired":"present","actual":"unknown","failed_attempts":2,
     "last_error":"No such device"},
    {"address":"192.168.1.161/32","device":"enp0s3","desired":"present","actual":"present","failed_attempts":0,
     "last_error":null}])");
  inst["foreign_routers"] = boost::json::parse(R"([{"source":"192.168.1.5","reason":"address_mismatch",
    "version":2,"priority":200,"advert_int_ms":1000,"addresses":["192.168.1.170"],"adverts":12,
    "last_seen_seconds_ago":0.5}])");
  std::string t = ctl::format_status(v);
  BOOST_TEST(t.find("192.168.1.160/32 (NOT INSTALLED: No such device),192.168.1.161/32 |") != std::string::npos, t);
  BOOST_TEST(t.find("Ignored on VRID 51 (VI_1): 192.168.1.5 priority 200, lists 192.168.1.170 (address_mismatch, "
                    "12 adverts)") != std::string::npos,
             t);
  inst["state"] = "BACKUP";
  inst["vips"] = boost::json::parse(R"([{"address":"192.168.1.160/32","desired":"absent","actual":"present",
    "failed_attempts":5,"last_error":"Operation not permitted"}])");
  t = ctl::format_status(v);
  BOOST_TEST(t.find("192.168.1.160/32 (still here, removal failing: Operation not permitted)") != std::string::npos, t);
}

BOOST_AUTO_TEST_CASE(no_vrrp_and_missing_fields) {
  std::string t = ctl::format_status(boost::json::parse(R"({"node":"x","proxies":[{"name":"p","backends":[{"name":"b"}]}]})"));
  BOOST_TEST(t.find("VRRP: no instances configured") != std::string::npos);
  BOOST_TEST(lines_with(t, "| p ").find("| b ") != std::string::npos);
}

// A check not run (the daemon out of descriptors) reached no layer: /status
// says "layer": "" and the table no "L7" before it.
BOOST_AUTO_TEST_CASE(a_check_not_run_has_no_layer) {
  std::string t = ctl::format_status(boost::json::parse(R"({"node":"x","proxies":[{"name":"p","backends":[
    {"name":"b","eligible":true,"check":{"state":"UP","last_outcome":"local_error","layer":"","http_status":0,
     "detail":"cannot open a socket: Too many open files"}}]}]})"));
  const std::string row = lines_with(t, "| b ");
  BOOST_TEST(row.find("not run (local resources)") != std::string::npos, row);
  BOOST_TEST(row.find("L7") == std::string::npos, row);
  BOOST_TEST(row.find("| not run") != std::string::npos, row);
}

BOOST_AUTO_TEST_CASE(role_follows_check_path) {
  BOOST_TEST(ctl::role_from_check("UP", "/primary") == "primary");
  BOOST_TEST(ctl::role_from_check("UP", "/master") == "primary");
  BOOST_TEST(ctl::role_from_check("UP", "/replica") == "replica");
  BOOST_TEST(ctl::role_from_check("UP", "/replica?lag=10MB") == "replica");
  BOOST_TEST(ctl::role_from_check("DOWN", "/primary") == "—");
  BOOST_TEST(ctl::role_from_check("unknown", "/primary") == "?");
  ctl::StatusOptions opt;
  opt.check_paths["postgres"] = "/replica";
  std::string t = ctl::format_status(boost::json::parse(kStatus), opt);
  BOOST_TEST(lines_with(t, "catalog01 *").find("replica") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(host_port_parsing) {
  BOOST_TEST(ctl::split_host_port("127.0.0.1:8405", 1).first == "127.0.0.1");
  BOOST_TEST(ctl::split_host_port("127.0.0.1:8405", 1).second == 8405);
  BOOST_TEST(ctl::split_host_port("[::1]:9", 1).first == "::1");
  BOOST_TEST(ctl::split_host_port("db1", 2379).second == 2379);
  BOOST_CHECK_THROW(ctl::split_host_port("db1:x", 1), std::invalid_argument);
  BOOST_CHECK_THROW(ctl::split_host_port(":80", 1), std::invalid_argument);
}

// RFC 9110 §7.2: the port goes into Host, and an IPv6 literal is bracketed
// (the tools sent "Host: ::1", which a strict server or a proxy on the way
// reads as host ":" port ":1").
BOOST_AUTO_TEST_CASE(host_header_brackets_ipv6_and_names_the_port) {
  BOOST_TEST(ctl::host_header("127.0.0.1", 8405) == "127.0.0.1:8405");
  BOOST_TEST(ctl::host_header("::1", 8405) == "[::1]:8405");
  BOOST_TEST(ctl::host_header("fd00::1%eth0", 8008) == "[fd00::1%eth0]:8008");
  BOOST_TEST(ctl::host_header("catalog01", 8008) == "catalog01:8008");
}

// A check's last reason quotes the backend: Patroni's "role" string goes
// into "role X, state Y" (health/patroni.cpp). A backend answering
// {"role": "\u001b]0;owned\u0007\u001b[2J..."} drove the terminal of whoever
// ran `vipproxy status` (title, screen cleared) and its "\n" broke the table.
BOOST_AUTO_TEST_CASE(backend_text_cannot_drive_the_terminal) {
  BOOST_TEST(ctl::printable("role replica, state running") == "role replica, state running");
  BOOST_TEST(ctl::printable("caf\xc3\xa9 \xe2\x80\x94") == "caf\xc3\xa9 \xe2\x80\x94");  // UTF-8 stays
  BOOST_TEST(ctl::printable("a\x1b[2Jb") == "a\\x1b[2Jb");
  BOOST_TEST(ctl::printable("a\nb\tc\rd\x7f") == "a\\nb\\tc\\x0dd\\x7f");
  BOOST_TEST(ctl::printable("csi \xc2\x9b" "31m") == "csi \\u009b31m");  // C1 CSI
  BOOST_TEST(ctl::printable("nbsp \xc2\xa0") == "nbsp \xc2\xa0");        // U+00A0 is text
  BOOST_TEST(ctl::printable(std::string("nul\0x", 5)) == "nul\\x00x");

  const char* doc = R"({"node":"n\u001b]0;owned\u0007","proxies":[{"name":"p","backends":[{"name":"b","check":
    {"state":"DOWN","last_outcome":"l7_not_primary","layer":"L7","http_status":200,
     "detail":"HTTP 200, role \u001b[2J\u009b31mreplica\nforged | line, state running"}}]}],
    "vrrp":[{"name":"VI_1","state":"BACKUP","foreign_routers":[{"source":"10.0.0.9\u001b[1A","reason":"address_mismatch"}]}]})";
  const std::string t = ctl::format_status(boost::json::parse(doc));
  for (unsigned char c : t) BOOST_TEST_REQUIRE((c >= 0x20 || c == '\n'), "control byte " << int(c) << " in:\n" << t);
  BOOST_TEST(t.find("\xc2\x9b") == std::string::npos);
  BOOST_TEST(t.find("role \\x1b[2J\\u009b31mreplica\\nforged | line") != std::string::npos, t);
  BOOST_TEST(t.find("Node: n\\x1b]0;owned\\x07") != std::string::npos, t);
  BOOST_TEST(t.find("10.0.0.9\\x1b[1A") != std::string::npos, t);
  // The backend is still one line of the table.
  BOOST_TEST(lines_with(t, "forged").find("| p ") == 0, t);
}

// /status workers.stuck (daemon/worker_watch.h): a worker whose event loop
// has stopped turning is said above the tables; none, nothing is said.
BOOST_AUTO_TEST_CASE(stuck_workers_are_said) {
  auto v = boost::json::parse(kStatus);
  v.as_object()["workers"] = boost::json::parse(R"({"threads":4,"stuck":[]})");
  BOOST_TEST(ctl::format_status(v).find("Stuck workers") == std::string::npos);
  v.as_object()["workers"] = boost::json::parse(R"({"threads":4,"stuck":[1,3]})");
  const std::string t = ctl::format_status(v);
  BOOST_TEST(lines_with(t, "Stuck workers: 1, 3 (of 4): event loop not turning") != "");
}

BOOST_AUTO_TEST_CASE(overlap_timelines_are_shown) {
  // Two backends of a `first` proxy passing at once: each one's timeline
  // (GET /patroni), or why it is not known, and where new sessions go.
  auto v = boost::json::parse(R"({"node":"n","version":"0.1.0","proxies":[{"name":"pg","listen":"0.0.0.0:5433",
    "balance":"first","current_backend":"b","sessions_current":0,"maxconn":10,"backends":[
     {"name":"a","address":"10.0.0.1:5432","eligible":true,"sessions":1,"connect_errors":0,
      "overlap":{"timeline":6,"reading":false,"error":""}},
     {"name":"b","address":"10.0.0.2:5432","eligible":true,"sessions":0,"connect_errors":0,
      "overlap":{"timeline":7,"reading":false,"error":""}},
     {"name":"c","address":"10.0.0.3:5432","eligible":true,"sessions":0,"connect_errors":0,
      "overlap":{"timeline":null,"reading":true,"error":"the reply is not a JSON object"}},
     {"name":"d","address":"10.0.0.4:5432","eligible":false,"sessions":0,"connect_errors":0}]}]})");
  std::string t = ctl::format_status(v);
  BOOST_TEST_MESSAGE("\n" << t);
  BOOST_TEST(lines_with(t, "Overlap on pg: ") ==
             "Overlap on pg: a on timeline 6, b on timeline 7, c not read (the reply is not a JSON object), "
             "reading again; new sessions go to b\n");
  // Without an overlap (or from an older daemon): no such line.
  BOOST_TEST(lines_with(ctl::format_status(boost::json::parse(kStatus)), "Overlap").empty());
}
