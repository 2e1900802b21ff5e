// One check on the wire: look the name up, connect, then for HTTP checks (TLS,)
// request, the whole reply and a polite close. Each attempt is kept alive by
// its own pending operations and reports its result once. Beast and OpenSSL
// stay in this file so the rest of the program compiles fast.
#include "health/probe.h"

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <type_traits>
#include <vector>

#include "health/http_reply.h"
#include "health/patroni.h"
#include "health/verdict.h"

namespace health::probe {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

// The SSL's ex_data slot of HttpAttempt::cert_requested_.
int cert_requested_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Called by OpenSSL when the server asks for a client certificate and none
// is configured (check.tls.cert_file empty): remember it, send none.
int no_client_certificate(SSL* ssl, X509**, EVP_PKEY**) {
  if (auto* asked = static_cast<bool*>(SSL_get_ex_data(ssl, cert_requested_index()))) *asked = true;
  return 0;
}

// The server's alert about the client certificate, said in the operator's
// terms: the usual cause of a Patroni with `verify_client: required` whose
// check fails. "" for any other error.
std::string client_certificate_hint(const error_code& ec, const cfg::TlsCheck& tls) {
  if (ec.category() != asio::error::get_ssl_category()) return {};
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      if (tls.cert_file.empty()) return " (the server requires a client certificate: set check.tls.cert_file)";
      return {};
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      if (!tls.cert_file.empty()) return " (the server refused the client certificate of " + tls.cert_file + ")";
      return {};
    default:
      return {};
  }
}

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

// ---------------------------------------------------------------------------
// One check: connect, (TLS, request, reply), close. Reports its
// result once through `done`, possibly before the polite close has finished.

class AttemptImpl : public Attempt, public std::enable_shared_from_this<AttemptImpl> {
 public:
  AttemptImpl(Executor ex, std::shared_ptr<const cfg::Check> rule, cfg::Endpoint target, asio::ip::address address,
              Done done)
      : ex_(ex),
        rule_(std::move(rule)),
        target_(std::move(target)),
        address_(address),
        done_(std::move(done)) {}

  void start() override {
    started_ = Clock::now();
    deadline_ = started_ + rule_->timeout;
    connect();
  }

  // stop(): abandon the check; no result is reported afterwards.
  void cancel() override {
    cancelled_ = true;
    done_ = nullptr;
    close_transport();
  }

 protected:
  virtual void connect() = 0;
  virtual void close_transport() = 0;

  // What the attempt knows beyond the error that ended it (HttpAttempt).
  virtual void amend(CheckResult&) {}

  void finish(CheckResult r) {
    if (!done_) return;
    amend(r);
    r.latency = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(r));
  }

  // Connects `s` to the backend's address on a socket opened here
  // (close-on-exec from the start: a script must not inherit a check in
  // flight). A failed open is our own shortage, reported as local_error
  // here (Asio's connect reported it as "Operation canceled", and a healthy
  // backend was marked down when the daemon was out of descriptors); `then`
  // gets the connect's error (none: connected).
  void open_and_connect(beast::tcp_stream& s, std::function<void(error_code)> then) {
    const tcp::endpoint ep(address_, target_.port);
    error_code ec;
    const int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) {
      finish(make_result(Outcome::local_error, std::string("cannot open a socket: ") + std::strerror(errno)));
      return;
    }
    s.socket().assign(ep.protocol(), fd, ec);
    if (ec) {
      ::close(fd);
      finish(make_result(Outcome::local_error, "cannot open a socket: " + ec.message()));
      return;
    }
    s.async_connect(ep, [self = shared_from_this(), this, then = std::move(then)](error_code ec) {
      if (cancelled_) return;
      then(ec);
    });
  }

  CheckResult connect_failure(const error_code& ec) const {
    if (ec == beast::error::timeout)
      return make_result(Outcome::l4_timeout, "connection timed out after " + ms_text(rule_->timeout));
    if (ec == asio::error::connection_refused) return make_result(Outcome::l4_refused, "connection refused");
    return make_result(Outcome::l4_error, ec.message());
  }

  Executor ex_;
  std::shared_ptr<const cfg::Check> rule_;
  cfg::Endpoint target_;
  asio::ip::address address_;
  Done done_;
  Clock::time_point started_{}, deadline_{};
  bool cancelled_ = false;
};

// Layer 4 only: a completed three-way handshake is success; then FIN, not RST.
class TcpAttempt final : public AttemptImpl {
 public:
  using AttemptImpl::AttemptImpl;

