// vipproxy: a Patroni-aware TCP proxy and VRRP speaker in one daemon.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "cfg/load.h"
#include "cfg/names.h"
#include "daemon/daemon.h"
#include "daemon/logging.h"
#include "daemon/vip_record.h"
#include "importer/cli.h"
#include "vrrp/spawn.h"
#include "ctl/doctor.h"
#include "ctl/status.h"
#include "version.h"

namespace {

const char* kUsage = R"(usage: vipproxy [OPTIONS]
       vipproxy import [--haproxy FILE] [--keepalived FILE] [--node NAME]
       vipproxy status [--admin HOST:PORT] [--token-file FILE] [--json] [--config FILE]
       vipproxy doctor [--config FILE] [--patroni-config FILE] [--etcd HOST:PORT]...
                       [--advert-seconds N] [--no-adverts] [--admin HOST:PORT] [--token-file FILE]
       vipproxy release-vips [FILE]

  -c, --config FILE          run in the foreground with FILE (default /etc/vipproxy/vipproxy.yaml)
  -t, --check-config [FILE]  validate FILE (default: the -c file) and exit 0 (valid) or 1
      --data-path P          every proxy's data_path is P (auto, kernel, splice, copy), whatever
                             the file says, also after reloads (benchmarks, tests)
  -v, --version              print the version and exit
  -h, --help                 this text

Logs go to standard error. When that is the journal's stream (JOURNAL_STREAM)
each line starts with its syslog priority as "<N>", which journald stores
(warnings as warning, errors as err), and carries no timestamp of its own.
SIGTERM/SIGINT stop the daemon, SIGHUP reloads FILE; SIGUSR1/SIGUSR2 are ignored.
Under systemd (RuntimeDirectory=) the daemon records its VIPs in
$RUNTIME_DIRECTORY/vips; `release-vips` (the unit's ExecStopPost) removes
those a daemon that did not stop cleanly left on their interfaces.
See README.md ("Configuration reference") for every key.
)";

int check_config(const std::string& path) {
  try {
    cfg::Config c = cfg::load_file(path);
    std::cout << path << ": OK (" << c.proxies.size() << " proxies, " << c.vrrp.size()
              << " vrrp instances)\n";
    return 0;
  } catch (const cfg::Error& e) {
    // ExecStartPre runs this under systemd: an error, not info, in the journal.
    std::cerr << daemon_::logging::for_stderr(spdlog::level::err, e.what()) << "\n";
    return 1;
  }
}

// Two descriptors per session (plus pipes while data moves): lift the soft
// limit to the hard one, as HAProxy does, instead of failing at ~500 sessions.
// Scripts and notify hooks get the soft limit we started with back.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    vrrp::Spawner::set_children_nofile(rl.rlim_cur);
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// What an operator sends a running daemon and whose default action ends the
// process: SIGHUP (reload), SIGUSR1/SIGUSR2 (keepalived's dumps, HAProxy's
// soft stop). The Daemon catches them from its construction on; until then
// (the file being read: milliseconds, longer from a slow disk or a pipe) they
// are held, so one sent then is acted on once the handlers are in place
// instead of killing the daemon.
sigset_t operator_signals() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&s, sig);
  return s;
}

// The signal mask survives fork and exec: a parent that blocked SIGTERM or
// SIGHUP (a script waiting in sigwait(), a supervisor; systemd resets it, a
// shell or cron may not) would leave those signals pending forever, the
// daemon deaf to stop and reload, and the capability drop's signal blocked
// in every worker thread. Every thread starts from this one's mask: nothing
// blocked but the operator's signals, held until release_operator_signals().
void reset_signal_mask() {
  sigset_t held = operator_signals();
  (void)::sigprocmask(SIG_SETMASK, &held, nullptr);
}

void release_operator_signals() {
  sigset_t held = operator_signals();
  (void)::sigprocmask(SIG_UNBLOCK, &held, nullptr);
}

// A parent may start us with 0, 1 or 2 closed (`>&- 2>&-`, a supervisor).
// The lowest free number goes to the next descriptor opened: an eventfd, a
// listener, a session would become "standard error", log lines would be
// written into it, and every script and notify hook would inherit it as its
// stdout or stderr (the spawner keeps 1 and 2 for them). /dev/null holds
// the three numbers instead.
void open_standard_descriptors() {
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      const int null = ::open("/dev/null", O_RDWR);  // the lowest free number: `fd`
      if (null > 2) ::close(null);
    }
}

int run(const std::string& path, std::optional<cfg::DataPath> data_path) {
  open_standard_descriptors();
  reset_signal_mask();
  cfg::Config c;
  try {
    c = cfg::load_file(path);
  } catch (const cfg::Error& e) {
    std::cerr << daemon_::logging::for_stderr(spdlog::level::err, e.what()) << "\n";
    return 1;
  }
  daemon_::logging::setup(c.log_level);
  raise_fd_limit();
  spdlog::info("vipproxy {} starting, node {}, config {}", VIPPROXY_VERSION, c.node, path);
  daemon_::warn_if_secrets_readable(c);
  int rc = 1;
  try {
    daemon_::Daemon d(std::move(c), data_path);
    release_operator_signals();  // the Daemon catches them now
    rc = d.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
  }
  // Log lines never wait for standard error while the daemon runs
  // (daemon/logging.h); the last ones get a second to go out.
  daemon_::logging::finish(1000);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config = "/etc/vipproxy/vipproxy.yaml";
  std::optional<cfg::DataPath> data_path;
  bool check = false;
  std::optional<std::string> check_file;
  // haproxy.cfg + keepalived.conf -> YAML on stdout (docs/importer.md).
  if (argc >= 2 && std::string(argv[1]) == "import") return importer::run_cli(argc - 1, argv + 1, std::cout, std::cerr);
  // Tools for people (ctl/): the admin endpoint as a table; preflight checks.
  if (argc >= 2 && std::string(argv[1]) == "status") return ctl::run_status_cli(argc - 1, argv + 1, std::cout, std::cerr);
  if (argc >= 2 && std::string(argv[1]) == "release-vips")
    return daemon_::vip_record::run_cli(argc - 1, argv + 1, std::cout, std::cerr);
  if (argc >= 2 && std::string(argv[1]) == "doctor") return ctl::run_doctor_cli(argc - 1, argv + 1, std::cout, std::cerr);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "vipproxy: " << a << " needs " << what << "\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (a == "-v" || a == "--version") {
      std::cout << "vipproxy " << VIPPROXY_VERSION << "\n";
      return 0;
    } else if (a == "-t" || a == "--check-config") {
      // FILE is optional, as with `keepalived -t -f FILE`, `nginx -t` and
      // `haproxy -c -f FILE`: without it the file of -c/--config is checked,
      // else the default, so `-t -c FILE` checks FILE (not a file named "-c").
      check = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') check_file = argv[++i];
    } else if (a.rfind("--check-config=", 0) == 0) {
      check = true;
      check_file = a.substr(15);
    } else if (a == "-c" || a == "--config") {
      config = value("a file");
    } else if (a.rfind("--config=", 0) == 0) {
      config = a.substr(9);
    } else if (a == "--data-path") {
      std::string v = value("auto, kernel, splice or copy");
      data_path = cfg::names::parse<cfg::DataPath>(v);
      if (!data_path) {
        std::cerr << "vipproxy: --data-path: expected " << cfg::names::expected<cfg::DataPath>() << ", got '" << v
                  << "'\n";
        return 2;
      }
    } else {
      std::cerr << "vipproxy: unknown argument '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (check) return check_config(check_file.value_or(config));
  return run(config, data_path);
}
