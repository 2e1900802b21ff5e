// The running daemon: one control thread (health checks, admin endpoint,
// signals, VRRP) and N worker threads (listeners and sessions).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cfg/config.h"
#include "daemon/instance_lock.h"
#include "daemon/systemd_notify.h"
#include "daemon/worker_watch.h"
#include "health/checker.h"
#include "proxy/balance.h"
#include "proxy/runtime.h"
#include "proxy/worker.h"

namespace vrrp {
class Service;
}

namespace daemon_ {

class AdminServer;

// How many CPUs this process may run on (its affinity mask): the workers of
// `threads: 0`.
unsigned usable_cpus();

// Warns when `c` holds a VRRP password or the admin token and its file
// (c.source) is readable by every user (the secret itself is never logged):
// at start and at every SIGHUP, so a file replaced with the wrong mode
// before a reload is reported too.
void warn_if_secrets_readable(const cfg::Config& c);

class Daemon {
 public:
  // `data_path`: replaces every proxy's data_path, at start and reloads.
  explicit Daemon(cfg::Config config, std::optional<cfg::DataPath> data_path = std::nullopt);
  ~Daemon();

  // Binds everything (throws std::exception with a clear message on failure),
  // then runs until SIGTERM/SIGINT. Returns the exit code.
  int run();

  // For the admin endpoint (control thread only).
  const cfg::Config& config() const { return config_; }
  const std::vector<std::shared_ptr<proxy::ProxyRuntime>>& proxies() const { return proxies_; }
  const health::Status* check_status(size_t proxy, size_t backend) const;
  // While backend `backend` of a `first` proxy is in an overlap (several
  // pass the check at once): its timeline as last read (GET /patroni).
  struct OverlapTimeline {
    bool reading = false;              // a read is in flight
    std::optional<uint64_t> timeline;  // nullopt: not read (yet), failed, or not a primary's
    std::string error;                 // why the last read gave no timeline ("" if none ended yet)
  };
  std::optional<OverlapTimeline> overlap_timeline(size_t proxy, size_t backend) const;
  size_t pipes_in_use() const;
  // Whether the kernel data path is loaded, and why not when it is not.
  bool kernel_path() const { return kernel_path_; }
  // SIGTERM/SIGINT received: sessions drain (the admin endpoint stays).
  bool stopping() const { return stopping_; }
  const std::string& kernel_path_why_not() const { return kernel_why_not_; }
  const vrrp::Service* vrrp() const { return vrrp_.get(); }
  struct Reloads {
    uint64_t applied = 0, failed = 0;  // SIGHUPs whose file was applied / refused
  };
  const Reloads& reloads() const { return reloads_; }
  // systemd notifications never sent (daemon/systemd_notify.h).
  uint64_t notifications_dropped() const { return notifier_ ? notifier_->dropped() : 0; }
  // Worker threads whose event loop has not turned for a watch period
  // (daemon/worker_watch.h), by index.
  std::vector<size_t> workers_stuck() const { return worker_watch_.stuck(); }
  size_t worker_count() const { return workers_.size(); }
  // track.proxies: the proxy exists, its workers listen and it has an
  // eligible backend (the one `first` uses, or any for the other balances).
  // nullopt while none of its checks has answered yet (a proxy a reload
  // just added: vrrp::Service::ProxyHealthy).
  std::optional<bool> proxy_healthy(const std::string& name) const;

