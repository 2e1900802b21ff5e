// One detached thread per name being looked up; see health/name_lookup.h.
#include "health/name_lookup.h"

#include <netdb.h>
#include <sys/socket.h>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

namespace health {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// What Asio's resolver says for each getaddrinfo error, so a check's
// "cannot resolve HOST: ..." reads as it did with asio::ip::tcp::resolver.
error_code from_gai(int rc, int saved_errno) {
  switch (rc) {
    case EAI_AGAIN:
      return asio::error::host_not_found_try_again;
    case EAI_BADFLAGS:
      return asio::error::invalid_argument;
    case EAI_FAIL:
      return asio::error::no_recovery;
    case EAI_FAMILY:
      return asio::error::address_family_not_supported;
    case EAI_MEMORY:
      return asio::error::no_memory;
    case EAI_NONAME:
#if defined(EAI_ADDRFAMILY)
    case EAI_ADDRFAMILY:
#endif
#if defined(EAI_NODATA) && (EAI_NODATA != EAI_NONAME)
    case EAI_NODATA:
#endif
      return asio::error::host_not_found;
    case EAI_SERVICE:
      return asio::error::service_not_found;
    case EAI_SOCKTYPE:
      return asio::error::socket_type_not_supported;
    default:  // EAI_SYSTEM: errno says
      return error_code(saved_errno, boost::system::system_category());
  }
}

}  // namespace

// Everything the lookup threads share with the registry. `mu` guards it all,
// and is held while an answer is posted: abandon_all() takes it too, so
// after abandon_all() no thread posts (health/name_lookup.h).
struct NameLookups::State {
  struct Waiter {
    asio::any_io_executor ex;
    uint16_t port;
    Answer answer;      // moved out by the one delivery that runs
    bool done = false;  // answered or cancelled
  };
  // One getaddrinfo in progress and who waits for it.
  struct Flight {
    std::vector<std::shared_ptr<Waiter>> waiters;
  };

  mutable std::mutex mu;
  bool abandoned = false;
  // By host name, while its thread runs (also after every waiter gave up:
  // the next one joins rather than start a second thread).
  std::map<std::string, std::shared_ptr<Flight>> flights;

  // Called with `mu` held.
  void post_answer(std::shared_ptr<Waiter> w, std::shared_ptr<const Found> found, std::shared_ptr<State> self) {
    asio::post(w->ex, [self = std::move(self), w, found] {
      {
        std::lock_guard<std::mutex> lock(self->mu);
        if (self->abandoned || w->done) return;
        w->done = true;
      }
      Answer answer = std::move(w->answer);
      w->answer = nullptr;
      std::vector<tcp::endpoint> eps;
      eps.reserve(found->addresses.size());
      for (const auto& a : found->addresses) eps.emplace_back(a, w->port);
      answer(found->error, std::move(eps));
    });
  }
};

NameLookups::NameLookups(Resolve resolve) : state_(std::make_shared<State>()), resolve_(std::move(resolve)) {}

NameLookups::~NameLookups() { abandon_all(); }

std::function<void()> NameLookups::look_up(const std::string& host, uint16_t port, asio::any_io_executor ex,
                                           Answer answer) {
  using Waiter = State::Waiter;
  using Flight = State::Flight;
  auto w = std::make_shared<Waiter>(Waiter{std::move(ex), port, std::move(answer)});
  std::shared_ptr<Flight> flight;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->abandoned) return [] {};
    auto& f = state_->flights[host];
    const bool start = !f;
    if (start) f = std::make_shared<Flight>();
    f->waiters.push_back(w);
    flight = f;
    if (start) {
      try {
        std::thread([state = state_, resolve = resolve_, host, flight] {
          Found found;
          try {
            found = resolve(host);
          } catch (const std::exception&) {
            found.error = asio::error::no_memory;  // std::bad_alloc, the only one expected
          }
          auto shared = std::make_shared<const Found>(std::move(found));
          std::lock_guard<std::mutex> lock(state->mu);
          if (auto it = state->flights.find(host); it != state->flights.end() && it->second == flight)
            state->flights.erase(it);
          if (state->abandoned) return;  // abandon_all() dropped the waiters
          for (auto& waiter : flight->waiters) state->post_answer(waiter, shared, state);
          flight->waiters.clear();  // the posted handlers hold them now
        }).detach();
      } catch (const std::system_error&) {
        // No thread to be had (a thread limit): our own shortage, said as such.
        state_->flights.erase(host);
        Found none;
        none.error = boost::system::errc::make_error_code(boost::system::errc::resource_unavailable_try_again);
        state_->post_answer(w, std::make_shared<const Found>(std::move(none)), state_);
        flight.reset();
      }
    }
  }
  // Weak: a cancel function kept after the answer holds nothing alive, and
  // the waiter (whose answer may hold the caller) dies with its flight.
  return [state = std::weak_ptr<State>(state_), flight = std::weak_ptr<Flight>(flight),
          weak = std::weak_ptr<Waiter>(w)] {
    auto s = state.lock();
    auto waiter = weak.lock();
    if (!s || !waiter) return;
    std::shared_ptr<Flight> f = flight.lock();
    std::lock_guard<std::mutex> lock(s->mu);
    waiter->done = true;
    if (f) std::erase(f->waiters, waiter);
    // `waiter` (and with it the answer) is released after the lock.
  };
}

void NameLookups::abandon_all() {
  std::vector<std::shared_ptr<State::Waiter>> dropped;  // released after the lock
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->abandoned = true;
  for (auto& [host, flight] : state_->flights) {
    for (auto& w : flight->waiters) {
      w->done = true;
      dropped.push_back(std::move(w));
    }
    flight->waiters.clear();
  }
}

size_t NameLookups::in_flight() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->flights.size();
}

NameLookups::Found NameLookups::system_resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  errno = 0;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  Found found;
  if (rc != 0) {
    found.error = from_gai(rc, errno);
    return found;
  }
  for (const addrinfo* p = res; p; p = p->ai_next) {
    if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) || p->ai_addrlen > sizeof(sockaddr_storage)) continue;
    tcp::endpoint ep;
    ep.resize(p->ai_addrlen);
    std::memcpy(ep.data(), p->ai_addr, p->ai_addrlen);
    found.addresses.push_back(ep.address());
  }
  ::freeaddrinfo(res);
  if (found.addresses.empty()) found.error = asio::error::host_not_found;
  return found;
}

namespace {

// The registry as a service of its execution context: the context shuts its
// services down (newest first, so before the scheduler) at the start of its
// destructor, and abandoning there means no lookup thread posts to a
// context being destroyed.
class Service final : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;
  explicit Service(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  NameLookups lookups;

 private:
  void shutdown() override { lookups.abandon_all(); }
};

asio::execution_context::id Service::id;

}  // namespace

NameLookups& name_lookups(asio::execution_context& ctx) { return asio::use_service<Service>(ctx).lookups; }

}  // namespace health
