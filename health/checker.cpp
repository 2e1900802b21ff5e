// The I/O around health::CheckSchedule (when to check) and health/verdict.h
// (what an answer means): one timer, one check in flight at a time, each
// check an Attempt object kept alive by its own pending operations.
// Beast and OpenSSL stay in this file so the rest of the program compiles fast.
#include "health/checker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "health/http_reply.h"
#include "health/patroni.h"
#include "health/schedule.h"
#include "health/verdict.h"

namespace health {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Executor = asio::strand<asio::io_context::executor_type>;

// close_notify exchange after the reply: short, it is courtesy, not the check.
constexpr std::chrono::milliseconds kTlsShutdownBound{250};
constexpr const char* kUserAgent = "vipproxy-check";

std::string strip_brackets(const std::string& h) {
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') return h.substr(1, h.size() - 2);
  return h;
}

bool is_ip_literal(const std::string& s) {
  error_code ec;
  asio::ip::make_address(s, ec);
  return !ec;
}

// Own formatting (not cfg::Endpoint::to_string): "[v6]:port" / "host:port".
std::string format_endpoint(const std::string& host, uint16_t port, bool omit_port) {
  const std::string h = strip_brackets(host);
  std::string out = h.find(':') != std::string::npos ? "[" + h + "]" : h;
  if (!omit_port) out += ":" + std::to_string(port);
  return out;
}

std::string ms_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

CheckResult result(Outcome o, std::string detail, unsigned http_status = 0) {
  CheckResult r;
  r.outcome = o;
  r.detail = std::move(detail);
  r.http_status = http_status;
  return r;
}

// ---------------------------------------------------------------------------
// One check: resolve, connect, (TLS, request, reply), close. Reports its
// result once through `done`, possibly before the polite close has finished.

class Attempt : public std::enable_shared_from_this<Attempt> {
 public:
  using Done = std::function<void(CheckResult)>;

  Attempt(Executor ex, std::shared_ptr<const cfg::Check> rule, cfg::Endpoint target, Done done)
      : ex_(ex),
        rule_(std::move(rule)),
        target_(std::move(target)),
        done_(std::move(done)),
        resolver_(ex),
        resolve_timer_(ex) {}
  virtual ~Attempt() = default;

  void start() {
    started_ = Clock::now();
    deadline_ = started_ + rule_->timeout;
    const std::string host = strip_brackets(target_.host);
    error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (!ec) {  // numeric host: no resolver round trip
      connect({tcp::endpoint(addr, target_.port)});
      return;
    }
    // The threaded resolver cannot interrupt getaddrinfo(); the deadline
    // reports the timeout itself and the late answer is ignored.
    resolve_timer_.expires_at(deadline_);
    resolve_timer_.async_wait([self = shared_from_this(), this](error_code ec) {
      if (ec || cancelled_ || resolved_) return;
      resolver_.cancel();
      finish(result(Outcome::l4_timeout, "name resolution timed out after " + ms_text(rule_->timeout)));
    });
    resolver_.async_resolve(host, std::to_string(target_.port), tcp::resolver::numeric_service,
                            [self = shared_from_this(), this, host](error_code ec, tcp::resolver::results_type res) {
                              resolved_ = true;
                              resolve_timer_.cancel();
                              if (cancelled_ || !done_) return;
                              if (ec) {
                                finish(result(Outcome::l4_error, "cannot resolve " + host + ": " + ec.message()));
                                return;
                              }
                              std::vector<tcp::endpoint> eps;
                              for (const auto& e : res) eps.push_back(e.endpoint());
                              connect(std::move(eps));
                            });
  }

  // stop(): abandon the check; no result is reported afterwards.
  virtual void cancel() {
    cancelled_ = true;
    done_ = nullptr;
    resolver_.cancel();
    resolve_timer_.cancel();
    close_transport();
  }

 protected:
  virtual void connect(std::vector<tcp::endpoint> eps) = 0;
  virtual void close_transport() = 0;

  void finish(CheckResult r) {
    if (!done_) return;
    r.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(r));
  }