 private:
  void resolve_backends(const std::vector<std::shared_ptr<proxy::ProxyRuntime>>& proxies);
  // Where a backend's checks connect (make_checker, reloads).
  static boost::asio::ip::address session_address(const proxy::BackendRuntime& b);
  std::shared_ptr<health::Checker> make_checker(const proxy::ProxyRuntime& p, size_t backend,
                                                std::chrono::milliseconds first_delay);
  void start_checks();
  // GET /patroni on a backend's check host and port (http checks), logged
  // with a warning when the running Patroni version has a known defect that
  // loses acknowledged writes (health/patroni_defects.h). At start, and again
  // each time the backend becomes reachable after it was not (Patroni was
  // not up yet at start, or restarted: an upgrade); logged when it changed.
  void read_patroni_version(const proxy::ProxyRuntime& p, size_t backend);
  void on_patroni_version(const std::string& url, uint64_t request, const std::string& label,
                          const health::CheckResult& r, const std::string& body);
  // The running generation of the proxy with this name, or null.
  const proxy::ProxyRuntime* running(const std::string& name) const;
  // Where a backend is in the running generation (false: a reload removed it).
  bool locate(const proxy::BackendRuntime& b, size_t& proxy, size_t& backend) const;
  void on_check_change(const proxy::BackendRuntime& backend, const health::Status& st);
  // `first`: re-elects the backend new sessions go to; checks speed up while
  // none is eligible.
  void elect(size_t proxy);
  void set_urgent(size_t proxy, bool urgent);
  void stop();
  // Stops every check, those of backends a reload removed too, and the
  // admin endpoint. At SIGTERM both go on while the workers drain (a node
  // demoted meanwhile still has its sessions cut; an operator sees what is
  // left) and stop once every worker has ended.
  void stop_checks();
  // systemd Type=notify: READY=1 once listeners are bound and every backend
  // has had its first check (bounded), then the workers' watch
  // (watch_workers), with WATCHDOG=1 pings if asked for.
  void notify_when_ready(std::chrono::steady_clock::time_point deadline);
  // Every `period`: the workers' heartbeats (daemon/worker_watch.h); a
  // stuck worker is logged at error, and once it turns again at warning.
  // `systemd`: WATCHDOG=1 too, until a worker is found stuck.
  void watch_workers(std::chrono::microseconds period, bool systemd);
  // A state change for systemd; one the notify socket does not take now is
  // sent again every 100 ms until it does (daemon/systemd_notify.h).
  void notify_state(std::string message);
  void retry_notifications();
  // SIGHUP: validate the file again; a bad file is logged and the running
  // configuration stays. A valid one is applied in place (reload()). The
  // next SIGHUP is waited for once this reload has ended (a signal that
  // comes meanwhile is kept by the signal set).
  void wait_for_sighup();
  // SIGUSR1/SIGUSR2: logged and ignored (see usr_).
  void ignore_sigusr();
  // Applies the file in place: new/removed proxies, listeners and backends,
  // changed checks and settings, VRRP instances. Throws, having changed
  // nothing, when the file is invalid or a listener/backend/interface of it
  // cannot be set up. Established sessions to kept backends are untouched;
  // sessions of removed proxies/backends drain for hard_stop_after.
  // daemon/reload.cpp: plan_reload() (the file, its checks and the new
  // generations; null when the file is unchanged), the new backends' names
  // looked up without blocking this thread (resolve_new_backends()), then
  // finish_plan() (listeners bound, VRRP instances prepared; can fail) and
  // commit_reload() (cannot fail). `done` gets "" or why it failed.
  struct ReloadPlan;
  void reload(std::function<void(const std::string& error)> done);
  std::unique_ptr<ReloadPlan> plan_reload();
  void resolve_new_backends(std::shared_ptr<ReloadPlan> plan, std::function<void(const std::string& error)> done);
  void finish_plan(ReloadPlan& plan);
  void commit_reload(ReloadPlan& plan);
  // TLS checks read their ca_file again (a reload of an unchanged file).
  void reread_check_tls();
  // How long a reload waits for the new backends' names (glibc's own
  // resolver gives up after 5 s per try and server by default).
  static constexpr std::chrono::seconds kReloadResolveTimeout{10};
  // Set while a reload waits for names: stop() calls it (the plan is dropped).
  std::function<void()> cancel_reload_lookup_;
  // --data-path (main.cpp) overrides every proxy's data_path.
  void override_data_path(cfg::Config& c) const;

  void load_kernel_path();

