// Argument parsing and I/O of `vipproxy status` and `vipproxy doctor`.
#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <yaml-cpp/yaml.h>

#include "cfg/load.h"
#include "ctl/admin_client.h"
#include "ctl/doctor.h"
#include "ctl/http.h"
#include "ctl/status.h"

namespace ctl {

namespace {

const char* kStatusUsage =
    "usage: vipproxy status [--admin HOST:PORT] [--token-file FILE] [--json] [--config FILE]\n"
    "  Reads GET /status from the admin endpoint of a running vipproxy and prints\n"
    "  proxies, backends (role from the check, last check result and latency,\n"
    "  sessions) and VRRP instances (state, effective priority, master address).\n"
    "  --admin       admin address HOST:PORT or its http:// URL (default: admin.listen of --config,\n"
    "                else 127.0.0.1:8405)\n"
    "  --token-file  file whose first line is the admin token; else $VIPPROXY_TOKEN,\n"
    "                else admin.token of the config (never put the token in argv: ps shows it)\n"
    "  --json        print the /status document as it is\n"
    "  --config      config file (default /etc/vipproxy/vipproxy.yaml, used when readable; one that\n"
    "                does not load is a warning, its admin section read as written)\n"
    "  Exit 0: printed; 1: the endpoint is unreachable, refuses the token or does not answer\n"
    "  the /status JSON (nothing on stdout); 2: usage error or unreadable token file.\n";

const char* kDoctorUsage =
    "usage: vipproxy doctor [--config FILE] [--patroni-config FILE] [--etcd HOST:PORT]...\n"
    "                       [--advert-seconds N] [--no-adverts] [--admin HOST:PORT] [--token-file FILE]\n"
    "  Preflight checks, one verdict per line (OK, WARN, FAIL); exit 1 if any FAIL.\n"
    "  --patroni-config  Patroni's config (default /etc/patroni/patroni.yml, if readable): the etcd\n"
    "                    hosts, and the DCS that known Patroni write-loss defects depend on\n"
    "  Run it as root or as the vipproxy user with the unit's capabilities.\n"
    "  --admin, --token-file: reach the running daemon's admin endpoint as `vipproxy status`\n"
    "  does (the token: --token-file, else $VIPPROXY_TOKEN, else admin.token of --config).\n";

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

// The admin section of a file that does not load whole (an edit in progress,
// a typo the running daemon has not been asked to reload), as written: the
// daemon still runs with the file it loaded, whose admin endpoint this most
// likely is. Whatever of it cannot be read keeps its default.
cfg::Config admin_as_written(const std::string& path) {
  cfg::Config c;
  try {
    YAML::Node admin = YAML::LoadFile(path)["admin"];
    if (!admin.IsMap()) return c;
    if (admin["listen"] && admin["listen"].IsScalar()) {
      auto [host, port] = split_host_port(admin["listen"].as<std::string>(), 8405);
      c.admin.listen = {host, port};
    }
    if (admin["token"] && admin["token"].IsScalar()) c.admin.token = admin["token"].as<std::string>();
  } catch (const std::exception&) {
    // Not YAML at all, or a listen value that is not host:port: defaults.
  }
  return c;
}

}  // namespace

int run_status_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Args a{argc, argv, 1, err, kStatusUsage};
  std::string admin, config;
  std::optional<std::string> argv_token, token_file;
  bool as_json = false, config_given = false;
  for (; a.i < argc; ++a.i) {
    std::string s = argv[a.i];
    if (s == "--admin") admin = a.value(s);
    else if (s.rfind("--admin=", 0) == 0) admin = s.substr(8);
    else if (s == "--token-file") token_file = a.value(s);
    else if (s.rfind("--token-file=", 0) == 0) token_file = s.substr(13);
    // Kept from before --token-file, with a warning: every user sees argv.
    else if (s == "--token") argv_token = a.value(s);
    else if (s.rfind("--token=", 0) == 0) argv_token = s.substr(8);
    else if (s == "--json") as_json = true;
    else if (s == "--config" || s == "-c") { config = a.value(s); config_given = true; }
    else if (s.rfind("--config=", 0) == 0) { config = s.substr(9); config_given = true; }
    else if (s == "-h" || s == "--help") { out << kStatusUsage; return 0; }
    else { err << "vipproxy status: unknown argument '" << s << "'\n" << kStatusUsage; return 2; }
    if (!a.ok) return 2;
  }
  if (argv_token && token_file) {
    err << "vipproxy status: --token and --token-file: give one\n" << kStatusUsage;
    return 2;
  }
  if (argv_token)
    err << "vipproxy status: warning: --token shows the token to every user of this machine (ps, "
           "/proc/PID/cmdline); use --token-file FILE or $VIPPROXY_TOKEN\n";
  try {
    if (!admin.empty()) admin = admin_argument(admin);
  } catch (const std::exception& e) {
    err << "vipproxy status: --admin " << e.what() << "\n";
    return 2;
  }
  if (!config_given) config = "/etc/vipproxy/vipproxy.yaml";
  StatusOptions opt;
  std::optional<cfg::Config> c;
  if (config_given || readable(config)) {
    try {
      c = cfg::load_file(config);
    } catch (const std::exception& e) {
      if (config_given || admin.empty()) err << "vipproxy status: warning: " << e.what() << "\n";
      if (admin.empty()) {
        // The daemon runs with the file it loaded last: its status is what
        // is wanted most while this one is being fixed.
        c = admin_as_written(config);
        err << "vipproxy status: warning: the admin endpoint and token are taken from the file's admin section "
               "as written (--admin and --token-file choose others)\n";
      }
    }
  }
  if (c) {
    for (const auto& p : c->proxies) opt.check_paths[p.name] = p.check.path;
    if (admin.empty()) admin = admin_address(c->admin);
  }
  if (admin.empty()) admin = "127.0.0.1:8405";
  Token token;
  try {
    token = argv_token ? Token{*argv_token, "--token", {}} : resolve_token(token_file, c ? &*c : nullptr, config);
  } catch (const std::exception& e) {
    err << "vipproxy status: " << e.what() << "\n";
    return 2;
  }
  for (const auto& w : token.warnings) err << "vipproxy status: warning: " << w << "\n";
  std::pair<std::string, unsigned short> hp;
  try {
    hp = split_host_port(admin, 8405);
  } catch (const std::exception& e) {
    err << "vipproxy status: --admin: " << e.what() << "\n";
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (!token.value.empty()) headers.emplace_back("Authorization", "Bearer " + token.value);
  auto r = http_request(hp.first, hp.second, "GET", "/status", {}, headers, std::chrono::milliseconds(5000));
  if (!r.ok && r.connected) {
    // Something listens there but gave no whole HTTP answer: not "is
    // vipproxy running?".
    err << "vipproxy status: http://" << admin << "/status accepted the connection but gave no complete HTTP answer: "
        << r.error << "\n  (another service on " << admin << "? a vipproxy stopping?)\n";
    return 1;
  }
  if (!r.ok) {
    err << "vipproxy status: cannot reach the admin endpoint at http://" << admin << "/status: " << r.error
        << "\n  (is vipproxy running? `systemctl status vipproxy`; is admin.listen " << admin << "?)\n";
    return 1;
  }
  if (r.status == 401) {
    err << "vipproxy status: http://" << admin << "/status "
        << (token.value.empty() ? "wants a token" : "refused the token from " + token.source)
        << " (give it with --token-file FILE or $VIPPROXY_TOKEN; admin.token of --config is used when readable)\n";
    return 1;
  }
  if (r.status != 200) {
    err << "vipproxy status: http://" << admin << "/status answered HTTP " << r.status << "\n";
    return 1;
  }
  // --json too: a script piping it to jq must not get exit 0 with something
  // else on stdout (another service on the port, a cut answer).
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    err << "vipproxy status: http://" << admin << "/status is not the /status JSON object"
        << (ec ? ": " + ec.message() : std::string()) << " (is another service on " << admin << "?)\n";
    return 1;
  }
  if (as_json) {
    out << r.body;
    if (r.body.empty() || r.body.back() != '\n') out << "\n";
    return 0;
  }
  out << format_status(v, opt);
  return 0;
}

