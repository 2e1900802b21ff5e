// The I/O around health::CheckSchedule (when to check), health/verdict.h
// (what an answer means) and health/probe.h (one check on the wire): one
// timer, one check in flight at a time.
#include "health/checker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <tuple>
#include <vector>

#include "health/probe.h"
#include "health/schedule.h"
#include "health/verdict.h"

namespace health {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using error_code = boost::system::error_code;
using probe::Attempt;
using probe::Executor;
using probe::make_tls_context;

// ---------------------------------------------------------------------------

class CheckerImpl final : public Checker, public std::enable_shared_from_this<CheckerImpl> {
 public:
  CheckerImpl(asio::io_context& io, const cfg::Check& rule, std::string label, cfg::Endpoint target,
              asio::ip::address address, std::chrono::milliseconds first_delay, OnChange on_change)
      : strand_(asio::make_strand(io)),
        rule_(std::make_shared<const cfg::Check>(rule)),
        label_(std::move(label)),
        target_(std::move(target)),
        address_(address),
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
  void retire() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_retire(); });
  }
  void check_now() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_check_now(); });
  }
  void check_soon() override {
    asio::dispatch(strand_, [self = shared_from_this()] { self->do_check_soon(); });
  }
  void set_urgent(bool urgent) override {
    asio::dispatch(strand_, [self = shared_from_this(), urgent] {
      const bool was = self->schedule_.urgent();
      self->schedule_.set_urgent(urgent);
      if (urgent && !was && !self->schedule_.up()) self->do_check_now();
    });
  }
  void reconfigure(const cfg::Check& rule, cfg::Endpoint target, asio::ip::address address) override {
    asio::dispatch(strand_, [self = shared_from_this(), rule, target = std::move(target), address]() mutable {
      const bool tls_changed = rule.tls != self->rule_->tls;
      // What is asked, and of whom, as opposed to when and how often.
      const auto question = [](const cfg::Check& c) {
        return std::tie(c.type, c.port, c.method, c.path, c.expect_status, c.expect_role, c.tls);
      };
      const bool new_question =
          question(rule) != question(*self->rule_) || target != self->target_ || address != self->address_;
      self->rule_ = std::make_shared<const cfg::Check>(rule);
      self->target_ = std::move(target);
      self->address_ = address;
      self->schedule_.retune(rule);
      if (rule.type == cfg::CheckType::http && rule.tls.enabled) {
        // Read ca_file (and cert_file, key_file) again at every reload,
        // changed settings or not: files renewed in place and `systemctl
        // reload` is how certificates are rotated. Unchanged settings whose file cannot be read now keep
        // the context loaded before (a reload never makes things worse);
        // new ones fail as at start.
        std::string error;
        auto ctx = make_tls_context(rule, error);
        if (error.empty()) {
          self->tls_ctx_ = std::move(ctx);
          self->tls_setup_error_.clear();
        } else if (tls_changed || !self->tls_ctx_ || !self->tls_setup_error_.empty()) {
          self->tls_ctx_.reset();
          self->tls_setup_error_ = error;
          spdlog::error("backend {}: {}", self->label_, error);
        } else {
          spdlog::error("backend {}: {}; {}", self->label_, error,
                        rule.tls.cert_file.empty() ? "the CA loaded before stays"
                                                   : "the CA and client certificate loaded before stay");
        }
      } else {
        self->tls_ctx_.reset();
        self->tls_setup_error_.clear();
      }
      if (new_question && self->running_ && self->status_.checks > 0) {
        // The state stays (an UP backend stays eligible meanwhile), but it
        // answered another question: ask the new one at once rather than
        // keep the old verdict for an interval. A check in flight under the
        // old rule is left to end politely, its result ignored.
        if (self->in_flight_) {
          ++self->check_gen_;
          self->in_flight_ = false;
          self->current_.reset();
        }
        self->do_check_now();
        return;
      }
      // Waiting for the next check: a shorter new interval must not wait out
      // the old, longer one. Never later than already due, though: reloads
      // in a row (each re-reads a TLS check's CA) would otherwise push the
      // next check back each time.
      if (self->running_ && !self->in_flight_ && self->status_.checks > 0) {
        const auto delay = self->schedule_.next_delay();
        if (std::chrono::steady_clock::now() + delay < self->timer_.expiry()) self->arm(delay);
      }
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
    retired_gen_ = 0;
    // Every attempt still open ends now: the one whose result is pending,
    // and those that reported and wait for the server's EOF (bounded by the
    // check's timeout, but a server that ignores `Connection: close` held
    // the daemon's stop, SIGTERM with hard_stop_after 0s included, for the
    // whole timeout). A draining attempt has read everything sent so far,
    // so its close is still a FIN, not the RST of patroni#2278.
    for (auto& weak : attempts_)
      if (auto a = weak.lock()) a->cancel();
    attempts_.clear();
    in_flight_ = false;
    current_.reset();
  }

  void do_retire() {
    if (!running_) return;
    running_ = false;
    ++timer_gen_;
    timer_.cancel();
    // The check waiting for its reply goes on (on_result ignores its
    // result, then closes it); every other attempt has read its reply and
    // only waits for the server's close: closed now, as stop() does (a FIN).
    auto pending = in_flight_ ? current_.lock() : nullptr;
    retired_gen_ = pending ? check_gen_ : 0;
    for (auto& weak : attempts_)
      if (auto a = weak.lock(); a && a != pending) a->cancel();
    attempts_.clear();
    if (pending) attempts_.push_back(pending);  // stop() can still end it
    in_flight_ = false;
  }

  void do_check_now() {
    if (!running_ || in_flight_) return;
    ++timer_gen_;
    timer_.cancel();
    run_check();
  }

  void do_check_soon() {
    if (!running_ || in_flight_) return;
    if (!last_end_) {
      do_check_now();  // no check has ended yet: nothing to space from
      return;
    }
    // HAProxy's `observe layer4` with `on-error fastinter` does the same:
    // errors seen by traffic bring the next check to fastinter, they do not
    // run one per error. While the checks fail too (a switchover: the old
    // primary's Patroni says PostgreSQL is stopping, then 503), what they
    // confirm is worth having sooner: at most kUrgentInterval apart, so the
    // backend is DOWN, and the proxy's checks urgent, well before Patroni
    // has promoted the new primary.
    const auto gap = schedule_.transitioning()
                         ? std::min(schedule_.fast_interval(), CheckSchedule::kUrgentInterval)
                         : std::min(schedule_.fast_interval(), schedule_.next_delay());
    const auto earliest = *last_end_ + gap;
    const auto now = std::chrono::steady_clock::now();
    if (now >= earliest) {
      do_check_now();
    } else if (timer_.expiry() > earliest) {
      arm(std::chrono::ceil<std::chrono::milliseconds>(earliest - now));
    }
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
      asio::post(strand_, [done, detail = tls_setup_error_] { done(make_result(Outcome::tls_error, detail)); });
      return;
    }

    auto a = probe::make(strand_, rule_, target_, address_, std::move(done), tls_ctx_);
    current_ = a;  // the attempt keeps itself alive; we only need to reach it
    std::erase_if(attempts_, [](const std::weak_ptr<Attempt>& w) { return w.expired(); });
    attempts_.push_back(a);
    a->start();
  }

  void on_result(uint64_t gen, CheckResult r) {
    if (!running_ && retired_gen_ && gen == retired_gen_) {
      // The check in flight at retire() has its reply: not reported, and
      // its connection closed now instead of waiting for the server's.
      retired_gen_ = 0;
      if (auto a = current_.lock()) a->cancel();
      current_.reset();
      attempts_.clear();
      return;
    }
    if (!running_ || gen != check_gen_) return;
    in_flight_ = false;
    last_end_ = std::chrono::steady_clock::now();

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
  asio::ip::address address_;
  std::chrono::milliseconds first_delay_;
  OnChange on_change_;
  std::chrono::steady_clock::time_point last_local_error_log_{};
  // When the last check ended (check_soon spaces evidence-driven checks).
  std::optional<std::chrono::steady_clock::time_point> last_end_;
  CheckSchedule schedule_;
  Status status_;
  asio::steady_timer timer_;
  std::shared_ptr<ssl::context> tls_ctx_;
  std::string tls_setup_error_;
  std::weak_ptr<Attempt> current_;
  // Every attempt not yet ended (in flight, or draining after its result),
  // for stop().
  std::vector<std::weak_ptr<Attempt>> attempts_;
  bool running_ = false, in_flight_ = false;
  uint64_t timer_gen_ = 0, check_gen_ = 0;
  uint64_t retired_gen_ = 0;  // the check in flight at retire(), until its result
};

// One attempt of `rule`, outside any schedule (fetch_once, check_once).
std::function<void()> run_once(boost::asio::io_context& io, std::shared_ptr<const cfg::Check> rule,
                               cfg::Endpoint target, boost::asio::ip::address address, OnFetched done) {
  auto strand = asio::make_strand(io);
  auto body = std::make_shared<std::string>();
  auto report = [done = std::move(done), body](CheckResult r) { done(r, *body); };
  std::shared_ptr<ssl::context> ctx;
  if (rule->tls.enabled) {
    std::string error;
    ctx = make_tls_context(*rule, error);
    if (!error.empty()) {
      asio::post(strand, [report, error] { report(make_result(Outcome::tls_error, error)); });
      return [] {};
    }
  }
  auto a = probe::make(strand, rule, std::move(target), address, std::move(report), ctx, body);
  asio::dispatch(strand, [a] { a->start(); });
  std::weak_ptr<Attempt> weak = a;
  return [weak, strand] {
    asio::dispatch(strand, [weak] {
      // Once reported, the attempt only waits for the server's EOF: that
      // wait ends too (the daemon's stop must not wait for a server that
      // ignores `Connection: close`; see CheckerImpl::do_stop).
      if (auto a = weak.lock()) a->cancel();
    });
  };
}

}  // namespace