  // Connects `s` to eps[i], then to the next address on failure, on a socket
  // opened here (close-on-exec from the start: a script must not inherit a
  // check in flight) and kept for the connect. Asio's range connect closes
  // and reopens its socket for every address and reports a failed open as
  // "Operation canceled": when the daemon is out of descriptors (a worker's
  // accept4() takes each one freed) a healthy backend would be marked down
  // for our own shortage. Opening and closing a probe first does not help:
  // a worker can take the descriptor between the probe and asio's open.
  // `then` gets the last connect error (none: connected); a failed open
  // reports local_error itself.
  void connect_each(beast::tcp_stream& s, std::shared_ptr<const std::vector<tcp::endpoint>> eps, size_t i,
                    std::function<void(error_code)> then) {
    const tcp::endpoint& ep = (*eps)[i];
    error_code ec;
    if (s.socket().is_open()) s.socket().close(ec);
    const int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
      finish(result(Outcome::local_error, std::string("cannot open a socket: ") + std::strerror(errno)));
      return;
    }
    s.socket().assign(ep.protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      finish(result(Outcome::local_error, "cannot open a socket: " + ec.message()));
      return;
    }
    s.async_connect(ep, [self = shared_from_this(), this, &s, eps, i, then = std::move(then)](error_code ec) mutable {
      if (cancelled_) return;
      if (ec && ec != beast::error::timeout && i + 1 < eps->size()) {
        connect_each(s, std::move(eps), i + 1, std::move(then));
        return;
      }
      then(ec);
    });
  }

  CheckResult connect_failure(const error_code& ec) const {
    if (ec == beast::error::timeout)
      return result(Outcome::l4_timeout, "connection timed out after " + ms_text(rule_->timeout));
    if (ec == asio::error::connection_refused) return result(Outcome::l4_refused, "connection refused");
    return result(Outcome::l4_error, ec.message());
  }

  Executor ex_;
  std::shared_ptr<const cfg::Check> rule_;
  cfg::Endpoint target_;
  Done done_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  Clock::time_point started_{}, deadline_{};
  bool cancelled_ = false, resolved_ = false;
};

// Layer 4 only: a completed three-way handshake is success; then FIN, not RST.
class TcpAttempt final : public Attempt {
 public:
  using Attempt::Attempt;

 private:
  void connect(std::vector<tcp::endpoint> eps) override {
    if (eps.empty()) {
      finish(result(Outcome::l4_error, "no address to connect to"));
      return;
    }
    stream_.expires_at(deadline_);
    auto all = std::make_shared<const std::vector<tcp::endpoint>>(std::move(eps));
    connect_each(stream_, std::move(all), 0, [self = shared_from_this(), this](error_code ec) {
      if (ec) {
        finish(connect_failure(ec));
      } else {
        finish(result(Outcome::ok, "connected"));
      }
      close_transport();
    });
  }
  void close_transport() override {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_{ex_};
};

// HTTP(S): one request with `Connection: close`, the whole reply read, then
// the server's EOF awaited before closing, so no unread byte turns our close
// into an RST (what makes Patroni log tracebacks, patroni#2278).
template <bool Tls>
class HttpAttempt final : public Attempt {
  using Stream = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

 public:
  // `body_sink`: where the reply's body goes, for fetch_once() (checks keep no body).
  HttpAttempt(Executor ex, std::shared_ptr<const cfg::Check> rule, cfg::Endpoint target, Done done,
              std::shared_ptr<ssl::context> ctx, std::shared_ptr<std::string> body_sink = nullptr)
      : Attempt(ex, std::move(rule), std::move(target), std::move(done)),
        ctx_(std::move(ctx)),
        body_sink_(std::move(body_sink)) {
    if constexpr (Tls) {
      stream_.emplace(ex_, *ctx_);
    } else {
      stream_.emplace(ex_);
    }
    // GET when Patroni's body is to be judged (health/patroni.h).
    const std::string method = method_sent(*rule_);
    head_ = method == "HEAD";
    const http::verb v = http::string_to_verb(method);
    if (v != http::verb::unknown) {
      req_.method(v);
    } else {
      req_.method_string(method);
    }
    req_.target(rule_->path.empty() ? "/" : rule_->path);
    req_.version(11);
    req_.set(http::field::host, format_endpoint(target_.host, target_.port, target_.port == (Tls ? 443 : 80)));
    req_.set(http::field::user_agent, kUserAgent);
    req_.set(http::field::connection, "close");
  }

 private:
  auto& tcp_layer() { return beast::get_lowest_layer(*stream_); }