int run_doctor_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  Args a{argc, argv, 1, err, kDoctorUsage};
  DoctorOptions o;
  for (; a.i < argc; ++a.i) {
    std::string s = argv[a.i];
    // "--name VALUE" or "--name=VALUE", as `vipproxy status` takes them
    // (doctor took only --config=: "--token-file=F" was an unknown argument).
    std::string v;
    auto is = [&](const std::string& name) {
      if (s == name) {
        v = a.value(s);
        return true;
      }
      if (s.rfind(name + "=", 0) != 0) return false;
      v = s.substr(name.size() + 1);
      return true;
    };
    if (s == "-c") o.config = a.value(s);
    else if (is("--config")) o.config = v;
    else if (is("--patroni-config")) o.patroni_config = v;
    else if (is("--etcd")) o.etcd.push_back(v);
    else if (s == "--no-adverts") o.listen_adverts = false;
    else if (is("--admin")) o.admin = v;
    else if (is("--token-file")) o.token_file = v;
    else if (is("--advert-seconds")) {
      if (!a.ok) return 2;
      // The whole value, finite, at most an hour: "nan", "inf" or "1e30"
      // became a deadline out of the clock's range (undefined: doctor
      // returned at once or listened for ever), "5s" was read as 5.
      size_t used = 0;
      double secs = -1;
      try {
        secs = std::stod(v, &used);
      } catch (const std::exception&) {
      }
      if (used != v.size() || !(secs >= 0 && secs <= 3600)) {
        err << "vipproxy doctor: --advert-seconds wants a number of seconds from 0 (3 x advert_int) to 3600, got '"
            << v << "'\n";
        return 2;
      }
      o.advert_seconds = secs;
    } else if (s == "-h" || s == "--help") { out << kDoctorUsage; return 0; }
    else { err << "vipproxy doctor: unknown argument '" << s << "'\n" << kDoctorUsage; return 2; }
    if (!a.ok) return 2;
  }
  try {
    if (!o.admin.empty()) o.admin = admin_argument(o.admin);
  } catch (const std::exception& e) {
    err << "vipproxy doctor: --admin " << e.what() << "\n";
    return 2;
  }
  auto vs = run_doctor(o, out);
  int rc = exit_code(vs);
  size_t fails = 0, warns = 0;
  for (const auto& v : vs) (v.level == Level::fail ? fails : v.level == Level::warn ? warns : fails) += v.level != Level::ok;
  out << (rc ? "FAIL: " : "result: ") << fails << " failure(s), " << warns << " warning(s)\n";
  return rc;
}

}  // namespace ctl
