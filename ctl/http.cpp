#include "ctl/http.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

#include "health/name_lookup.h"

namespace ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::pair<std::string, unsigned short> split_host_port(const std::string& s, unsigned short default_port) {
  std::string host = s, port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos) throw std::invalid_argument("bad address '" + s + "'");
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') throw std::invalid_argument("bad address '" + s + "'");
      port = s.substr(close + 2);
    }
  } else if (auto c = s.rfind(':'); c != std::string::npos && s.find(':') == c) {
    host = s.substr(0, c);
    port = s.substr(c + 1);
  }
  if (host.empty()) throw std::invalid_argument("bad address '" + s + "': no host");
  if (port.empty()) return {host, default_port};
  unsigned long p = 0;
  try {
    size_t used = 0;
    p = std::stoul(port, &used);
    if (used != port.size()) throw std::invalid_argument("x");
  } catch (const std::exception&) {
    throw std::invalid_argument("bad port in '" + s + "'");
  }
  if (p == 0 || p > 65535) throw std::invalid_argument("bad port in '" + s + "'");
  return {host, static_cast<unsigned short>(p)};
}

std::string host_header(const std::string& host, unsigned short port) {
  // RFC 9110 §7.2: uri-host [":" port], an IPv6 literal in brackets
  // (RFC 3986 §3.2.2).
  bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

HttpResult http_request(const std::string& host, unsigned short port, const std::string& method,
                        const std::string& target, const std::string& body,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::chrono::milliseconds timeout) {
  HttpResult out;
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buf;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  if (req.method() == http::verb::unknown) req.method_string(method);
  req.set(http::field::host, host_header(host, port));
  req.set(http::field::user_agent, "vipproxy-ctl");
  req.set(http::field::connection, "close");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);
  auto start = std::chrono::steady_clock::now();
  auto fail = [&](const char* what, const beast::error_code& ec) {
    if (out.error.empty()) out.error = std::string(what) + ": " + ec.message();
  };
  stream.expires_after(timeout);
  // Not Asio's resolver: its one private thread is joined when `io` goes,
  // so a name server that never answers held `vipproxy status` or `doctor`
  // for glibc's timeout (5 s per try and server) past the one asked for.
  // A lookup of its own thread is left behind unheard instead
  // (health/name_lookup.h); an address literal needs no name server.
  bool answered = false;
  auto waiting = asio::make_work_guard(io);  // the lookup's thread is no work of io's
  auto cancel_lookup = health::name_lookups(io).look_up(
      host, port, io.get_executor(), [&](const boost::system::error_code& ec, std::vector<tcp::endpoint> eps) {
        answered = true;
        waiting.reset();
        if (ec || eps.empty()) return fail("resolve", ec ? ec : boost::system::error_code(asio::error::host_not_found));
        stream.async_connect(eps, [&](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return fail("connect", ec);
          out.connected = true;
          http::async_write(stream, req, [&](beast::error_code ec, size_t) {
            if (ec) return fail("write", ec);
            http::async_read(stream, buf, parser, [&](beast::error_code ec, size_t) {
              if (ec) return fail("read", ec);
              out.ok = true;
              out.status = parser.get().result_int();
              out.body = parser.get().body();
              out.latency =
                  std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
            });
          });
        });
      });
  io.run_for(timeout + std::chrono::milliseconds(500));
  cancel_lookup();
  if (!answered && out.error.empty())
    out.error = "resolve: no answer for '" + host + "' within " + std::to_string(timeout.count()) + " ms";
  if (!out.ok && out.error.empty()) out.error = "timed out";
  if (!out.ok && out.error.find("timed out") == std::string::npos && out.error.find("timeout") != std::string::npos)
    out.error = "timed out after " + std::to_string(timeout.count()) + " ms";
  return out;
}

}  // namespace ctl
