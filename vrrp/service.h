// Every VRRP instance of the configuration, owned by the daemon on its
// control io_context: one Engine per instance over one Kernel (netlink,
// raw sockets, AF_PACKET) and one Spawner (track scripts, notify hooks).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/json/array.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cfg/config.h"
#include "metrics/prometheus.h"
#include "vrrp/engine.h"
#include "vrrp/kernel.h"
#include "vrrp/spawn.h"

namespace vrrp {

class Service {
 public:
  // track.proxies: whether the proxy is healthy; nullopt while none of its
  // checks has answered yet (a proxy just added by a reload).
  using ProxyHealthy = std::function<std::optional<bool>(const std::string& proxy)>;

  Service(boost::asio::io_context& io, const std::vector<cfg::VrrpInstance>& instances, std::string node,
          ProxyHealthy proxy_healthy);
  // For tests: any Kernel (a fake).
  Service(boost::asio::io_context& io, const std::vector<cfg::VrrpInstance>& instances, std::string node,
          ProxyHealthy proxy_healthy, std::unique_ptr<Kernel> kernel);
  ~Service();

  // Opens every socket and starts every instance; throws std::exception with
  // a message naming the instance when one cannot start. In two steps for a
  // reload that adds the first instances: prepare() opens the sockets and
  // watches the kernel (throws, nothing started), launch() cannot fail.
  void start() {
    prepare();
    launch();
  }
  void prepare();
  void launch();
  // Track scripts and notify hooks wait until this is called: the daemon
  // calls it once it has dropped its capabilities (Spawner::release).
  void release_scripts();
  // Re-evaluates track.proxies now (the daemon calls it on every check change).
  void proxy_health_changed();
  // Graceful stop (SIGTERM): every MASTER sends a priority-0 advert so its
  // peer takes over after Skew_Time (RFC 5798 §6.4.3), VIPs are removed,
  // then `done` runs (on the io_context, after every instance has stopped).
  void shutdown(std::function<void()> done);

  // SIGHUP, after the daemon validated the new file: instances are matched
  // by name. Unchanged ones go on untouched; a change an engine can take in
  // place (priority, advert_int, preempt, auth, unicast peers, checksum
  // form, VIP prefix lengths, labels and order, track, notify, GARP) is
  // applied without leaving the current state; a change of interface, VRID,
  // version, which addresses on which devices, source address or between
  // multicast and unicast restarts that instance (as MASTER it first
  // sends priority 0, so the peer takes over at once). Removed instances
  // stop the same way, new ones start, after every stopped one (an address
  // owner renamed keeps its VIP). Throws, changing nothing, when a new
  // or restarted instance cannot be prepared (its interface does not exist,
  // the kernel refuses its raw socket): the new socket is opened before the
  // old instance stops, so a refused restart leaves the old one running.
  // In two steps, so the daemon can prepare everything of a reload before
  // it changes anything: prepare_reload() throws, changing nothing;
  // commit_reload() applies what it prepared and cannot fail.
  class ReloadPlan {
    friend class Service;
    struct Item {
      cfg::VrrpInstance inst;
      std::unique_ptr<Engine> fresh;  // new or restarted, prepared; null: kept (maybe reconfigured)
    };
    std::vector<Item> items;
  };
  ReloadPlan prepare_reload(const std::vector<cfg::VrrpInstance>& instances);
  void commit_reload(ReloadPlan plan);
  void reload(const std::vector<cfg::VrrpInstance>& instances) { commit_reload(prepare_reload(instances)); }

  boost::json::array status() const;
  // Prometheus (metrics/prometheus.h): the instances' counters and gauges.
  void metrics(metrics::Writer& w) const;
  std::string metrics() const;  // the same, alone

  const std::vector<std::unique_ptr<Engine>>& engines() const { return engines_; }

 private:
  boost::asio::io_context& io_;
  std::unique_ptr<Kernel> kernel_;
  Spawner spawner_;
  Engine::Env env();

  ProxyHealthy proxy_healthy_;
  std::string node_;
  std::vector<std::unique_ptr<Engine>> engines_;
  bool prepared_ = false;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace vrrp
