// health::NameLookups: answers delivered on the caller's executor, one
// thread per name however many wait for it, cancelled and abandoned waiters
// never answered. A gated resolver stands in for a name server that has not
// answered yet; the real getaddrinfo only sees "localhost" and address
// literals (no network).
#define BOOST_TEST_MODULE health_name_lookup
#include <boost/test/unit_test.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "health/name_lookup.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using health::NameLookups;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kDeadline = std::chrono::seconds(10);

// A name server that answers when told to: resolve() blocks until open().
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool is_open = false;
  std::vector<std::string> asked;  // host names, in the order asked
  std::map<std::string, NameLookups::Found> answers;

  void open() {
    std::lock_guard<std::mutex> lock(mu);
    is_open = true;
    cv.notify_all();
  }
  size_t asks() {
    std::lock_guard<std::mutex> lock(mu);
    return asked.size();
  }
  // Waits (bounded) until `n` lookups have reached the resolver.
  bool wait_asked(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, kDeadline, [&] { return asked.size() >= n; });
  }
};

// Shared with the lookup threads, which may outlive the test case.
NameLookups::Resolve gated(std::shared_ptr<Gate> g, std::shared_ptr<void> sentinel = nullptr) {
  return [g, sentinel](const std::string& host) {
    std::unique_lock<std::mutex> lock(g->mu);
    g->asked.push_back(host);
    g->cv.notify_all();
    g->cv.wait(lock, [&] { return g->is_open; });
    if (auto it = g->answers.find(host); it != g->answers.end()) return it->second;
    return NameLookups::Found{{}, {asio::ip::make_address("127.0.0.1"), asio::ip::make_address("::1")}};
  };
}

// Lets the lookup threads finish even when a test fails half way.
struct Opened {
  std::shared_ptr<Gate> g;
  ~Opened() { g->open(); }
};

struct Got {
  std::optional<error_code> error;
  std::vector<tcp::endpoint> eps;
  std::thread::id on;
};

NameLookups::Answer record(Got& got) {
  return [&got](const error_code& ec, std::vector<tcp::endpoint> eps) {
    got.error = ec;
    got.eps = std::move(eps);
    got.on = std::this_thread::get_id();
  };
}

// Runs `io` until `done()` or the deadline; true if done.
template <class Pred>
bool run_until(asio::io_context& io, Pred done) {
  const auto end = Clock::now() + kDeadline;
  io.restart();
  while (!done() && Clock::now() < end) {
    io.run_one_for(std::chrono::milliseconds(10));
    io.restart();
  }
  return done();
}

template <class Pred>
bool wait_for(Pred done) {
  const auto end = Clock::now() + kDeadline;
  while (!done() && Clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return done();
}

}  // namespace

BOOST_AUTO_TEST_CASE(localhost_every_address_at_the_port_on_the_callers_thread) {
  asio::io_context io;
  NameLookups lookups;
  Got got;
  lookups.look_up("localhost", 5432, io.get_executor(), record(got));
  BOOST_REQUIRE(run_until(io, [&] { return got.error.has_value(); }));
  BOOST_TEST(!*got.error, got.error->message());
  BOOST_TEST(!got.eps.empty());
  for (const auto& ep : got.eps) {
    BOOST_TEST(ep.port() == 5432);
    BOOST_TEST(ep.address().is_loopback(), ep.address().to_string());
  }
  BOOST_TEST((got.on == std::this_thread::get_id()));
  BOOST_TEST(wait_for([&] { return lookups.in_flight() == 0; }));
}

BOOST_AUTO_TEST_CASE(address_literals_need_no_name_server) {
  asio::io_context io;
  NameLookups lookups;
  Got v4, v6;
  lookups.look_up("127.0.0.1", 80, io.get_executor(), record(v4));
  lookups.look_up("::1", 8008, io.get_executor(), record(v6));
  BOOST_REQUIRE(run_until(io, [&] { return v4.error && v6.error; }));
  BOOST_TEST(!*v4.error);
  BOOST_TEST(!*v6.error);
  BOOST_REQUIRE(v4.eps.size() == 1u);
  BOOST_REQUIRE(v6.eps.size() == 1u);
  BOOST_TEST((v4.eps[0] == tcp::endpoint(asio::ip::make_address("127.0.0.1"), 80)));
  BOOST_TEST((v6.eps[0] == tcp::endpoint(asio::ip::make_address("::1"), 8008)));
}

