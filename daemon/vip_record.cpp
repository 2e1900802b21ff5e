#include "daemon/vip_record.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "vrrp/address.h"
#include "vrrp/kernel.h"
#include "vrrp/netlink.h"

namespace daemon_::vip_record {

std::vector<Entry> entries(const cfg::Config& c) {
  std::vector<Entry> out;
  for (const auto& inst : c.vrrp)
    for (const auto& va : inst.virtual_ipaddresses)
      out.push_back({va.device.empty() ? inst.interface : va.device, va.address, va.prefix_len});
  return out;
}

std::string format(const std::vector<Entry>& e) {
  std::string s;
  for (const auto& x : e) s += x.device + " " + x.address + "/" + std::to_string(x.prefix_len) + "\n";
  return s;
}

std::vector<Entry> parse(const std::string& text) {
  std::vector<Entry> out;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    auto bad = [&] { return std::invalid_argument("line " + std::to_string(n) + ": not 'DEVICE ADDRESS/PREFIX': " + line); };
    auto sp = line.find(' '), slash = line.rfind('/');
    if (sp == 0 || sp == std::string::npos || slash == std::string::npos || slash < sp) throw bad();
    Entry e{line.substr(0, sp), line.substr(sp + 1, slash - sp - 1), 0};
    auto ip = vrrp::IpAddress::parse(e.address);
    const std::string plen = line.substr(slash + 1);
    if (!ip || e.device.size() > 15 || plen.empty() || plen.size() > 3 ||
        plen.find_first_not_of("0123456789") != std::string::npos)
      throw bad();
    e.prefix_len = static_cast<unsigned>(std::stoul(plen));
    if (e.prefix_len > (ip->family == vrrp::Family::ipv4 ? 32u : 128u)) throw bad();
    out.push_back(std::move(e));
  }
  return out;
}

std::string default_path(const char* runtime_directory_env) {
  if (!runtime_directory_env || !*runtime_directory_env) return "";
  std::string d = runtime_directory_env;
  d = d.substr(0, d.find(':'));  // RuntimeDirectory= with several names: a colon-separated list
  return d.empty() ? "" : d + "/vips";
}

std::string write(const std::string& path, const cfg::Config& c) {
  const std::string tmp = path + ".tmp";
  const std::string text = format(entries(c));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return tmp + ": " + std::strerror(errno);
  ssize_t n = ::write(fd, text.data(), text.size());
  const int write_errno = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    ::unlink(tmp.c_str());
    return tmp + ": " + (n < 0 ? std::strerror(write_errno) : "short write");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return path + ": " + std::strerror(e);
  }
  return "";
}

int run_cli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  // argv[0] is "release-vips".
  std::string path = default_path(std::getenv("RUNTIME_DIRECTORY"));
  if (path.empty()) path = "/run/vipproxy/vips";
  if (argc > 2 || (argc == 2 && (argv[1][0] == '-' || !*argv[1]))) {
    err << "usage: vipproxy release-vips [FILE]   (default $RUNTIME_DIRECTORY/vips, else /run/vipproxy/vips)\n";
    return 2;
  }
  if (argc == 2) path = argv[1];
  // No record: not run by systemd with a runtime directory, or a stop
  // before the daemon got as far as writing it. Nothing of ours to remove.
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return 0;
  std::ifstream f(path);
  if (!f) {
    err << "vipproxy release-vips: " << path << ": cannot read it\n";
    return 1;
  }
  std::stringstream text;
  text << f.rdbuf();
  std::vector<Entry> list;
  try {
    list = parse(text.str());
  } catch (const std::invalid_argument& e) {
    err << "vipproxy release-vips: " << path << ": " << e.what() << "\n";
    return 2;
  }
  if (list.empty()) return 0;
  boost::asio::io_context io;
  std::unique_ptr<vrrp::Kernel> kernel;
  try {
    kernel = vrrp::make_netlink_kernel(io);
  } catch (const std::exception& e) {
    err << "vipproxy release-vips: " << e.what() << "\n";
    return 1;
  }
  int rc = 0;
  for (const auto& e : list) {
    auto link = kernel->link(e.device);
    if (!link) continue;  // the interface is gone, and its addresses with it
    vrrp::Vip v;
    v.address = *vrrp::IpAddress::parse(e.address);
    v.prefix_len = e.prefix_len;
    v.device = e.device;
    v.ifindex = link->ifindex;
    if (kernel->has_address(v) == false) continue;  // removed by the daemon's own stop: the usual case
    if (auto ec = kernel->del_address(v)) {
      err << "vipproxy release-vips: cannot remove " << e.address << "/" << e.prefix_len << " from " << e.device
          << ": " << ec.message() << "\n";
      rc = 1;
      continue;
    }
    out << "vipproxy release-vips: removed " << e.address << "/" << e.prefix_len << " from " << e.device
        << " (left by a daemon that did not stop cleanly)\n";
  }
  return rc;
}

}  // namespace daemon_::vip_record
