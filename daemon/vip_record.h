// The VIPs this daemon may hold, recorded for whoever cleans up after it.
//
// A daemon that dies without its own clean-up (SIGKILL, the OOM killer, a
// watchdog abort) leaves its VIPs on the interface. The next start removes
// them (vrrp/engine.cpp, as keepalived), but when that start fails (a config
// edited into a file that does not load, systemd's start limit) the node
// keeps answering ARP for the VIP beside the peer that took over: clients
// flap between a live master and a node with no proxy. Under systemd the
// daemon writes the list of its configured VIPs to $RUNTIME_DIRECTORY/vips
// (at start, before any is added, and after every applied reload), and the
// unit's ExecStopPost runs `vipproxy release-vips`, which removes those
// still present. systemd runs ExecStopPost after every stop, clean or not,
// and before the runtime directory is removed; after a clean stop the daemon
// has removed them itself and there is nothing to do.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "cfg/config.h"

namespace daemon_::vip_record {

struct Entry {
  std::string device;   // interface name
  std::string address;  // IPv4 or IPv6 literal
  unsigned prefix_len = 32;
  bool operator==(const Entry&) const = default;
};

// Every configured VIP of `c`, on its device (the instance's interface unless
// the VIP names one).
std::vector<Entry> entries(const cfg::Config& c);

// One "DEVICE ADDRESS/PREFIX" line per entry.
std::string format(const std::vector<Entry>& e);

// The lines format() writes. Throws std::invalid_argument naming the line of
// anything else (a file that is not ours is not acted on).
std::vector<Entry> parse(const std::string& text);

// Where the daemon records (and release-vips reads) the list: the runtime
// directory systemd gives the unit ($RUNTIME_DIRECTORY; the first, if it
// names several), "" when not run by systemd with one.
std::string default_path(const char* runtime_directory_env);

// Writes the record of `c` to `path` (replacing it whole: a reader never sees
// half a file). Returns "" or why it could not.
std::string write(const std::string& path, const cfg::Config& c);

// `vipproxy release-vips [FILE]`: removes each recorded VIP still on its
// interface. 0 when every recorded VIP is off its interface after (or there
// is no record), 1 otherwise, 2 for a bad command line or record.
int run_cli(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace daemon_::vip_record
