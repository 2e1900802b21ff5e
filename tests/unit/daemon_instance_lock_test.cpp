// The per-instance lock that keeps a second daemon from running a VRRP
// instance this host already runs (daemon/instance_lock.h): its name, and
// that a lock is held until released, by this process only.
#define BOOST_TEST_MODULE daemon_instance_lock
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "daemon/instance_lock.h"

namespace il = daemon_::instance_lock;

namespace {

cfg::VrrpInstance instance(const std::string& name, const std::string& interface, unsigned vrid, bool v6) {
  cfg::VrrpInstance v;
  v.name = name;
  v.interface = interface;
  v.virtual_router_id = vrid;
  cfg::VirtualAddress a;
  a.address = v6 ? "2001:db8::10" : "192.0.2.10";
  a.is_ipv6 = v6;
  v.virtual_ipaddresses.push_back(a);
  return v;
}

// A name no other run of this test uses at the same time.
std::string unique(const std::string& what) { return what + "/" + std::to_string(::getpid()); }

// Whether another process can take `name` (a child: a lock is per process).
bool free_for_another_process(const std::string& name) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    il::Locks l;
    ::_exit(l.take(name).empty() ? 0 : 1);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(one_name_per_interface_family_and_vrid) {
  const auto a = il::vrrp_name(instance("VI_1", "eth0", 51, false));
  BOOST_TEST(a == "vipproxy/vrrp/eth0/ipv4/51");
  // The instance's name is not part of it: another name for the same VRID
  // on the same link is the same router.
  BOOST_TEST(il::vrrp_name(instance("other", "eth0", 51, false)) == a);
  BOOST_TEST(il::vrrp_name(instance("VI_1", "eth0", 51, true)) != a);   // RFC 5798 §7.3: per family
  BOOST_TEST(il::vrrp_name(instance("VI_1", "eth1", 51, false)) != a);
  BOOST_TEST(il::vrrp_name(instance("VI_1", "eth0", 52, false)) != a);
}

BOOST_AUTO_TEST_CASE(a_lock_is_refused_to_another_process_until_released) {
  const std::string name = unique("vipproxy-test/lock");
  il::Locks held;
  BOOST_TEST(held.take(name) == "");
  BOOST_TEST(held.take(name) == "");  // already ours: taken again without error
  BOOST_TEST(!free_for_another_process(name));
  held.keep_only({});
  BOOST_TEST(!held.holds(name));
  BOOST_TEST(free_for_another_process(name));
}

BOOST_AUTO_TEST_CASE(take_vrrp_names_the_instance_and_keeps_what_it_took_until_adopted) {
  auto v = instance("VI_7", unique("if"), 7, false);
  const std::string name = il::vrrp_name(v);
  // Another process (a first daemon) holds the instance: refused, naming it.
  int to_child[2], from_child[2];
  BOOST_REQUIRE(::pipe(to_child) == 0 && ::pipe(from_child) == 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    il::Locks l;
    char c = l.take(name).empty() ? 'y' : 'n';
    (void)!::write(from_child[1], &c, 1);
    (void)!::read(to_child[0], &c, 1);  // hold it until the parent is done
    ::_exit(0);
  }
  char c = 0;
  BOOST_REQUIRE(::read(from_child[0], &c, 1) == 1);
  BOOST_REQUIRE(c == 'y');
  il::Locks held, taken;
  try {
    il::take_vrrp({v}, held, taken);
    BOOST_FAIL("taken while another process holds it");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("vrrp VI_7: another vipproxy already runs VRID 7 (IPv4) on " + v.interface) == 0,
               what);
  }
  (void)!::write(to_child[1], "x", 1);
  int st = 0;
  ::waitpid(pid, &st, 0);
  // Free now: taken into `taken`, then adopted; a second call with it held
  // takes nothing more, and names every instance.
  auto names = il::take_vrrp({v}, held, taken);
  BOOST_TEST(names.size() == 1u);
  BOOST_TEST(names.at(name) == "VI_7");
  BOOST_TEST(taken.holds(name));
  held.adopt(std::move(taken));
  BOOST_TEST(held.holds(name));
  BOOST_TEST(!taken.holds(name));
  il::Locks again;
  il::take_vrrp({v}, held, again);
  BOOST_TEST(!again.holds(name));
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(fd);
}