 private:
  void connect() override {
    stream_.expires_at(deadline_);
    open_and_connect(stream_, [self = shared_from_this(), this](error_code ec) {
      if (ec) {
        finish(connect_failure(ec));
      } else {
        finish(make_result(Outcome::ok, "connected"));
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
class HttpAttempt final : public AttemptImpl {
  using Stream = std::conditional_t<Tls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

 public:
  // `body_sink`: where the reply's body goes, for fetch_once() (checks keep no body).
  HttpAttempt(Executor ex, std::shared_ptr<const cfg::Check> rule, cfg::Endpoint target, asio::ip::address address,
              Done done,
              std::shared_ptr<ssl::context> ctx, std::shared_ptr<std::string> body_sink = nullptr)
      : AttemptImpl(ex, std::move(rule), std::move(target), address, std::move(done)),
        ctx_(std::move(ctx)),
        body_sink_(std::move(body_sink)) {
    if constexpr (Tls) {
      stream_.emplace(ex_, *ctx_);
      SSL_set_ex_data(stream_->native_handle(), cert_requested_index(), &cert_requested_);
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

  // A server that requires a client certificate (Patroni's verify_client:
  // required) refuses one missing only after the client's handshake is
  // done in TLS 1.3 (RFC 8446 section 4.4.2.4): its alert is often lost to
  // the reset of the close, and the check failed with a bare "connection
  // reset by peer". That it asked for one is the operator's clue.
  void amend(CheckResult& r) override {
    if (!cert_requested_ || (r.outcome != Outcome::l4_error && r.outcome != Outcome::tls_error)) return;
    if (r.detail.find("check.tls.cert_file") != std::string::npos) return;
    // Bytes of a reply came: the server took the check without a certificate
    // (`verify_client: optional`); the error is another one.
    if (reply_ && !reply_->nothing_received()) return;
    r.outcome = Outcome::tls_error;
    r.detail += " (the server asked for a client certificate, and check.tls.cert_file is not set)";
  }

  void connect() override {
    // One deadline for the whole check: connect, handshake, request, reply.
    tcp_layer().expires_at(deadline_);
    open_and_connect(tcp_layer(), [self = shared_from_this(), this](error_code ec) {
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
      finish(make_result(Outcome::tls_error, "cannot set TLS server name " + name));
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
          finish(make_result(Outcome::l4_timeout, "TLS handshake timed out after " + ms_text(rule_->timeout)));
        } else {
          std::string detail = "TLS handshake failed: " + ec.message();
          const long v = SSL_get_verify_result(stream_->native_handle());
          if (!name_mismatch_.empty()) {
            detail += " (certificate does not match " + name_mismatch_ + ")";
          } else if (v != X509_V_OK) {
            detail += std::string(" (") + X509_verify_cert_error_string(v) + ")";
          } else {
            detail += client_certificate_hint(ec, rule_->tls);  // TLS 1.2 refuses during the handshake
          }
          finish(make_result(Outcome::tls_error, std::move(detail)));
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
          finish(make_result(Outcome::l4_timeout, "request not sent within " + ms_text(rule_->timeout)));
        } else {
          finish(make_result(Outcome::l4_error, "sending request: " + ec.message()));
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
        finish(make_result(Outcome::l4_error, "connection closed without a reply"));
        close_transport();
        return;
      }
      // Not HTTP (or truncated HTTP): a layer-7 problem. Still drain, so the
      // close is a FIN even towards a confused server.
      finish(make_result(Outcome::l7_malformed, "invalid HTTP reply: " + reply_->error()));
      close_gracefully();
      return;
    }
    if (ec == beast::error::timeout) {
      // basic_stream already closed the socket.
      finish(make_result(Outcome::l4_timeout, reply_->headers_done()
                                             ? "reply incomplete after " + ms_text(rule_->timeout)
                                             : "no reply within " + ms_text(rule_->timeout)));
      close_transport();
      return;
    }
    if (ec == asio::error::connection_reset) {
      finish(make_result(Outcome::l4_error, "connection reset by peer"));
      close_transport();
      return;
    }
    if constexpr (Tls) {
      if (ec == ssl::error::stream_truncated) {
        finish(make_result(Outcome::l4_error, "TLS stream truncated"));
        close_transport();
        return;
      }
      // TLS 1.3: the server judges the client's certificate after the
      // client's handshake is done (RFC 8446 section 4.4.2.4), so its
      // refusal arrives as an alert on the first read.
      if (const std::string hint = client_certificate_hint(ec, rule_->tls); !hint.empty()) {
        finish(make_result(Outcome::tls_error, "TLS alert from the server: " + ec.message() + hint));
        close_transport();
        return;
      }
    }
    finish(make_result(Outcome::l4_error, ec.message()));
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
  bool cert_requested_ = false;  // the server's CertificateRequest, with no cert_file to answer it
  bool head_ = false;
  http::request<http::empty_body> req_;
  std::optional<HttpReplyParser> reply_;
  std::array<char, 4096> scratch_{};
};

}  // namespace

std::shared_ptr<Attempt> make(Executor ex, std::shared_ptr<const cfg::Check> rule, cfg::Endpoint target,
                              asio::ip::address address, Done done, std::shared_ptr<ssl::context> tls,
                              std::shared_ptr<std::string> body) {
  if (rule->type == cfg::CheckType::tcp)
    return std::make_shared<TcpAttempt>(ex, std::move(rule), std::move(target), address, std::move(done));
  if (tls)
    return std::make_shared<HttpAttempt<true>>(ex, std::move(rule), std::move(target), address, std::move(done),
                                               std::move(tls), std::move(body));
  return std::make_shared<HttpAttempt<false>>(ex, std::move(rule), std::move(target), address, std::move(done),
                                              nullptr, std::move(body));
}

namespace {

// OpenSSL's latest error, for a log line ("no start line", "bad decrypt").
std::string openssl_reason() {
  const unsigned long e = ERR_peek_last_error();
  const char* r = e ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  return r ? r : "unknown OpenSSL error";
}

// Never a prompt: OpenSSL's default asks the terminal for a key's
// passphrase, which would hang the daemon (or the check's thread). There
// is no passphrase support; an encrypted key is reported as such.
int refuse_passphrase(char*, int, int, void*) { return -1; }
int no_passphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

// check.tls.cert_file/key_file, HAProxy's `crt`: the chain from cert_file,
// the key from key_file or else from cert_file itself. Every refusal names
// the file and says what to do, as the check's failure reason.
std::string load_client_certificate(SSL_CTX* ctx, const cfg::TlsCheck& tls) {
  ERR_clear_error();
  const std::string& cert = tls.cert_file;
  const std::string& key = tls.key_file.empty() ? tls.cert_file : tls.key_file;
  for (const std::string* f : {&cert, &key}) {
    if (::access(f->c_str(), R_OK) != 0)
      return "cannot read " + std::string(f == &cert ? "cert_file " : "key_file ") + *f + ": " +
             std::strerror(errno);
  }
  // The first certificate is the client's, the rest its chain (RFC 8446
  // section 4.4.2); a key block in the same file is skipped here.
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    return "cannot load cert_file " + cert + ": no usable PEM certificate in it (OpenSSL: " + openssl_reason() + ")";
  BIO* bio = BIO_new_file(key.c_str(), "r");
  if (!bio) return "cannot read key " + key + ": " + openssl_reason();
  bool asked = false;
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, &asked);
  BIO_free(bio);
  if (!pkey) {
    const std::string reason = openssl_reason();
    if (asked)
      return "the key in " + key +
             " is encrypted, and vipproxy has no passphrase support: decrypt it (openssl pkey -in " + key +
             " -out NEW) and keep it readable by the daemon's user only";
    if (tls.key_file.empty())
      return "cert_file " + cert + " holds no private key: append the key to it, or set check.tls.key_file";
    return "cannot load key_file " + key + ": no usable PEM private key in it (OpenSSL: " + reason + ")";
  }
  // Asked before SSL_CTX_use_PrivateKey, whose own refusal says only "key
  // values mismatch".
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), pkey) != 1) {
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return "the key in " + key + " does not match the certificate in " + cert;
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);
  if (used != 1) return "cannot use the key in " + key + ": " + openssl_reason();
  return {};
}

// ca_file as HAProxy's ca-file reads it: a PEM file, or a directory whose
// .pem, .crt and .cer files (not hidden ones) are each loaded, in name
// order (HAProxy's configuration.txt, "ca-file"). Returns the error text,
// "" if loaded.
std::string load_ca(ssl::context& ctx, const std::string& path) {
  error_code ec;
  std::error_code fs_ec;
  if (!std::filesystem::is_directory(path, fs_ec)) {
    ctx.load_verify_file(path, ec);
    return ec ? "cannot load ca_file " + path + ": " + ec.message() : "";
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(path, fs_ec)) {
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    if (!name.starts_with('.') && (ext == ".pem" || ext == ".crt" || ext == ".cer") && e.is_regular_file(fs_ec))
      files.push_back(e.path().string());
  }
  if (fs_ec) return "cannot read the ca_file directory " + path + ": " + fs_ec.message();
  if (files.empty()) return "ca_file " + path + " is a directory without a .pem, .crt or .cer file";
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    ctx.load_verify_file(f, ec);
    if (ec) return "cannot load " + f + " (in ca_file " + path + "): " + ec.message();
  }
  return "";
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_context(const cfg::Check& rule, std::string& error) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3, ec);
  SSL_CTX_set_default_passwd_cb(ctx->native_handle(), refuse_passphrase);
  if (rule.tls.verify) {
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (rule.tls.ca_file.empty()) {
      ctx->set_default_verify_paths(ec);
      if (ec) error = "cannot load the default CA store: " + ec.message();
    } else {
      error = load_ca(*ctx, rule.tls.ca_file);
    }
  } else {
    ctx->set_verify_mode(ssl::verify_none, ec);
  }
  // A CA error is reported first; it is the one a check fails with anyway.
  if (rule.tls.cert_file.empty())
    SSL_CTX_set_client_cert_cb(ctx->native_handle(), no_client_certificate);
  else if (error.empty())
    error = load_client_certificate(ctx->native_handle(), rule.tls);
  return ctx;
}

}  // namespace health::probe
