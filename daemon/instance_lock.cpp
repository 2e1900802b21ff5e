#include "daemon/instance_lock.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace daemon_::instance_lock {

std::string vrrp_name(const cfg::VrrpInstance& v) {
  // The loader allows one family per instance (cfg/load_vrrp.cpp).
  const bool v6 = !v.virtual_ipaddresses.empty() && v.virtual_ipaddresses.front().is_ipv6;
  return "vipproxy/vrrp/" + v.interface + (v6 ? "/ipv6/" : "/ipv4/") + std::to_string(v.virtual_router_id);
}

Locks::~Locks() {
  for (auto& [name, fd] : held_) ::close(fd);
}

std::string Locks::take(const std::string& name) {
  if (holds(name)) return "";
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  // sun_path[0] stays NUL: an abstract name, sized by the address length.
  if (name.size() + 1 > sizeof a.sun_path) return "lock name '" + name + "' is too long";
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::string("cannot open the lock's socket: ") + std::strerror(errno);
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), len) < 0) {
    const int e = errno;
    ::close(fd);
    if (e == EADDRINUSE) return "held by another process";
    return std::string("cannot bind the lock's socket: ") + std::strerror(e);
  }
  held_[name] = fd;
  return "";
}

void Locks::adopt(Locks&& o) {
  for (auto& [name, fd] : o.held_) {
    if (held_.count(name)) ::close(fd);
    else held_[name] = fd;
  }
  o.held_.clear();
}

void Locks::keep_only(const std::map<std::string, std::string>& keep) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (keep.count(it->first)) {
      ++it;
    } else {
      ::close(it->second);
      it = held_.erase(it);
    }
  }
}

std::map<std::string, std::string> take_vrrp(const std::vector<cfg::VrrpInstance>& vrrp, const Locks& held,
                                             Locks& taken) {
  std::map<std::string, std::string> names;
  for (const auto& v : vrrp) {
    const std::string name = vrrp_name(v);
    names[name] = v.name;
    if (held.holds(name)) continue;
    const std::string why = taken.take(name);
    if (why.empty()) continue;
    const bool v6 = !v.virtual_ipaddresses.empty() && v.virtual_ipaddresses.front().is_ipv6;
    if (why == "held by another process")
      throw std::runtime_error("vrrp " + v.name + ": another vipproxy already runs VRID " +
                               std::to_string(v.virtual_router_id) + (v6 ? " (IPv6)" : " (IPv4)") + " on " +
                               v.interface + " on this host (network namespace): a second daemon on this file? (`ss " +
                               "-xap | grep " + name + "` names it)");
    throw std::runtime_error("vrrp " + v.name + ": " + why);
  }
  return names;
}

}  // namespace daemon_::instance_lock
