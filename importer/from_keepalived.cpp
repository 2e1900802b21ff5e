// keepalived.conf (parsed by importer/keepalived.cpp) -> the `vrrp` instances
// of a vipproxy configuration, with a note for every item that is not
// translated.
#include <algorithm>
#include <map>
#include <set>

#include "cfg/names.h"
#include "importer/converter.h"

namespace importer::detail {

namespace {

// keepalived's vrrp_script default interval (keepalived.conf(5)).
constexpr Duration kKeepalivedScriptInterval = 1000ms;

// The absolute files a shell command line redirects output to (`> F`,
// `>> F`, `2> F`, `&> F`), as written in the command itself; what a script
// it runs writes cannot be seen from here.
std::vector<std::string> redirect_targets(const std::string& cmd) {
  std::vector<std::string> out;
  for (std::size_t i = cmd.find('>'); i != std::string::npos; i = cmd.find('>', i + 1)) {
    std::size_t j = i + 1;
    if (j < cmd.size() && (cmd[j] == '>' || cmd[j] == '|')) ++j;
    if (j < cmd.size() && cmd[j] == '&') continue;  // >&2: a descriptor
    while (j < cmd.size() && (cmd[j] == ' ' || cmd[j] == '\t' || cmd[j] == '"' || cmd[j] == '\'')) ++j;
    std::size_t end = j;
    while (end < cmd.size() && std::string_view(" \t\"';|&)<>").find(cmd[end]) == std::string_view::npos) ++end;
    if (end > j && cmd[j] == '/') out.push_back(cmd.substr(j, end - j));
    i = end ? end - 1 : i;
  }
  return out;
}

// Where a hook or track script writing `path` stands under the packaged
// unit (packaging/vipproxy.service, ProtectSystem=strict, PrivateTmp=yes):
// "" where it may write and others see it, else why not.
std::string unit_write_problem(std::string path) {
  auto under = [&](std::string_view dir) {
    return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
  };
  if (under("/var/run")) path = "/run" + path.substr(8);  // a symlink to /run
  if (path == "/dev/null" || under("/var/lib/vipproxy") || under("/run/vipproxy")) return "";
  if (under("/tmp") || under("/var/tmp"))
    return "the packaged unit has a private /tmp (PrivateTmp=): the file is seen by the service's processes only";
  const std::string dir = path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
  const std::string file = path.substr(path.rfind('/') + 1);
  std::string why = "read-only under the packaged unit (ProtectSystem=strict): write it under /var/lib/vipproxy or "
                    "/run/vipproxy (/run/vipproxy/" + file + ")";
  // A drop-in for a directory every service shares would open far more
  // than the one file: only for a directory of its own.
  static const std::set<std::string> shared = {"/", "/run", "/var", "/var/lib", "/var/log", "/var/cache",
                                               "/var/spool", "/etc", "/usr", "/usr/local", "/opt", "/srv", "/root",
                                               "/home"};
  if (!shared.count(dir))
    why += ", or allow " + dir + " with a drop-in (systemctl edit vipproxy: [Service] ReadWritePaths=" + dir + ")";
  return why;
}

}  // namespace

std::string Converter::keepalived_reason(const std::string& text) const {
  auto starts = [&](std::string_view p) { return text.rfind(p, 0) == 0; };
  if (starts("enable_script_security"))
    return "vipproxy runs each track script as its own 'user' (or the daemon's user); there is no separate script security switch";
  if (starts("router_id")) return "vipproxy's node name is 'node' (vipproxy import --node NAME)";
  if (starts("notification_email") || starts("smtp_")) return "vipproxy sends no e-mail; use notify commands";
  if (starts("virtual_server") || starts("real_server") || starts("lvs_"))
    return "LVS load balancing has no equivalent (vipproxy proxies TCP itself)";
  if (starts("vrrp_sync_group")) return "sync groups have no equivalent; each instance elects on its own";
  if (starts("preempt")) return "preempting is the default (preempt: true)";
  if (starts("use_vmac") || starts("vmac_")) return "virtual MAC interfaces have no equivalent";
  if (starts("smtp_alert")) return "vipproxy sends no e-mail; use notify commands";
  return "no equivalent in vipproxy";
}

void Converter::instance(const ka::Instance& in, const ka::Config& k, std::set<std::string>& used_scripts) {
  const std::string& file = opts_.keepalived_file;
  cfg::VrrpInstance v;
  v.name = safe_name(in.name);
  if (v.name != in.name) knote(in.line, "instance name '" + in.name + "' written as '" + v.name + "'");
  if (in.interface) v.interface = in.interface->value;
  else knote(in.line, "vrrp_instance " + in.name + " has no 'interface': vipproxy needs one, add it");
  if (in.state) {
    if (auto st = cfg::names::parse<cfg::VrrpState>(cfg::syntax::lower(in.state->value))) v.state = *st;
    else not_translated(file, in.state->line, "state " + in.state->value, "expected MASTER or BACKUP; backup is written");
  }
  if (in.virtual_router_id) v.virtual_router_id = in.virtual_router_id->value;
  else knote(in.line, "vrrp_instance " + in.name + " has no 'virtual_router_id': vipproxy needs one, add it");
  // keepalived's vrrp_complete_instance() (vrrp.c) settles priority, state
  // and preemption together; the same rules here, each change said.
  bool wants_master = in.state && v.state == cfg::VrrpState::master;
  if (in.priority) {
    v.priority = in.priority->value;
  } else if (wants_master) {
    // No priority: 255 with state MASTER (the address owner), else 100.
    v.priority = 255;
    knote(in.state->line, "vrrp_instance " + in.name + " has 'state MASTER' and no 'priority': keepalived runs it "
                          "at priority 255 (the address owner, which always wins and preempts), so priority: 255 "
                          "is written; give a priority if that is not what you meant");
  }
  // No state: keepalived derives it from the priority (255: MASTER).
  if (!in.state && v.priority == 255) wants_master = true;
  // RFC 5798's address owner has its own interface address as the VIP;
  // vipproxy refuses such a VIP at start (it never removes the host's own
  // address: vrrp/vips.h claim_at_start), which the file alone cannot show.
  if (v.priority == 255)
    knote(in.priority ? in.priority->line : in.state ? in.state->line : in.line,
          "vrrp_instance " + in.name + " runs at priority 255: vipproxy takes it as keepalived does (MASTER at once, "
          "always preempts) with virtual addresses that are free; a VIP that is an address the host already has "
          "(RFC 5798's address owner) is refused at start (vipproxy never removes the host's own address), so "
          "check that no VIP of it is this node's own address");
  v.version = in.version ? in.version->value : k.vrrp_version ? k.vrrp_version->value : 2;
  if (in.advert_int) v.advert_int = in.advert_int->value;
  if (in.nopreempt) {
    if (v.priority == 255)
      knote(in.nopreempt->line, "'nopreempt' has no effect at priority 255: keepalived clears it (the address owner "
                                "always preempts), so preempt: true is kept");
    else if (wants_master)
      knote(in.nopreempt->line, "'nopreempt' has no effect with 'state MASTER': keepalived clears it (\"nopreempt "
                                "will not work with initial state MASTER\") and preempts, so preempt: true is kept; "
                                "for no preemption write state: backup and preempt: false on every node");
    else
      v.preempt = false;
  }
  if (in.preempt_delay) {
    if (wants_master)
      knote(in.preempt_delay->line, "'preempt_delay' has no effect with state MASTER: keepalived clears it "
                                    "(\"preempt delay will not work with initial state MASTER\"), so it is not "
                                    "written");
    else
      v.preempt_delay = in.preempt_delay->value;
  }

  // Addresses first: their family decides the version (keepalived moves an
  // IPv6 instance to VRRPv3 by itself).
  std::optional<bool> v6;
  std::string excluded_written;  // virtual_ipaddress_excluded entries written with the others
  auto add_address = [&](const ka::VirtualIp& ip, bool excluded) {
    bool is6 = is_ipv6(ip.address);
    if (!is6 && !is_ipv4(ip.address)) {
      not_translated(file, ip.line, ip.address, "not an IP address");
      return;
    }
    if (v6 && *v6 != is6) {
      if (excluded)
        // keepalived keeps such an address out of the advert, so one
        // instance may hold both families; ours lists every address.
        refuse(file, ip.line, ip.address,
               "an excluded address of the other family: vipproxy lists every address of an instance in its "
               "adverts, so an instance holds one family. Move it into a vrrp_instance of its own (its own "
               "virtual_router_id) on every keepalived node, then import again; it is not written");
      else
        not_translated(file, ip.line, ip.address,
                       "an instance holds addresses of one family; put it in a second instance (with its own "
                       "virtual_router_id or interface)");
      return;
    }
    v6 = is6;
    cfg::VirtualAddress va;
    va.address = ip.address;
    va.is_ipv6 = is6;
    va.device = ip.device;
    va.label = ip.label;
    va.prefix_len = ip.prefix ? *ip.prefix : (is6 ? 128 : 32);
    if (!ip.prefix && !is6)
      knote(ip.line, "virtual address " + ip.address + " has no prefix: keepalived adds it as /32, so it is written "
                     "as " + ip.address + "/32 (the vipproxy example configuration uses /24, the subnet's prefix; "
                     "either works for a VIP)");
    for (const auto& u : ip.unhandled)
      not_translated(file, ip.line, u, "virtual address option with no equivalent in vipproxy");
    if (excluded) excluded_written += (excluded_written.empty() ? "" : " ") + ip.address;
    v.virtual_ipaddresses.push_back(std::move(va));
  };
  for (const auto& ip : in.virtual_ipaddresses) add_address(ip, false);
  for (const auto& ip : in.virtual_ipaddresses_excluded) add_address(ip, true);
  // Written with the others they move with the state as under keepalived,
  // but our adverts then list them and keepalived's do not: each side drops
  // the other's adverts as another router's (vrrp/codec.h classify_advert,
  // keepalived alike), and both take the VIPs while the nodes are migrated
  // one at a time. Not a note for the same reason as auth_type AH.
  if (!excluded_written.empty())
    refuse(file, in.excluded_line, "virtual_ipaddress_excluded { " + excluded_written + " }",
           "vipproxy lists every address of an instance in its adverts, so they are written in "
           "virtual_ipaddresses (added and removed with the state, as keepalived does) and its adverts list them; "
           "a keepalived peer of this instance ignores such adverts (another address list) and vipproxy ignores "
           "the peer's, so during a rolling migration both nodes take the VIPs. Move them into virtual_ipaddress "
           "on every keepalived node (restart the nodes together) and import again, or stop keepalived on every "
           "node before vipproxy starts on any");
  if (v6 && *v6 && v.version == 2) {
    v.version = 3;
    knote(in.line, "vrrp_instance " + in.name + " holds IPv6 addresses: version 3 is written (VRRPv2 is IPv4 only)");
  }
  // advert_int as keepalived's vrrp_complete_instance() settles it: VRRPv2
  // counts whole seconds (1-255, rounded to the nearest), VRRPv3
  // centiseconds (10ms-40.95s); 0 is the default 1s.
  if (in.advert_int) {
    using std::chrono::milliseconds;
    milliseconds a = in.advert_int->value, was = a;
    if (a.count() == 0) a = milliseconds{1000};
    if (v.version == 2) {
      a = milliseconds{std::clamp<long long>((a.count() + 500) / 1000, 1, 255) * 1000};
    } else {
      a = milliseconds{std::clamp<long long>((a.count() + 5) / 10, 1, 4095) * 10};
    }
    if (a != was)
      knote(in.advert_int->line, "advert_int " + in.advert_int_text->value + " is not a VRRPv" +
                                     std::to_string(v.version) + " interval: keepalived " +
                                     (v.version == 2 ? "rounds it to whole seconds (1-255)" : "uses 10ms steps up to 40.95s") +
                                     ", so " + duration_text(a) + " is written");
    v.advert_int = a;
  }

  if (in.auth_type) {
    std::string t = cfg::syntax::lower(in.auth_type->value);
    if (t == "pass" && v.version == 2 && in.auth_pass) {
      v.auth_type = cfg::AuthType::pass;
      v.auth_password = in.auth_pass->value;
      if (v.auth_password.size() > 8) {
        v.auth_password.resize(8);
        knote(in.auth_pass->line, "auth_pass is longer than 8 characters: keepalived sends only the first 8, so "
                                  "the password is written as those 8");
      }
    } else if ((t == "pass" || t == "ah") && v.version == 3) {
      not_translated(file, in.auth_type->line, "auth_type " + in.auth_type->value,
                     "VRRPv3 has no authentication (keepalived ignores it for version 3 too)");
    } else if (t == "ah") {
      // Not a note: keepalived peers with AH drop adverts without it (and
      // vipproxy drops theirs), so each side would hold the VIP during a
      // rolling migration.
      refuse(file, in.auth_type->line, "auth_type AH",
             "vipproxy has no IPsec AH authentication (RFC 5798 removed VRRP authentication); written without "
             "authentication, its adverts are dropped by keepalived peers using AH and theirs by vipproxy, and "
             "both nodes take the VIP. Switch every node to auth_type PASS (or none) first, then import again");
    } else if (!in.auth_pass) {
      not_translated(file, in.auth_type->line, "auth_type " + in.auth_type->value, "no auth_pass given");
    } else if (t != "pass") {
      not_translated(file, in.auth_type->line, "auth_type " + in.auth_type->value, "expected PASS");
    }
  }

  if (in.unicast_src_ip) {
    v.unicast_src_ip = in.unicast_src_ip->value;
    if (in.src_ip_from_mcast)
      knote(in.unicast_src_ip->line, "mcast_src_ip " + v.unicast_src_ip + " written as unicast_src_ip: vipproxy's "
                                     "source address for every advert, multicast ones too (as keepalived's)");
  }
  for (const auto& p : in.unicast_peers) v.unicast_peers.push_back(p.value);
  v.unicast = !v.unicast_peers.empty();

  for (const auto& ti : in.track_interfaces) v.track.interfaces.push_back({ti.name, ti.weight.value_or(0)});

  // Each kept track script's and notify hook's command, for the unit's note below.
  struct Command {
    int line;
    std::string what, command;
  };
  std::vector<Command> commands;
  for (const auto& ts : in.track_scripts) {
    const ka::Script* sc = k.find_script(ts.name);
    if (!sc) {
      not_translated(file, ts.line, ts.name, "no vrrp_script of that name");
      continue;
    }
    used_scripts.insert(sc->name);
    int weight = ts.weight ? *ts.weight : sc->weight ? sc->weight->value : 0;
    std::string command = sc->script ? sc->script->value : "";
    // Its purpose shows in the whole line, the words keepalived ignored too.
    bool is_haproxy_check = contains_ci(sc->name, "haproxy") || contains_ci(command, "haproxy") ||
                            contains_ci(sc->script_ignored, "haproxy");
    if (is_haproxy_check && !out_.proxies.empty()) {
      std::string names;
      for (const auto& p : out_.proxies) {
        bool dup = std::any_of(v.track.proxies.begin(), v.track.proxies.end(),
                               [&](const cfg::TrackProxy& t) { return t.name == p.name; });
        if (!dup) v.track.proxies.push_back({p.name, weight});
        names += (names.empty() ? "" : ", ") + p.name;
      }
      knote(sc->line, "vrrp_script " + sc->name + (command.empty() ? "" : " (" + command + ")") +
                          " replaced by track: {proxies: [" + names +
                          "]}: the built-in tracking replaces it and is stricter, the proxy counts as up only while "
                          "its listener is up AND at least one backend is eligible from this node or, while none "
                          "is, one still answers its check (a Patroni election: the peer sees the same); a node "
                          "that reaches none of its backends gives the VIP away (the script only checked that "
                          "HAProxy was running and listening)");
      continue;
    }
    if (is_haproxy_check)
      knote(sc->line, "vrrp_script " + sc->name + " checks HAProxy: kept as a script because no haproxy.cfg was "
                      "imported; once vipproxy runs the proxy, replace it with track: {proxies: [NAME]}");
    if (command.empty()) {
      not_translated(file, sc->line, "vrrp_script " + sc->name, "it has no 'script' line");
      continue;
    }
    cfg::TrackScript t;
    t.name = safe_name(sc->name);
    t.command = command;
    t.interval = sc->interval ? std::max(Duration{1}, sc->interval->value) : kKeepalivedScriptInterval;
    if (sc->timeout) t.timeout = std::max(Duration{1}, sc->timeout->value);
    else t.timeout = t.interval;  // keepalived waits at most one interval
    t.rise = sc->rise ? std::clamp(sc->rise->value, 1u, 1000u) : 1;
    t.fall = sc->fall ? std::clamp(sc->fall->value, 1u, 1000u) : 1;
    t.weight = weight;
    t.user = sc->user ? sc->user->value : k.script_user ? k.script_user->value : "";
    commands.push_back({sc->script->line, "vrrp_script " + sc->name, command});
    v.track.scripts.push_back(std::move(t));
  }

  v.notify.master = in.notify_master ? in.notify_master->value : "";
  v.notify.backup = in.notify_backup ? in.notify_backup->value : "";
  v.notify.fault = in.notify_fault ? in.notify_fault->value : "";
  v.notify.stop = in.notify_stop ? in.notify_stop->value : "";
  v.notify.any = in.notify ? in.notify->value : "";
  for (const auto& [f, key] : {std::pair{&in.notify_master, "notify_master"}, {&in.notify_backup, "notify_backup"},
                               {&in.notify_fault, "notify_fault"}, {&in.notify_stop, "notify_stop"},
                               {&in.notify, "notify"}})
    if (*f) commands.push_back({(*f)->line, key, (*f)->value});
  // keepalived runs them as root with the whole file system writable; the
  // packaged unit does not, and a notify script's state file written to
  // /var/run or /var/lib then fails without a word in keepalived's terms.
  if (!commands.empty()) {
    knote(in.line,
          "vrrp_instance " + in.name + ": notify commands and track scripts run as the vipproxy user under the "
          "packaged unit (ProtectSystem=strict): they may write under /var/lib/vipproxy and /run/vipproxy only (and "
          "the unit's private /tmp); a script writing elsewhere (a state file in /var/run or /var/lib) fails with "
          "'Read-only file system' until a drop-in allows its directory (systemctl edit vipproxy: [Service] "
          "ReadWritePaths=DIR; README, \"Hooks and scripts under the unit\")");
    for (const auto& c : commands)
      for (const auto& path : redirect_targets(c.command))
        if (std::string why = unit_write_problem(path); !why.empty())
          knote(c.line, c.what + " writes " + path + ": " + why);
  }

  auto pick = [](const auto& mine, const auto& global) { return mine ? mine : global; };
  if (auto d = pick(in.garp_master_delay, k.garp_master_delay)) v.garp.master_delay = d->value;
  if (auto d = pick(in.garp_master_refresh, k.garp_master_refresh)) v.garp.master_refresh = d->value;
  if (auto d = pick(in.garp_interval, k.garp_interval)) v.garp.interval = d->value;
  if (auto r = pick(in.garp_master_repeat, k.garp_master_repeat)) v.garp.master_repeat = std::clamp(r->value, 1u, 255u);

  for (const auto& u : in.unhandled)
    not_translated(file, u.line, u.text, u.reason.empty() ? keepalived_reason(u.text) : u.reason);
  out_.vrrp.push_back(std::move(v));
}

void Converter::keepalived(const ka::Config& k) {
  const std::string& file = opts_.keepalived_file;
  std::set<std::string> used_scripts;
  for (const auto& in : k.instances) instance(in, k, used_scripts);
  for (const auto& sc : k.scripts) {
    // keepalived (vrrp_parser.c, set_script_params_array) takes the first
    // word after `script` as the whole command line: an unquoted command's
    // arguments were never run, and the import runs what keepalived ran.
    if (sc.script && !sc.script_ignored.empty())
      knote(sc.script->line, "'script " + sc.script->value + " " + sc.script_ignored + "' in vrrp_script " + sc.name +
                                 ": keepalived runs only '" + sc.script->value + "' (the words after an unquoted "
                                 "command are dropped; a command with arguments must be quoted: script \"" +
                                 sc.script->value + " " + sc.script_ignored + "\"), so the import takes '" +
                                 sc.script->value + "' as the command, what keepalived ran; quote the line and "
                                 "import again if the arguments were meant");
    if (!used_scripts.count(sc.name))
      not_translated(file, sc.line, "vrrp_script " + sc.name, "no vrrp_instance tracks it");
    for (const auto& u : sc.unhandled)
      not_translated(file, u.line, u.text, u.reason.empty() ? "script option with no equivalent in vipproxy" : u.reason);
  }
  for (const auto& u : k.unhandled)
    not_translated(file, u.line, u.text, u.reason.empty() ? keepalived_reason(u.text) : u.reason);
  // The VRRP process's realtime priority: ours is the control thread's
  // (daemon/realtime.h), the thread that sends the adverts. keepalived
  // accepts 1-99 and caps above; 0 would mean off here.
  if (k.vrrp_rt_priority) out_.vrrp_rt_priority = std::clamp(k.vrrp_rt_priority->value, 1u, 99u);
  if (k.script_user) {
    bool any_script = std::any_of(out_.vrrp.begin(), out_.vrrp.end(),
                                  [](const cfg::VrrpInstance& v) { return !v.track.scripts.empty(); });
    if (!any_script)
      not_translated(file, k.script_user->line, "script_user " + k.script_user->value,
                     "no track script is left to run");
  }
  if (k.instances.empty()) knote(0, "no vrrp_instance found");
}

}  // namespace importer::detail
