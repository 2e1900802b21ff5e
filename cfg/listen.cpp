#include "cfg/listen.h"

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
