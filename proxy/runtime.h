// State shared between the control thread (health checks, admin, VRRP) and
// the worker threads (sessions). Workers only read eligibility and bump
// session gauges; the control thread owns every decision.
//
// A ProxyRuntime is one *generation* of a proxy: its validated config and
// backend list never change after it is published to the workers. A SIGHUP
// reload builds a new generation that carries over, by name, the backends
// whose address did not change (their sessions, eligibility and counters go
// on) and the proxy's counters, then hands it to every worker.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cfg/config.h"
#include "proxy/balance.h"
#include "proxy/counters.h"

namespace proxy {

struct BackendRuntime {
  cfg::Backend cfg;                         // name and address never change (a new address is a new backend)
  boost::asio::ip::tcp::endpoint endpoint;  // resolved when the backend first appears
  std::atomic<bool> eligible{false};
  std::atomic<uint64_t> sessions{0};        // open now (leastconn, /status)
  std::atomic<uint64_t> sessions_total{0};
  std::atomic<uint64_t> connect_errors{0};
};

// What survives every generation of a proxy with the same name.
struct ProxyStats {
  explicit ProxyStats(size_t workers);
  std::atomic<uint64_t> rr_ticket{0};
  std::atomic<uint64_t> sessions_current{0};  // maxconn is per proxy, across workers
  std::vector<std::unique_ptr<ProxyCounters>> per_worker;  // index = worker
};

struct ProxyRuntime {
  // `previous`: the running generation of the same proxy, if any; its
  // backends with the same name and address and its stats are carried over.
  ProxyRuntime(cfg::Proxy c, size_t workers, const ProxyRuntime* previous = nullptr);

  const cfg::Proxy cfg;
  const std::vector<std::shared_ptr<BackendRuntime>> backends;
  // `first`: the backend new sessions go to (npos: none eligible). Written by
  // the control thread only (elect_first), read by workers.
  std::atomic<size_t> current{npos};
  const std::shared_ptr<ProxyStats> stats;

  // Candidates snapshot for balance::choose.
  void candidates(std::vector<Candidate>& out) const;
  // Sum of a counter over all workers.
  uint64_t total(std::atomic<uint64_t> ProxyCounters::*member) const;
  // Index of `b` in backends, or npos.
  size_t index_of(const BackendRuntime* b) const;
};

}  // namespace proxy
