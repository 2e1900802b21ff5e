// The record of VIPs the unit's ExecStopPost removes after an unclean stop
// (daemon/vip_record.h): which addresses go in it, its text both ways, and
// that a file which is not one is refused rather than acted on.
#define BOOST_TEST_MODULE daemon_vip_record
#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "cfg/load.h"
#include "daemon/vip_record.h"

using daemon_::vip_record::Entry;
namespace vr = daemon_::vip_record;

namespace {
cfg::Config two_instances() {
  return cfg::load_string(R"(
node: catalog01
vrrp:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    priority: 150
    virtual_ipaddresses: [10.88.1.100, {address: 10.88.2.100/24, device: eth1}]
  - name: VI_6
    interface: eth0
    version: 3
    virtual_router_id: 52
    priority: 150
    virtual_ipaddresses: ["fd00::100/64"]
)",
                          "test.yaml");
}
}  // namespace

BOOST_AUTO_TEST_CASE(every_configured_vip_on_its_device) {
  auto e = vr::entries(two_instances());
  BOOST_TEST(e.size() == 3u);
  BOOST_TEST((e[0] == Entry{"eth0", "10.88.1.100", 32}));
  BOOST_TEST((e[1] == Entry{"eth1", "10.88.2.100", 24}));
  BOOST_TEST((e[2] == Entry{"eth0", "fd00::100", 64}));
  BOOST_TEST(vr::format(e) == "eth0 10.88.1.100/32\neth1 10.88.2.100/24\neth0 fd00::100/64\n");
  BOOST_TEST((vr::parse(vr::format(e)) == e));
  BOOST_TEST(vr::entries(cfg::Config{}).empty());  // no vrrp section: an empty record
}

BOOST_AUTO_TEST_CASE(a_file_that_is_not_a_record_is_refused) {
  BOOST_TEST(vr::parse("").empty());
  BOOST_TEST(vr::parse("\n").empty());
  for (const char* bad : {"eth0 10.88.1.100", "eth0", " 10.88.1.100/32", "eth0 10.88.1.300/32", "eth0 10.88.1.1/33",
                          "eth0 fd00::1/129", "eth0 10.88.1.1/", "eth0 10.88.1.1/x", "eth0 10.88.1.1/-1",
                          "averyveryverylongname 10.88.1.1/32", "eth0 10.88.1.1/32 extra"}) {
    BOOST_TEST_CONTEXT(bad) {
      try {
        vr::parse(std::string("eth0 10.88.1.2/32\n") + bad + "\n");
        BOOST_ERROR("accepted");
      } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find("line 2") != std::string::npos, e.what());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(path_from_systemd_runtime_directory) {
  BOOST_TEST(vr::default_path(nullptr) == "");
  BOOST_TEST(vr::default_path("") == "");
  BOOST_TEST(vr::default_path("/run/vipproxy") == "/run/vipproxy/vips");
  BOOST_TEST(vr::default_path("/run/vipproxy:/run/other") == "/run/vipproxy/vips");
}

BOOST_AUTO_TEST_CASE(written_whole_and_read_back) {
  char dir[] = "/tmp/vip_record_test.XXXXXX";
  BOOST_REQUIRE(::mkdtemp(dir));
  const std::string path = std::string(dir) + "/vips";
  BOOST_TEST(vr::write(path, two_instances()) == "");
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  BOOST_TEST((vr::parse(text.str()) == vr::entries(two_instances())));
  BOOST_TEST(::access((path + ".tmp").c_str(), F_OK) != 0);
  ::unlink(path.c_str());
  ::rmdir(dir);
  BOOST_TEST(vr::write(std::string(dir) + "/vips", two_instances()).find("No such file") != std::string::npos);
}
