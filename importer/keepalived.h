// keepalived.conf -> plain structs. Pure: text in, structs out, no I/O.
//
// Two steps: the text becomes a tree of statements and `{ }` blocks
// (parse_tree: comments, quotes and brace balance), then the VRRP part of the
// tree becomes typed structs (parse). keepalived's own vocabulary is kept;
// times stay as keepalived writes them (seconds) until converted here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "importer/common.h"

namespace importer::keepalived {

// One statement: its words and, when it opens a block, the statements inside.
struct Node {
  int line = 0;
  std::vector<std::string> words;
  bool block = false;
  std::vector<Node> children;
  std::string raw;  // the source line it starts on, as written (comments included)
  std::string text() const;  // words joined by one space, plus " { ... }" for a block
};

// Throws ParseError on an unbalanced '{' (naming the line that opened it), a
// stray '}', an unterminated quote or a NUL byte.
std::vector<Node> parse_tree(std::string_view text, const std::string& file);

struct Script {  // vrrp_script NAME { ... }
  int line = 0;
  std::string name;
  // What keepalived runs: the first word after `script` (a quoted string is
  // one word), split again into the program and its arguments.
  std::optional<At<std::string>> script;
  // The words after that first one, which keepalived ignores ("killall" of an
  // unquoted `script killall -0 haproxy`); empty when the line is quoted.
  std::string script_ignored;
  std::optional<At<Duration>> interval, timeout;
  std::optional<At<unsigned>> rise, fall;
  std::optional<At<int>> weight;
  std::optional<At<std::string>> user;
  std::vector<Unhandled> unhandled;
};

struct TrackItem {  // an entry of track_script / track_interface
  int line = 0;
  std::string name;
  std::optional<int> weight;
};

struct VirtualIp {
  int line = 0;
  std::string address;            // without the prefix
  std::optional<unsigned> prefix;
  std::string device, label;
  std::vector<std::string> unhandled;  // brd, scope, no_track ...
};

struct Instance {  // vrrp_instance NAME { ... }
  int line = 0;
  std::string name;
  std::optional<At<std::string>> state, interface;
  std::optional<At<unsigned>> virtual_router_id, priority, version;
  std::optional<At<Duration>> advert_int, preempt_delay;
  std::optional<At<std::string>> advert_int_text;  // as written ("1", "0.1")
  std::optional<At<bool>> nopreempt;
  std::optional<At<std::string>> auth_type, auth_pass;
  std::vector<VirtualIp> virtual_ipaddresses;
  // Added and removed with the state like the others, but not listed in the
  // adverts (keepalived.conf(5), virtual_ipaddress_excluded).
  std::vector<VirtualIp> virtual_ipaddresses_excluded;
  int excluded_line = 0;  // the block's line, 0 when absent
  std::optional<At<std::string>> unicast_src_ip;  // also from `mcast_src_ip` (the same setting in keepalived)
  bool src_ip_from_mcast = false;                 // the last of the two was `mcast_src_ip`
  std::vector<At<std::string>> unicast_peers;
  std::vector<TrackItem> track_scripts, track_interfaces;
  std::optional<At<std::string>> notify_master, notify_backup, notify_fault, notify_stop, notify;
  std::optional<At<Duration>> garp_master_delay, garp_master_refresh, garp_interval;
  std::optional<At<unsigned>> garp_master_repeat;
  std::vector<Unhandled> unhandled;
};

struct Config {
  std::optional<At<unsigned>> vrrp_version;       // global_defs vrrp_version
  std::optional<At<std::string>> script_user;     // global_defs script_user
  std::optional<At<Duration>> garp_master_delay, garp_master_refresh, garp_interval;  // vrrp_garp_* globals
  std::optional<At<unsigned>> garp_master_repeat;
  std::optional<At<unsigned>> vrrp_rt_priority;   // global_defs vrrp_rt_priority
  std::vector<Script> scripts;
  std::vector<Instance> instances;
  std::vector<Unhandled> unhandled;  // global_defs items, unknown blocks, include ...
  const Script* find_script(std::string_view name) const;
};

// Throws ParseError on malformed input (see parse_tree) and on numbers that
// are not numbers where a VRRP setting needs one.
Config parse(std::string_view text, const std::string& file);

}  // namespace importer::keepalived
