#include "cfg/listen.h"

#include <arpa/inet.h>

#include "cfg/syntax.h"

namespace cfg {

bool listens_clash(const Endpoint& a, const Endpoint& b) {
  if (a.port != b.port) return false;
  const std::string ha = syntax::canonical_host(a.host), hb = syntax::canonical_host(b.host);
  if (ha == hb) return true;
  auto covers = [](const std::string& w, const std::string& o) {
    if (w == "::") return true;
    return w == "0.0.0.0" && !syntax::is_ipv6(o);
  };
  return covers(ha, hb) || covers(hb, ha);
}

namespace {

bool is_localhost_name(const std::string& h) {  // canonical (lower case)
  std::string_view s = h;
  if (s.ends_with('.')) s.remove_suffix(1);
  return s == "localhost" || s.ends_with(".localhost");  // RFC 6761 section 6.3
}

bool is_loopback(const std::string& h) {
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;  // RFC 1122 3.2.1.3
  return h == "::1";  // canonical
}

}  // namespace

bool backend_is_listener(const Endpoint& listen, const Endpoint& backend, const std::vector<std::string>& local) {
  if (listen.port != backend.port) return false;
  const std::string l = syntax::canonical_host(listen.host), b = syntax::canonical_host(backend.host);
  if (l == b) return true;
  const bool any = l == "::" || l == "0.0.0.0";
  // "localhost" is 127.0.0.1 or ::1, whichever the resolver gives first.
  if (is_localhost_name(b)) return any || is_loopback(l);
  if (is_localhost_name(l)) return is_loopback(b);
  bool ours = is_loopback(b);
  for (const auto& v : local) ours = ours || syntax::canonical_host(v) == b;
  return ours && (l == "::" || (l == "0.0.0.0" && !syntax::is_ipv6(b)));
}

std::string bound_listen_clash(const std::vector<BoundListen>& listens) {
  auto as = [](const BoundListen& l) {
    std::string s = l.listen.to_string();
    return l.listen == l.bound ? s : s + " (bound to " + l.bound.to_string() + ")";
  };
  for (std::size_t i = 0; i < listens.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (listens_clash(listens[i].bound, listens[j].bound))
        return "proxy " + listens[i].proxy + ": listen " + as(listens[i]) + " clashes with proxy " +
               listens[j].proxy + "'s " + as(listens[j]) +
               ": expected each listen address:port once (the kernel would split clients between them)";
  return "";
}

}  // namespace cfg