  void connect(std::vector<tcp::endpoint> eps) override {
    if (eps.empty()) {
      finish(result(Outcome::l4_error, "no address to connect to"));
      return;
    }
    // One deadline for the whole check: connect, handshake, request, reply.
    tcp_layer().expires_at(deadline_);
    auto all = std::make_shared<const std::vector<tcp::endpoint>>(std::move(eps));
    connect_each(tcp_layer(), std::move(all), 0, [self = shared_from_this(), this](error_code ec) {
      if (ec) {
        finish(connect_failure(ec));
        close_transport();
        return;
      }
      if constexpr (Tls) {
        handshake();
      } else {
        write_request();
      }
    });
  }

  void handshake() {
    const auto& tls = rule_->tls;
    const std::string name = tls.server_name.empty() ? strip_brackets(target_.host) : tls.server_name;
    // RFC 6066 section 3: SNI carries host names only, never address literals.
    if (!is_ip_literal(name) && !SSL_set_tlsext_host_name(stream_->native_handle(), name.c_str())) {
      finish(result(Outcome::tls_error, "cannot set TLS server name " + name));
      close_transport();
      return;
    }
    if (tls.verify) {
      // host_name_verification leaves OpenSSL's verify result unspecified on
      // a name mismatch; remember it to say so in the log.
      stream_->set_verify_callback([this, name](bool preverified, ssl::verify_context& vctx) {
        const bool ok = ssl::host_name_verification(name)(preverified, vctx);
        if (preverified && !ok) name_mismatch_ = name;
        return ok;
      });
    }
    stream_->async_handshake(ssl::stream_base::client, [self = shared_from_this(), this](error_code ec) {
      if (cancelled_) return;
      if (ec) {
        if (ec == beast::error::timeout) {
          finish(result(Outcome::l4_timeout, "TLS handshake timed out after " + ms_text(rule_->timeout)));
        } else {
          std::string detail = "TLS handshake failed: " + ec.message();
          const long v = SSL_get_verify_result(stream_->native_handle());
          if (!name_mismatch_.empty()) {
            detail += " (certificate does not match " + name_mismatch_ + ")";
          } else if (v != X509_V_OK) {
            detail += std::string(" (") + X509_verify_cert_error_string(v) + ")";
          }
          finish(result(Outcome::tls_error, std::move(detail)));
        }
        close_transport();
        return;
      }
      write_request();
    });
  }

  void write_request() {
    http::async_write(*stream_, req_, [self = shared_from_this(), this](error_code ec, std::size_t) {
      if (cancelled_) return;
      if (ec) {
        if (ec == beast::error::timeout) {
          finish(result(Outcome::l4_timeout, "request not sent within " + ms_text(rule_->timeout)));
        } else {
          finish(result(Outcome::l4_error, "sending request: " + ec.message()));
        }
        close_transport();
        return;
      }
      read_reply();
    });
  }

  void read_reply() {
    reply_.emplace(head_);
    read_more();
  }

  // Each piece the stream hands over goes to the pure parser
  // (health/http_reply.h) until it holds the whole reply.
  void read_more() {
    stream_->async_read_some(asio::buffer(scratch_), [self = shared_from_this(), this](error_code ec, std::size_t n) {
      if (cancelled_) return;
      if (n > 0) reply_->feed(std::string_view(scratch_.data(), n));
      if (reply_->state() == HttpReplyParser::State::need_more) {
        if (!ec) {
          read_more();
          return;
        }
        if (ec == asio::error::eof) reply_->finish();
        if constexpr (Tls) {
          // Python's ssl (Patroni) closes without close_notify; for a body
          // that ends at the close (Patroni sends no Content-Length), that
          // close is its end. Before the header it stays a layer-4 error.
          if (ec == ssl::error::stream_truncated && reply_->headers_done()) reply_->finish();
        }
      }
      on_reply(ec);
    });
  }

  CheckResult judge() const {
    return health::judge(*rule_, reply_->status(), reply_->body(), reply_->body_truncated());
  }

