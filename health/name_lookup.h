// Host names looked up on threads of their own, for a reload's new backends
// (daemon/reload.cpp). Checks never look names up: each connects to its
// backend's resolved address (health/checker.h).
//
// getaddrinfo cannot be interrupted, and a name server that does not answer
// holds it for glibc's timeout (5 s per try and server by default). Asio's
// resolver runs every lookup of an io_context on one private thread, so one
// silent name delayed every other name's check behind it (a healthy backend
// timed out its checks and went DOWN), and its pending call kept the
// io_context's run(), and the daemon's stop, going until it returned. Here
// each name gets a detached thread of its own, the io_context never waits
// for it, and at most one runs per name: a lookup asked for while the same
// name's is pending joins it (a dead name server and a 1 s check interval
// would otherwise pile threads up).
//
// The answer is posted to the executor each caller gave, unless that caller
// cancelled or the registry was abandoned first. Abandoning and posting
// happen under one mutex, so once abandon_all() has returned nothing is
// posted any more: the owner of the io_context may stop and destroy it
// while lookups are still waiting for a name server.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace health {

class NameLookups {
 public:
  // What a lookup found: every address, in getaddrinfo's order, or why none.
  struct Found {
    boost::system::error_code error;
    std::vector<boost::asio::ip::address> addresses;
  };
  // Runs on the lookup's own thread. The default is getaddrinfo
  // (system_resolve); unit tests give one they control.
  using Resolve = std::function<Found(const std::string& host)>;
  // `error`: none, or what Asio's resolver would have said (asio::error::
  // host_not_found...). `endpoints`: every address found, at the caller's port.
  using Answer =
      std::function<void(const boost::system::error_code& error, std::vector<boost::asio::ip::tcp::endpoint> endpoints)>;

  explicit NameLookups(Resolve resolve = system_resolve);
  // Abandons every pending lookup (their threads end unheard).
  ~NameLookups();
  NameLookups(const NameLookups&) = delete;
  NameLookups& operator=(const NameLookups&) = delete;

  // Looks `host` (a name; an address literal works too, without a name
  // server) up and posts `answer` to `ex` once, with its addresses at `port`.
  // The returned function cancels: `answer` is then not called; calling it
  // after the answer, or twice, does nothing. The lookup's thread runs on
  // until getaddrinfo returns, and a call for the same name meanwhile joins
  // it instead of starting another.
  std::function<void()> look_up(const std::string& host, uint16_t port, boost::asio::any_io_executor ex,
                                Answer answer);

  // For good: nothing is posted once this returns, and later look_up()
  // calls start nothing and are never answered. Daemon::stop() calls it; so
  // does the destruction of the io_context that owns the registry.
  void abandon_all();

  // Tests: resolve with `resolve` from now on instead of getaddrinfo (e.g.
  // so that a unit test's unknown name is not sent to the host's name
  // server). Control thread, before the lookups it is meant for.
  void resolve_with(Resolve resolve) { resolve_ = std::move(resolve); }

  // Names whose getaddrinfo is running now (one thread each).
  size_t in_flight() const;

  static Found system_resolve(const std::string& host);

 private:
  struct State;
  std::shared_ptr<State> state_;
  Resolve resolve_;
};

// The registry of an io_context (or any execution context): created on first
// use, abandoned when the context is destroyed, before its handlers are.
NameLookups& name_lookups(boost::asio::execution_context& ctx);

}  // namespace health
