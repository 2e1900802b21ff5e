// The admin endpoint (loopback by default): GET /status (JSON) and
// GET /metrics (Prometheus text format). Runs on the control thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

namespace daemon_ {

class Daemon;

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io, const Daemon& d);
  void listen();  // throws std::system_error naming the address
  void stop();

  std::string status_json() const;
  std::string metrics_text() const;

 private:
  void accept();

  boost::asio::io_context& io_;
  const Daemon& daemon_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace daemon_