  void on_reply(const error_code& ec) {
    if (reply_->complete()) {
      if (body_sink_) *body_sink_ = reply_->body();
      finish(judge());
      close_gracefully();
      return;
    }
    if (reply_->state() == HttpReplyParser::State::malformed) {
      if (reply_->nothing_received()) {
        finish(result(Outcome::l4_error, "connection closed without a reply"));
        close_transport();
        return;
      }
      // Not HTTP (or truncated HTTP): a layer-7 problem. Still drain, so the
      // close is a FIN even towards a confused server.
      finish(result(Outcome::l7_malformed, "invalid HTTP reply: " + reply_->error()));
      close_gracefully();
      return;
    }
    if (ec == beast::error::timeout) {
      // basic_stream already closed the socket.
      finish(result(Outcome::l4_timeout, reply_->headers_done()
                                             ? "reply incomplete after " + ms_text(rule_->timeout)
                                             : "no reply within " + ms_text(rule_->timeout)));
      close_transport();
      return;
    }
    if (ec == asio::error::connection_reset) {
      finish(result(Outcome::l4_error, "connection reset by peer"));
      close_transport();
      return;
    }
    if constexpr (Tls) {
      if (ec == ssl::error::stream_truncated) {
        finish(result(Outcome::l4_error, "TLS stream truncated"));
        close_transport();
        return;
      }
    }
    finish(result(Outcome::l4_error, ec.message()));
    close_transport();
  }

  void close_gracefully() {
    if constexpr (Tls) {
      tcp_layer().expires_at(std::min(deadline_, Clock::now() + kTlsShutdownBound));
      stream_->async_shutdown([self = shared_from_this(), this](error_code) {
        if (cancelled_) return;
        drain();
      });
    } else {
      drain();
    }
  }

  // We sent `Connection: close`, so the server closes next: read until its
  // EOF (bounded by the check's deadline), then shutdown + close with an
  // empty receive buffer, which sends FIN.
  void drain() {
    tcp_layer().expires_at(deadline_);
    tcp_layer().async_read_some(asio::buffer(scratch_), [self = shared_from_this(), this](error_code ec, std::size_t) {
      if (cancelled_) return;
      if (!ec) {
        drain();
        return;
      }
      close_transport();
    });
  }

  void close_transport() override {
    if (!stream_) return;
    error_code ec;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
    tcp_layer().close();
  }

  std::shared_ptr<ssl::context> ctx_;
  std::shared_ptr<std::string> body_sink_;
  std::optional<Stream> stream_;
  std::string name_mismatch_;
  bool head_ = false;
  http::request<http::empty_body> req_;
  std::optional<HttpReplyParser> reply_;
  std::array<char, 4096> scratch_{};
};

// The client context of an https check; `error` says why it is unusable.
std::shared_ptr<ssl::context> make_tls_context(const cfg::Check& rule, std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3, ec);
  if (rule.tls.verify) {
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (rule.tls.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
      if (ec) error = "cannot load the default CA store: " + ec.message();
    } else {
      ctx->load_verify_file(rule.tls.ca_file, ec);
      if (ec) error = "cannot load ca_file " + rule.tls.ca_file + ": " + ec.message();
    }
  } else {
    ctx->set_verify_mode(ssl::verify_none, ec);
  }
  return ctx;
}

// ---------------------------------------------------------------------------

class CheckerImpl final : public Checker, public std::enable_shared_from_this<CheckerImpl> {
 public:
  CheckerImpl(asio::io_context& io, const cfg::Check& rule, std::string label, cfg::Endpoint target,
              std::chrono::milliseconds first_delay, OnChange on_change)
      : strand_(asio::make_strand(io)),
        rule_(std::make_shared<const cfg::Check>(rule)),
        label_(std::move(label)),
        target_(std::move(target)),
        first_delay_(first_delay),
        on_change_(std::move(on_change)),
        schedule_(rule),
        timer_(strand_) {
    if (rule.type == cfg::CheckType::http && rule.tls.enabled) setup_tls();
  }