// A silent name server and checks every second must not pile up threads:
// one lookup per name, every waiter answered from it at its own port.
BOOST_AUTO_TEST_CASE(a_pending_name_is_joined_not_looked_up_again) {
  auto gate = std::make_shared<Gate>();
  Opened opened{gate};
  asio::io_context io;
  NameLookups lookups(gated(gate));
  Got a, b, c;
  lookups.look_up("db1.test", 5432, io.get_executor(), record(a));
  BOOST_REQUIRE(gate->wait_asked(1));
  lookups.look_up("db1.test", 8008, io.get_executor(), record(b));
  lookups.look_up("db2.test", 5432, io.get_executor(), record(c));
  BOOST_REQUIRE(gate->wait_asked(2));
  BOOST_TEST(lookups.in_flight() == 2u);
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    BOOST_TEST(gate->asked == (std::vector<std::string>{"db1.test", "db2.test"}), "db1.test was looked up twice");
  }
  BOOST_TEST(io.poll() == 0u, "answered before the name server did");
  gate->open();
  BOOST_REQUIRE(run_until(io, [&] { return a.error && b.error && c.error; }));
  BOOST_TEST(gate->asks() == 2u);
  BOOST_TEST(lookups.in_flight() == 0u);
  BOOST_REQUIRE(a.eps.size() == 2u);
  BOOST_REQUIRE(b.eps.size() == 2u);
  BOOST_TEST(a.eps[0].port() == 5432);
  BOOST_TEST(a.eps[1].port() == 5432);
  BOOST_TEST(b.eps[0].port() == 8008);
  BOOST_TEST(b.eps[1].port() == 8008);
  BOOST_TEST(b.eps[1].address().is_v6());
  BOOST_TEST(c.eps.size() == 2u);
  // Once answered, the name is looked up afresh.
  Got d;
  lookups.look_up("db1.test", 5432, io.get_executor(), record(d));
  BOOST_REQUIRE(run_until(io, [&] { return d.error.has_value(); }));
  BOOST_TEST(gate->asks() == 3u);
}

// A check that timed out cancels: its answer never comes and what it holds
// (the attempt) is let go at once; the name's lookup goes on, and the next
// check joins it.
BOOST_AUTO_TEST_CASE(a_cancelled_waiter_is_released_and_never_answered) {
  auto gate = std::make_shared<Gate>();
  Opened opened{gate};
  asio::io_context io;
  NameLookups lookups(gated(gate));
  auto held = std::make_shared<int>(0);
  std::weak_ptr<int> weak = held;
  bool first_answered = false;
  auto cancel = lookups.look_up("db1.test", 5432, io.get_executor(),
                                [held = std::move(held), &first_answered](const error_code&, std::vector<tcp::endpoint>) {
                                  first_answered = true;
                                });
  BOOST_REQUIRE(gate->wait_asked(1));
  cancel();
  BOOST_TEST(weak.expired(), "the cancelled answer is still held");
  cancel();  // twice: nothing
  BOOST_TEST(lookups.in_flight() == 1u);
  Got next;
  lookups.look_up("db1.test", 5433, io.get_executor(), record(next));
  gate->open();
  BOOST_REQUIRE(run_until(io, [&] { return next.error.has_value(); }));
  BOOST_TEST(gate->asks() == 1u);
  BOOST_TEST(next.eps.size() == 2u);
  io.restart();
  io.poll();
  BOOST_TEST(!first_answered);
  // Cancelling after the answer does nothing either.
  Got late;
  auto cancel_late = lookups.look_up("db3.test", 1, io.get_executor(), record(late));
  BOOST_REQUIRE(run_until(io, [&] { return late.error.has_value(); }));
  cancel_late();
}