  cfg::Config config_;
  std::optional<cfg::DataPath> data_path_;
  bool kernel_path_ = false;
  // auto is splice (proxy/session.cpp): only data_path kernel loads it.
  std::string kernel_why_not_ = kNotLoadedAtStart;
  static constexpr const char* kNotLoadedAtStart =
      "not loaded: no proxy had data_path kernel at start (the program is loaded at start only, while the "
      "daemon holds CAP_BPF): restart to use it";
  Reloads reloads_;
  boost::asio::io_context control_{1};
  boost::asio::signal_set signals_;
  std::vector<std::shared_ptr<proxy::ProxyRuntime>> proxies_;
  // By proxy name: the address its listeners are bound to (numeric), so a
  // reload can compare a new listen host name with the running listeners.
  std::map<std::string, cfg::Endpoint> bound_listens_;
  std::vector<std::unique_ptr<proxy::Worker>> workers_;
  std::vector<std::vector<std::shared_ptr<health::Checker>>> checkers_;
  // Backends a reload removed: their sessions drain for hard_stop_after, and
  // their check goes on that long, so a node demoted meanwhile still has its
  // sessions cut (on_check_change). `until` stops it (shared by one reload's).
  struct DrainingCheck {
    std::shared_ptr<proxy::ProxyRuntime> generation;  // the one the backend was removed from
    size_t backend = 0;
    std::shared_ptr<health::Checker> checker;
    std::shared_ptr<boost::asio::steady_timer> until;
  };
  std::vector<DrainingCheck> draining_checks_;
  // Checks of drains that ended (retired: a check in flight finishes by
  // itself); stopped outright at the daemon's stop if still alive.
  std::vector<std::weak_ptr<health::Checker>> retired_checkers_;
  size_t workers_ended_ = 0;  // worker loops ended since stop()
  std::unique_ptr<AdminServer> admin_;
  // `first` proxies with several backends passing at once, by proxy name.
  std::map<std::string, proxy::OverlapWatch> overlaps_;
  // During such an overlap, the PostgreSQL timeline each backend of it
  // reports as a primary (GET /patroni, http checks), for the election
  // (proxy::elect_first_by_timeline): read when the overlap starts or
  // changes, and again after a reload that moved one of its backends; a
  // failed read is retried while the overlap lasts (proxy::timeline_retry_after),
  // a good one read again slowly (proxy::timeline_reread_after); forgotten
  // when it ends.
  struct TimelineRead {
    std::function<void()> cancel;  // of the request (in flight or waiting for the server's close)
    uint64_t request = 0;          // its number: a reply to an older one is ignored
    bool in_flight = false;
    std::optional<uint64_t> timeline;  // nullopt: not read (yet), or not a primary's
    std::string why;                   // why not, once answered
    std::string source;                // where it was read (timeline_source)
    unsigned failures = 0;             // reads in a row that failed (proxy::timeline_retry_after)
    std::shared_ptr<boost::asio::steady_timer> again;  // the next read, once this one has ended
  };
  struct OverlapTimelines {
    std::map<std::string, TimelineRead> backends;  // by backend name; empty: to be read
    std::string logged;                            // the outcome last logged for this overlap
  };
  std::map<std::string, OverlapTimelines> overlap_timelines_;  // by proxy name
  // Cancels the proxy's reads and starts one per backend of its overlap.
  void read_timelines(const proxy::ProxyRuntime& p);
  // Starts one read of backend `bi`'s timeline (its entry in `t` is made).
  void read_timeline(const proxy::ProxyRuntime& p, size_t bi, OverlapTimelines& t);
  // After a read has ended: the next one of that backend, while the overlap lasts.
  void schedule_timeline_read(const std::string& proxy, const std::string& backend, TimelineRead& read,
                              std::chrono::milliseconds after);
  void on_timeline(const std::string& proxy, const std::string& backend, uint64_t request,
                   const health::CheckResult& r, const std::string& body);
  // Cancels an overlap's reads and forgets what they read (`logged` stays):
  // the next election reads again.
  // Ends the proxy's timeline reads: retries stop, and a read still waiting
  // for its reply is left to finish (patroni_orphans_), not cut: closing
  // it before Patroni answers makes Patroni log a traceback (patroni#2278),
  // and an overlap often ends within milliseconds of its start.
  void cancel_timeline_reads(OverlapTimelines& t);
  // GET /patroni reads (a timeline, a version) nobody waits for any more
  // while they were in flight (their overlap ended or changed, a reload
  // removed their backend), by request number: their reply is ignored, and
  // their cancel (which then only closes what the server left open) is
  // called when it comes, or at stop. Not cut before Patroni answers, for
  // the traceback above.
  std::map<uint64_t, std::function<void()>> patroni_orphans_;
  // Ends a read of patroni_orphans_ or of the maps above: an orphan if its
  // reply has not come yet (and not stopping), else its cancel is called.
  void end_patroni_read(uint64_t request, bool in_flight, std::function<void()>& cancel);
  // True if `request` was an orphan (now ended): its reply is nobody's.
  bool reply_to_orphan(uint64_t request);
  // The URL and address a backend's timeline is read from.
  static std::string timeline_source(const proxy::ProxyRuntime& p, size_t backend);
  // At a reload's commit, before its elections: drops the timelines of
  // proxies no longer running, and of overlaps with a backend now checked
  // elsewhere (another port, host or TLS), so the elections read them
  // again. Reads of unchanged backends go on: cancelling one that waits for
  // its reply would close the connection under Patroni (patroni#2278).
  void forget_changed_timelines();
  // Failed connects to a backend that passes its check, by "proxy/backend"
  // (warn_connect_failed).
  struct ConnectFailures {
    std::optional<std::chrono::steady_clock::time_point> episode;  // first failure of this run of them
    std::chrono::steady_clock::time_point last{};                  // the latest failure
    std::optional<std::chrono::steady_clock::time_point> logged;
    uint64_t since = 0;  // failed connects since the last warning (or the episode's start)
  };
  std::map<std::string, ConnectFailures> connect_failures_;
  // At a reload's commit: drops connect_failures_ and overlaps_ entries of
  // names the new configuration no longer has (daemon/reload.cpp).
  void forget_removed_names();
  // $RUNTIME_DIRECTORY/vips (daemon/vip_record.h), "" outside systemd.
  std::string vip_record_path_;
  // One per VRRP instance run (daemon/instance_lock.h): a second daemon on
  // this host with the same instance refuses to start. Released at stop(),
  // once VRRP has stopped.
  instance_lock::Locks instance_locks_;
  void record_vips();
  void warn_connect_failed(const proxy::ProxyRuntime& p, const proxy::BackendRuntime& b, int error);
  struct PatroniVersionRead {
    std::function<void()> cancel;  // of the last request (in flight or waiting for the server's close)
    uint64_t request = 0;          // its number: a reply to an older one (its URL dropped since) is ignored
    bool in_flight = false;
    bool known = false;            // read since the backend last became reachable
    std::string logged;            // the version last logged
  };
  std::map<std::string, PatroniVersionRead> patroni_versions_;  // by GET URL
  uint64_t patroni_requests_ = 0;
  // At a reload's commit and when a removed backend's drain ends: drops the
  // patroni_versions_ entries of URLs no running or draining backend checks;
  // a read of theirs in flight is left to finish (daemon/reload.cpp).
  void forget_removed_patroni_urls();
  boost::asio::signal_set hup_{control_, SIGHUP};
  // keepalived's operators send SIGUSR1/SIGUSR2 for a data or stats dump,
  // HAProxy's for a soft stop or a reload. Their default action ends the
  // process at once, and as VRRP master the VIP stayed on the interface
  // without a priority-0 advert. Caught from construction on, never waited
  // for again once stopping: ignored until exit.
  boost::asio::signal_set usr_{control_, SIGUSR1, SIGUSR2};
  boost::asio::steady_timer ready_timer_{control_};
  bool ready_sent_ = false;  // READY=1 after the first check round (notify_when_ready())
  boost::asio::steady_timer watchdog_timer_{control_};
  // Whether every worker's loop turns: WATCHDOG=1 only while they do.
  WorkerWatch worker_watch_{0};
  bool watchdog_stopped_ = false;  // a worker was found stuck: no WATCHDOG=1 any more
  // Tests only (VIPPROXY_TEST_STALL_WORKER): SIGUSR1 blocks this worker's
  // loop until SIGUSR2, stop() (or the destructor) releases it.
  std::optional<size_t> test_stall_worker_;
  std::atomic<bool> test_stall_released_{false};
  std::unique_ptr<SystemdNotifier> notifier_;
  boost::asio::steady_timer notify_retry_timer_{control_};
  bool notify_retrying_ = false;
  // With vrrp_rt_priority: logs, once, that the RLIMIT_RTTIME guard put the
  // control thread back on the normal scheduler (daemon/realtime.h).
  boost::asio::steady_timer realtime_timer_{control_};
  void watch_realtime_guard();
  // Log lines standard error did not take at once go out within a second
  // even when nothing else is logged (daemon/logging.h, NonBlockingWriter).
  boost::asio::steady_timer log_flush_timer_{control_};
  void flush_log_every_second();
  // Set by stop(): cancel() cannot reach a timer whose expiry is already
  // queued, and a re-arming loop (READY polling every 20 ms until every
  // first check or two check timeouts, the watchdog) would otherwise keep the
  // control loop, and the process, alive after SIGTERM.
  bool stopping_ = false;
  // Set by the SIGTERM/SIGINT handler, before VRRP's shutdown and stop():
  // a SIGHUP taken in the same turn of the loop is not applied.
  bool stop_requested_ = false;
  // Declared last: destroyed first, while control_ still exists.
  std::unique_ptr<vrrp::Service> vrrp_;
};

}  // namespace daemon_
