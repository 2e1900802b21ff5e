// One check on the wire (internal to health/): a TCP connect, or an HTTP(S)
// request and its whole reply, judged by health/verdict.h. The checker
// (health/checker.cpp) starts one attempt per check and keeps only a weak
// reference: an attempt lives as long as its own operations are pending.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/strand.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cfg/config.h"
#include "health/status.h"

namespace boost::asio::ssl {
class context;
}

namespace health::probe {

using Executor = boost::asio::strand<boost::asio::io_context::executor_type>;
using Done = std::function<void(CheckResult)>;

class Attempt {
 public:
  virtual ~Attempt() = default;
  // Connect, (TLS, request, reply), close. `done` is called once on
  // the executor, possibly before the polite close has finished.
  virtual void start() = 0;
  // Abandon the check: no result is reported afterwards.
  virtual void cancel() = 0;
};

// rule.type tcp: a connect; http: the rule's request, over TLS when `tls` is
// given (make_tls_context). `body`, when given, receives the reply's body.
// Connects to `address` (the backend's, as the proxy resolved it) on
// target.port; target.host names the host in the request and for TLS.
std::shared_ptr<Attempt> make(Executor ex, std::shared_ptr<const cfg::Check> rule, cfg::Endpoint target,
                              boost::asio::ip::address address, Done done,
                              std::shared_ptr<boost::asio::ssl::context> tls,
                              std::shared_ptr<std::string> body = nullptr);

// The client context of an https check; `error` says why it is unusable.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const cfg::Check& rule, std::string& error);

}  // namespace health::probe