// The daemon's stop: nothing is posted once abandon_all() has returned, even
// when the name server answers later; later look-ups start nothing.
BOOST_AUTO_TEST_CASE(abandoned_lookups_post_nothing) {
  auto gate = std::make_shared<Gate>();
  Opened opened{gate};
  asio::io_context io;
  NameLookups lookups(gated(gate));
  auto held = std::make_shared<int>(0);
  std::weak_ptr<int> weak = held;
  lookups.look_up("db1.test", 5432, io.get_executor(),
                  [held = std::move(held)](const error_code&, std::vector<tcp::endpoint>) { BOOST_ERROR("answered"); });
  BOOST_REQUIRE(gate->wait_asked(1));
  lookups.abandon_all();
  BOOST_TEST(weak.expired(), "the abandoned answer is still held");
  bool later = false;
  auto cancel = lookups.look_up("db2.test", 5432, io.get_executor(),
                                [&later](const error_code&, std::vector<tcp::endpoint>) { later = true; });
  BOOST_TEST(lookups.in_flight() == 1u);
  gate->open();
  // The thread ends (its flight is gone) without posting.
  BOOST_REQUIRE(wait_for([&] { return lookups.in_flight() == 0; }));
  io.restart();
  BOOST_TEST(io.poll() == 0u);
  BOOST_TEST(gate->asks() == 1u);
  BOOST_TEST(!later);
  cancel();
}

// A posted answer not yet run when abandon_all() comes is dropped too.
BOOST_AUTO_TEST_CASE(an_answer_posted_before_the_abandon_is_not_delivered) {
  auto gate = std::make_shared<Gate>();
  Opened opened{gate};
  asio::io_context io;
  NameLookups lookups(gated(gate));
  bool answered = false;
  lookups.look_up("db1.test", 5432, io.get_executor(),
                  [&answered](const error_code&, std::vector<tcp::endpoint>) { answered = true; });
  gate->open();
  BOOST_REQUIRE(wait_for([&] { return lookups.in_flight() == 0; }));  // posted, not run
  lookups.abandon_all();
  io.restart();
  io.poll();
  BOOST_TEST(!answered);
}

BOOST_AUTO_TEST_CASE(errors_are_asios_resolver_errors) {
  auto gate = std::make_shared<Gate>();
  Opened opened{gate};
  gate->answers["gone.test"] = NameLookups::Found{asio::error::host_not_found, {}};
  gate->open();
  asio::io_context io;
  NameLookups lookups(gated(gate));
  Got got;
  lookups.look_up("gone.test", 5432, io.get_executor(), record(got));
  BOOST_REQUIRE(run_until(io, [&] { return got.error.has_value(); }));
  BOOST_TEST((*got.error == asio::error::host_not_found));
  BOOST_TEST(got.eps.empty());
}

// The registry (and its io_context) gone while a lookup waits: the thread
// finishes on its own, touching neither.
BOOST_AUTO_TEST_CASE(a_destroyed_registry_leaves_its_threads_to_end_quietly) {
  auto gate = std::make_shared<Gate>();
  Opened opened{gate};
  auto sentinel = std::make_shared<int>(0);
  std::weak_ptr<int> weak = sentinel;
  {
    asio::io_context io;
    NameLookups lookups(gated(gate, sentinel));
    sentinel.reset();
    lookups.look_up("db1.test", 5432, io.get_executor(),
                    [](const error_code&, std::vector<tcp::endpoint>) { BOOST_ERROR("answered"); });
    BOOST_REQUIRE(gate->wait_asked(1));
  }
  gate->open();
  // The thread's copy of the resolver (and the sentinel in it) goes when it ends.
  BOOST_TEST(wait_for([&] { return weak.expired(); }));
}

// One registry per io_context, the same for every caller; an io_context
// destroyed with a lookup in flight is abandoned first.
BOOST_AUTO_TEST_CASE(name_lookups_is_the_io_contexts_own) {
  auto io = std::make_unique<asio::io_context>();
  auto& a = health::name_lookups(*io);
  BOOST_TEST(&a == &health::name_lookups(*io));
  asio::io_context other;
  BOOST_TEST(&a != &health::name_lookups(other));
  Got got;
  a.look_up("localhost", 5432, io->get_executor(), record(got));
  BOOST_REQUIRE(run_until(*io, [&] { return got.error.has_value(); }));
  BOOST_TEST(!*got.error);
  a.look_up("localhost", 5432, io->get_executor(),
            [](const error_code&, std::vector<tcp::endpoint>) { BOOST_ERROR("answered after the io_context"); });
  io.reset();  // its thread may still run; it must not post to a destroyed io_context
}
