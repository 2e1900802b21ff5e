// Which capabilities the running daemon keeps, decided from the validated
// configuration alone (daemon/privileges: the pure part).
#define BOOST_TEST_MODULE privileges
#include <boost/test/unit_test.hpp>

#include "cfg/load.h"
#include "daemon/privileges.h"

namespace pv = daemon_::privileges;

namespace {

cfg::Config load(const std::string& yaml) { return cfg::load_string(yaml, "test.yaml"); }

const char* kProxy = R"(
proxies:
  - name: postgres
    listen: 127.0.0.1:5433
    check: {type: tcp}
    backends:
      - {name: a, address: 127.0.0.1:5432}
)";

std::string vrrp(const std::string& extra = "") {
  return std::string(R"(
vrrp:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    virtual_ipaddresses: [192.0.2.10/24]
)") + extra;
}

std::vector<unsigned> caps(const std::vector<pv::Need>& needs) {
  std::vector<unsigned> v;
  for (const auto& n : needs) v.push_back(n.cap);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(proxy_on_high_ports_needs_nothing) {
  BOOST_TEST(pv::needed(load(kProxy)).empty());
  BOOST_TEST(pv::names(pv::mask_of(pv::needed(load(kProxy)))) == "none");
}

BOOST_AUTO_TEST_CASE(privileged_listener_port_keeps_bind_service) {
  std::string y = kProxy;
  y.replace(y.find("5433"), 4, "443");
  auto n = pv::needed(load(y));
  BOOST_TEST(caps(n) == std::vector<unsigned>{pv::kCapNetBindService});
  BOOST_TEST(n[0].why == "proxy postgres listens on port 443");
}

BOOST_AUTO_TEST_CASE(kernel_data_path_keeps_net_admin) {
  std::string y = kProxy;
  y.replace(y.find("    check:"), 0, "    data_path: kernel\n");
  auto n = pv::needed(load(y));
  BOOST_TEST(caps(n) == std::vector<unsigned>{pv::kCapNetAdmin});
  BOOST_TEST(n[0].why == "proxy postgres data_path kernel: send buffers of sessions taken back (SO_SNDBUFFORCE)");
  // With VRRP the VIPs are the reason given.
  n = pv::needed(load(y + vrrp()));
  BOOST_TEST(caps(n) == (std::vector<unsigned>{pv::kCapNetAdmin, pv::kCapNetRaw}));
  BOOST_TEST(n[0].why.find("VIPs") == 0);
}

BOOST_AUTO_TEST_CASE(kernel_data_path_not_loaded_needs_nothing) {
  // The kernel path did not load (or was not loaded at start): the proxy's
  // sessions use splice, no send buffer is ever enlarged past wmem_max.
  std::string y = kProxy;
  y.replace(y.find("    check:"), 0, "    data_path: kernel\n");
  BOOST_TEST(pv::needed(load(y), false).empty());
  // A reload that sets data_path kernel on such a daemon is not refused
  // for a capability it would not use (it used to be, "restart to apply").
  BOOST_TEST(pv::newly_missing(load(kProxy), load(y), 0, false) == 0u);
  BOOST_TEST(pv::newly_missing(load(kProxy), load(y), 0, true) == pv::bit(pv::kCapNetAdmin));
}

BOOST_AUTO_TEST_CASE(privileged_admin_port_keeps_bind_service) {
  auto n = pv::needed(load(std::string(kProxy) + "admin: {listen: '127.0.0.1:843'}\n"));
  BOOST_TEST(caps(n) == std::vector<unsigned>{pv::kCapNetBindService});
  BOOST_TEST(n[0].why == "admin endpoint on port 843");
  // A disabled admin endpoint binds nothing.
  BOOST_TEST(pv::needed(load(std::string(kProxy) + "admin: {enabled: false, listen: '127.0.0.1:843'}\n")).empty());
}

BOOST_AUTO_TEST_CASE(vrrp_keeps_net_admin_and_net_raw) {
  auto n = pv::needed(load(std::string(kProxy) + vrrp()));
  BOOST_TEST(caps(n) == (std::vector<unsigned>{pv::kCapNetAdmin, pv::kCapNetRaw}));
  BOOST_TEST(pv::names(pv::mask_of(n)) == "cap_net_admin, cap_net_raw");
  // VRRP without a proxy (a plain keepalived) is the same.
  BOOST_TEST(caps(pv::needed(load(vrrp()))) == (std::vector<unsigned>{pv::kCapNetAdmin, pv::kCapNetRaw}));
}

BOOST_AUTO_TEST_CASE(script_as_root_keeps_no_setuid) {
  auto n = pv::needed(load(vrrp(R"(    track:
      scripts:
        - {name: chk, command: /bin/true}
)")));
  BOOST_TEST(caps(n) == (std::vector<unsigned>{pv::kCapNetAdmin, pv::kCapNetRaw}));
}

BOOST_AUTO_TEST_CASE(script_with_user_keeps_setuid_setgid_kill) {
  auto n = pv::needed(load(vrrp(R"(    track:
      scripts:
        - {name: chk, command: /bin/true, user: nobody}
        - {name: chk2, command: /bin/true, user: daemon}
)")));
  BOOST_TEST(caps(n) == (std::vector<unsigned>{pv::kCapKill, pv::kCapSetgid, pv::kCapSetuid, pv::kCapNetAdmin,
                                               pv::kCapNetRaw}));
  // One reason per capability: the first script that needs it.
  BOOST_TEST(n[2].why == "setpriv --reuid for vrrp VI_1 track script chk, user nobody");
  BOOST_TEST(pv::names(pv::mask_of(n)) == "cap_kill, cap_setgid, cap_setuid, cap_net_admin, cap_net_raw");
}

BOOST_AUTO_TEST_CASE(everything_together_is_sorted_and_unique) {
  std::string y = kProxy;
  y.replace(y.find("5433"), 4, "80");
  auto n = pv::needed(load(y + "admin: {listen: '127.0.0.1:81'}\n" + vrrp()));
  BOOST_TEST(caps(n) == (std::vector<unsigned>{pv::kCapNetBindService, pv::kCapNetAdmin, pv::kCapNetRaw}));
  BOOST_TEST(n[0].why == "proxy postgres listens on port 80");
}

BOOST_AUTO_TEST_CASE(plan_keeps_only_what_is_held) {
  const uint64_t root = (uint64_t{1} << 41) - 1;  // CapPrm of root on a 6.x kernel
  const uint64_t need = pv::bit(pv::kCapNetAdmin) | pv::bit(pv::kCapNetRaw);
  auto p = pv::plan(need, root, root);
  BOOST_TEST(p.keep == need);
  BOOST_TEST(p.missing == 0u);
  BOOST_TEST(p.drop_bounding);

  // The packaged unit: an unprivileged user with three ambient capabilities,
  // no CAP_SETPCAP, so the bounding set stays (the unit limits it).
  const uint64_t unit = pv::bit(pv::kCapNetAdmin) | pv::bit(pv::kCapNetRaw) | pv::bit(pv::kCapNetBindService);
  p = pv::plan(need, unit, unit);
  BOOST_TEST(p.keep == need);
  BOOST_TEST(!p.drop_bounding);

  // Needed but never held: reported, never "kept".
  p = pv::plan(need | pv::bit(pv::kCapSetuid), unit, unit);
  BOOST_TEST(p.keep == need);
  BOOST_TEST(p.missing == pv::bit(pv::kCapSetuid));

  // Nothing needed, nothing held: nothing to keep.
  p = pv::plan(0, 0, 0);
  BOOST_TEST(p.keep == 0u);
  BOOST_TEST(!p.drop_bounding);
}

BOOST_AUTO_TEST_CASE(names_and_masks) {
  BOOST_TEST(pv::name(pv::kCapNetBindService) == "cap_net_bind_service");
  BOOST_TEST(pv::name(40) == "cap_checkpoint_restore");
  BOOST_TEST(pv::name(41) == "cap_41");
  BOOST_TEST(pv::names(pv::bit(0) | pv::bit(21)) == "cap_chown, cap_sys_admin");
  BOOST_TEST(pv::parse_mask("\t000001ffffffffff") == (uint64_t{1} << 41) - 1);
  BOOST_TEST(pv::parse_mask(" 0000000000003000") == (pv::bit(12) | pv::bit(13)));
  BOOST_CHECK_THROW(pv::parse_mask("zz"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(reload_needing_a_dropped_capability_is_refused) {
  const auto running = load(kProxy);
  std::string low = kProxy;
  low.replace(low.find("5433"), 4, "443");
  // The daemon kept nothing: a new port below 1024 needs what it dropped.
  BOOST_TEST(pv::newly_missing(running, load(low), 0) == pv::bit(pv::kCapNetBindService));
  // Still held (e.g. started with it and still needed): fine.
  BOOST_TEST(pv::newly_missing(running, load(low), pv::bit(pv::kCapNetBindService)) == 0u);
  // Adding the first VRRP instance needs NET_ADMIN and NET_RAW.
  BOOST_TEST(pv::newly_missing(running, load(std::string(kProxy) + vrrp()), 0) ==
             (pv::bit(pv::kCapNetAdmin) | pv::bit(pv::kCapNetRaw)));
  // A need the running file already had is not the reload's to refuse (it was
  // warned about at start).
  BOOST_TEST(pv::newly_missing(load(low), load(low), 0) == 0u);
}
