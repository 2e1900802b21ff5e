// Argument parsing and I/O of `vipproxy status` and `vipproxy doctor`.
#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "cfg/load.h"
#include "ctl/doctor.h"
#include "ctl/http.h"
#include "ctl/status.h"

namespace ctl {

namespace {

const char* kStatusUsage =
    "usage: vipproxy status [--admin HOST:PORT] [--token TOKEN] [--json] [--config FILE]\n"
    "  Reads GET /status from the admin endpoint of a running vipproxy and prints\n"
    "  proxies, backends (role from the check, last check result and latency,\n"
    "  sessions) and VRRP instances (state, effective priority, master address).\n"
    "  --admin   admin address (default: admin.listen of --config, else 127.0.0.1:8405)\n"
    "  --token   bearer token (default: admin.token of the config, or $VIPPROXY_TOKEN)\n"
    "  --json    print the /status document as it is\n"
    "  --config  config file (default /etc/vipproxy/vipproxy.yaml, used when readable)\n";

const char* kDoctorUsage =
    "usage: vipproxy doctor [--config FILE] [--patroni-config FILE] [--etcd HOST:PORT]...\n"
    "                       [--advert-seconds N] [--no-adverts]\n"
    "  Preflight checks, one verdict per line (OK, WARN, FAIL); exit 1 if any FAIL.\n"
    "  Run it as root or as the vipproxy user with the unit's capabilities.\n";

struct Args {
  int argc;
  const char* const* argv;
  int i = 1;
  std::ostream& err;
  const char* usage;
  bool ok = true;
  std::string value(const std::string& a) {
    if (i + 1 >= argc) {
      err << "vipproxy: " << a << " needs a value\n" << usage;
      ok = false;
      return {};
    }
    return argv[++i];
  }
};

bool readable(const std::string& p) { return std::ifstream(p).good(); }

}  // namespace

int run_status_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Args a{argc, argv, 1, err, kStatusUsage};
  std::string admin, token, config;
  bool as_json = false, config_given = false;
  if (const char* t = std::getenv("VIPPROXY_TOKEN")) token = t;
  bool token_given = !token.empty();
  for (; a.i < argc; ++a.i) {
    std::string s = argv[a.i];
    if (s == "--admin") admin = a.value(s);
    else if (s.rfind("--admin=", 0) == 0) admin = s.substr(8);
    else if (s == "--token") { token = a.value(s); token_given = true; }
    else if (s.rfind("--token=", 0) == 0) { token = s.substr(8); token_given = true; }
    else if (s == "--json") as_json = true;
    else if (s == "--config" || s == "-c") { config = a.value(s); config_given = true; }
    else if (s.rfind("--config=", 0) == 0) { config = s.substr(9); config_given = true; }
    else if (s == "-h" || s == "--help") { out << kStatusUsage; return 0; }
    else { err << "vipproxy status: unknown argument '" << s << "'\n" << kStatusUsage; return 2; }
    if (!a.ok) return 2;
  }
  if (!config_given) config = "/etc/vipproxy/vipproxy.yaml";
  StatusOptions opt;
  std::optional<cfg::Config> c;
  if (config_given || readable(config)) {
    try {
      c = cfg::load_file(config);
    } catch (const std::exception& e) {
      if (config_given || admin.empty()) {
        err << "vipproxy status: " << e.what() << (admin.empty() ? "" : "\n");
        if (admin.empty()) return 1;
      }
    }
  }
  if (c) {
    for (const auto& p : c->proxies) opt.check_paths[p.name] = p.check.path;
    if (!token_given) token = c->admin.token;
    if (admin.empty()) {
      std::string h = c->admin.listen.host;
      if (h == "0.0.0.0") h = "127.0.0.1";
      if (h == "::" || h == "[::]") h = "::1";
      admin = (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(c->admin.listen.port);
    }
  }
  if (admin.empty()) admin = "127.0.0.1:8405";
  std::pair<std::string, unsigned short> hp;
  try {
    hp = split_host_port(admin, 8405);
  } catch (const std::exception& e) {
    err << "vipproxy status: --admin: " << e.what() << "\n";
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  auto r = http_request(hp.first, hp.second, "GET", "/status", {}, headers, std::chrono::milliseconds(5000));
  if (!r.ok) {
    err << "vipproxy status: cannot reach the admin endpoint at http://" << admin << "/status: " << r.error
        << "\n  (is vipproxy running? `systemctl status vipproxy`; is admin.listen " << admin << "?)\n";
    return 1;
  }
  if (r.status == 401) {
    err << "vipproxy status: http://" << admin << "/status wants a token (--token, or admin.token in --config)\n";
    return 1;
  }
  if (r.status != 200) {
    err << "vipproxy status: http://" << admin << "/status answered HTTP " << r.status << "\n";
    return 1;
  }
  if (as_json) {
    out << r.body;
    if (r.body.empty() || r.body.back() != '\n') out << "\n";
    return 0;
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec) {
    err << "vipproxy status: http://" << admin << "/status is not JSON: " << ec.message() << "\n";
    return 1;
  }
  out << format_status(v, opt);
  return 0;
}

int run_doctor_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Args a{argc, argv, 1, err, kDoctorUsage};
  DoctorOptions o;
  for (; a.i < argc; ++a.i) {
    std::string s = argv[a.i];
    if (s == "--config" || s == "-c") o.config = a.value(s);
    else if (s.rfind("--config=", 0) == 0) o.config = s.substr(9);
    else if (s == "--patroni-config") o.patroni_config = a.value(s);
    else if (s == "--etcd") o.etcd.push_back(a.value(s));
    else if (s == "--no-adverts") o.listen_adverts = false;
    else if (s == "--advert-seconds") {
      std::string v = a.value(s);
      if (!a.ok) return 2;
      try {
        o.advert_seconds = std::stod(v);
      } catch (const std::exception&) {
        err << "vipproxy doctor: --advert-seconds wants a number\n";
        return 2;
      }
    } else if (s == "-h" || s == "--help") { out << kDoctorUsage; return 0; }
    else { err << "vipproxy doctor: unknown argument '" << s << "'\n" << kDoctorUsage; return 2; }
    if (!a.ok) return 2;
  }
  auto vs = run_doctor(o, out);
  int rc = exit_code(vs);
  size_t fails = 0, warns = 0;
  for (const auto& v : vs) (v.level == Level::fail ? fails : v.level == Level::warn ? warns : fails) += v.level != Level::ok;
  out << (rc ? "FAIL: " : "result: ") << fails << " failure(s), " << warns << " warning(s)\n";
  return rc;
}

}  // namespace ctl