  // Calls from outside the checker's own handlers are posted to its strand,
  // so the proxy's worker threads may call check_now(); from inside them
  // (e.g. OnChange calling stop()) they run at once. status() is not
  // synchronised: read it on the control-plane thread.
  void start() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_start(); });
  }
  void stop() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_stop(); });
  }
  void check_now() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_check_now(); });
  }
  void set_urgent(bool urgent) override {
    asio::dispatch(strand_, [self = shared_from_this(), urgent] {
      const bool was = self->schedule_.urgent();
      self->schedule_.set_urgent(urgent);
      if (urgent && !was && !self->schedule_.up()) self->do_check_now();
    });
  }
  void reconfigure(const cfg::Check& rule, cfg::Endpoint target) override {
    asio::dispatch(strand_, [self = shared_from_this(), rule, target = std::move(target)]() mutable {
      const bool tls_changed = rule.tls != self->rule_->tls;
      self->rule_ = std::make_shared<const cfg::Check>(rule);
      self->target_ = std::move(target);
      self->schedule_.retune(rule);
      if (tls_changed) {
        self->tls_ctx_.reset();
        self->tls_setup_error_.clear();
        if (rule.type == cfg::CheckType::http && rule.tls.enabled) self->setup_tls();
      }
      // Waiting for the next check: wait the new interval instead (a
      // shorter one must not wait out the old, longer one).
      if (self->running_ && !self->in_flight_ && self->status_.checks > 0) self->arm(self->schedule_.next_delay());
    });
  }
  const Status& status() const override { return status_; }

 private:
  void setup_tls() {
    tls_ctx_ = make_tls_context(*rule_, tls_setup_error_);
    if (!tls_setup_error_.empty()) spdlog::error("backend {}: {}", label_, tls_setup_error_);
  }

  void do_start() {
    if (running_) return;
    running_ = true;
    arm(first_delay_);
  }

  void do_stop() {
    running_ = false;
    ++timer_gen_;
    timer_.cancel();
    ++check_gen_;  // a result still on its way is ignored
    // Only the check whose result is pending is aborted. One that already
    // reported may still be waiting for the server's EOF: it holds no
    // reference to us and ends by its own deadline; cutting it short would
    // turn its FIN into the RST this class works to avoid.
    if (in_flight_)
      if (auto a = current_.lock()) a->cancel();
    in_flight_ = false;
    current_.reset();
  }

  void do_check_now() {
    if (!running_ || in_flight_) return;
    ++timer_gen_;
    timer_.cancel();
    run_check();
  }

  void arm(std::chrono::milliseconds delay) {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(delay);
    timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      // operation_aborted (stop, check_now) is the normal way out; a stale
      // generation means the timer was re-armed after this expiry queued.
      if (ec || gen != self->timer_gen_ || !self->running_) return;
      self->run_check();
    });
  }

  void run_check() {
    if (!running_ || in_flight_) return;
    in_flight_ = true;
    const uint64_t gen = ++check_gen_;
    auto done = [self = shared_from_this(), gen](CheckResult r) { self->on_result(gen, std::move(r)); };

    if (!tls_setup_error_.empty()) {
      // Nothing to connect with; report through the executor like any result.
      asio::post(strand_, [done, detail = tls_setup_error_] { done(result(Outcome::tls_error, detail)); });
      return;
    }

    std::shared_ptr<Attempt> a;
    if (rule_->type == cfg::CheckType::tcp) {
      a = std::make_shared<TcpAttempt>(strand_, rule_, target_, std::move(done));
    } else if (tls_ctx_) {
      a = std::make_shared<HttpAttempt<true>>(strand_, rule_, target_, std::move(done), tls_ctx_);
    } else {
      a = std::make_shared<HttpAttempt<false>>(strand_, rule_, target_, std::move(done), nullptr);
    }
    current_ = a;  // the attempt keeps itself alive; we only need to reach it
    a->start();
  }

  void on_result(uint64_t gen, CheckResult r) {
    if (!running_ || gen != check_gen_) return;
    in_flight_ = false;

    const Classification what = classify(r);
    using Effect = Classification::Effect;
    if (what.effect == Effect::no_evidence) {
      // Our shortage says nothing about the backend: keep its state, say why
      // (at most every 10 s), try again at the next interval.
      auto now = std::chrono::steady_clock::now();
      if (now - last_local_error_log_ > std::chrono::seconds(10)) {
        last_local_error_log_ = now;
        spdlog::error("backend {}: check not run: {}", label_, r.detail);
      }
      status_.last = std::move(r);
      if (running_) arm(schedule_.next_delay());
      return;
    }

    const bool ok = what.effect == Effect::success;
    ++status_.checks;
    if (!ok) ++status_.failures;
    if (what.malformed) ++status_.malformed;
    status_.last = std::move(r);

    const bool first = schedule_.state() == CheckSchedule::State::unknown;
    // The node's own answer ("not primary") may take the backend down at
    // once (check.down_on_status).
    const bool definitive = what.effect == Effect::definitive;
    const bool changed = ok ? schedule_.on_result(true)
                            : definitive ? schedule_.on_definitive_failure() : schedule_.on_result(false);
    status_.up = schedule_.up();
    status_.transitions = schedule_.transitions();

    const std::string reason = describe(status_.last);
    if (schedule_.state_changed()) {
      // One line per state change, with the evidence, at info/warn level.
      if (status_.up) {
        if (first) {
          spdlog::info("backend {} is UP: {}, first check", label_, reason);
        } else {
          const unsigned n = schedule_.consecutive_successes();
          spdlog::info("backend {} is UP: {} after {} success{}", label_, reason, n, n == 1 ? "" : "es");
        }
      } else {
        if (first) {
          spdlog::warn("backend {} is DOWN: {}, first check", label_, reason);
        } else {
          const unsigned n = schedule_.consecutive_failures();
          if (definitive && rule_->down_on_status)
            spdlog::warn("backend {} is DOWN: {}, the node's own answer", label_, reason);
          else
            spdlog::warn("backend {} is DOWN: {}, {} failure{}", label_, reason, n, n == 1 ? "" : "s");
        }
      }
    } else if (!ok) {
      spdlog::debug("backend {} check failed: {} ({} of {} before DOWN, state {})", label_, reason,
                    schedule_.consecutive_failures(), schedule_.fall(), to_string(schedule_.state()));
    }

    const bool reachability_changed = what.reachable != status_.reachable;
    status_.reachable = what.reachable;
    if ((changed || reachability_changed) && on_change_) on_change_(status_);
    if (running_) arm(schedule_.next_delay());  // on_change_ may have called stop()
  }

  Executor strand_;
  std::shared_ptr<const cfg::Check> rule_;
  std::string label_;
  cfg::Endpoint target_;
  std::chrono::milliseconds first_delay_;
  OnChange on_change_;
  std::chrono::steady_clock::time_point last_local_error_log_{};
  CheckSchedule schedule_;
  Status status_;
  asio::steady_timer timer_;
  std::shared_ptr<ssl::context> tls_ctx_;
  std::string tls_setup_error_;
  std::weak_ptr<Attempt> current_;
  bool running_ = false, in_flight_ = false;
  uint64_t timer_gen_ = 0, check_gen_ = 0;
};

}  // namespace