std::function<void()> fetch_once(boost::asio::io_context& io, const cfg::Check& check, cfg::Endpoint target,
                                 boost::asio::ip::address address, std::string path,
                                 std::chrono::milliseconds min_timeout, OnFetched done) {
  auto rule = std::make_shared<cfg::Check>(check);
  rule->type = cfg::CheckType::http;
  rule->method = "GET";
  rule->path = std::move(path);
  rule->expect_status = 200;
  rule->expect_role = cfg::ExpectRole::any;  // the status alone; the body goes to `done`
  rule->timeout = std::max(rule->timeout, min_timeout);
  return run_once(io, std::move(rule), std::move(target), address, std::move(done));
}

std::function<void()> check_once(boost::asio::io_context& io, const cfg::Check& rule, cfg::Endpoint target,
                                 boost::asio::ip::address address, OnFetched done) {
  return run_once(io, std::make_shared<const cfg::Check>(rule), std::move(target), address, std::move(done));
}

std::shared_ptr<Checker> Checker::create(boost::asio::io_context& io, const cfg::Check& rule, std::string label,
                                         cfg::Endpoint target, boost::asio::ip::address address,
                                         std::chrono::milliseconds first_delay, OnChange on_change) {
  return std::make_shared<CheckerImpl>(io, rule, std::move(label), std::move(target), address, first_delay,
                                       std::move(on_change));
}

}  // namespace health