std::function<void()> fetch_once(boost::asio::io_context& io, const cfg::Check& check, cfg::Endpoint target,
                                 std::string path, std::chrono::milliseconds min_timeout, OnFetched done) {
  auto rule = std::make_shared<cfg::Check>(check);
  rule->type = cfg::CheckType::http;
  rule->method = "GET";
  rule->path = std::move(path);
  rule->expect_status = 200;
  rule->expect_role = cfg::ExpectRole::any;  // the status alone; the body goes to `done`
  rule->timeout = std::max(rule->timeout, min_timeout);
  auto strand = asio::make_strand(io);
  auto body = std::make_shared<std::string>();
  auto reported = std::make_shared<bool>(false);
  auto report = [done = std::move(done), body, reported](CheckResult r) {
    *reported = true;
    done(r, *body);
  };
  std::shared_ptr<Attempt> a;
  if (rule->tls.enabled) {
    std::string error;
    auto ctx = make_tls_context(*rule, error);
    if (!error.empty()) {
      asio::post(strand, [report, error] { report(result(Outcome::tls_error, error)); });
      return [] {};
    }
    a = std::make_shared<HttpAttempt<true>>(strand, rule, std::move(target), std::move(report), ctx, body);
  } else {
    a = std::make_shared<HttpAttempt<false>>(strand, rule, std::move(target), std::move(report), nullptr, body);
  }
  asio::dispatch(strand, [a] { a->start(); });
  std::weak_ptr<Attempt> weak = a;
  return [weak, strand, reported] {
    asio::dispatch(strand, [weak, reported] {
      // Once reported, the attempt only waits for the server's EOF: cutting
      // that short would turn our FIN into an RST (see CheckerImpl::do_stop).
      if (auto a = weak.lock(); a && !*reported) a->cancel();
    });
  };
}

std::shared_ptr<Checker> Checker::create(boost::asio::io_context& io, const cfg::Check& rule, std::string label,
                                         cfg::Endpoint target, std::chrono::milliseconds first_delay,
                                         OnChange on_change) {
  return std::make_shared<CheckerImpl>(io, rule, std::move(label), std::move(target), first_delay,
                                       std::move(on_change));
}

}  // namespace health
