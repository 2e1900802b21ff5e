// cfg/names: every value of every configuration enum has exactly one
// spelling, parse() reads back what to_string() writes, and the spellings are
// the words the loader accepts (the same table serves both).
#define BOOST_TEST_MODULE cfg_names
#include <boost/test/unit_test.hpp>
#include <set>
#include <string>
#include <vector>

#include "cfg/load.h"
#include "cfg/names.h"

namespace names = cfg::names;

namespace {

template <class E>
void round_trips(const std::vector<E>& every_value, const std::string& expected_list) {
  std::set<std::string_view> seen;
  for (E v : every_value) {
    const std::string_view s = names::to_string(v);
    BOOST_TEST_INFO(s);
    BOOST_TEST(s != "?");
    BOOST_TEST(seen.insert(s).second);  // no two values spelled alike
    BOOST_TEST((names::parse<E>(s) == v));
  }
  BOOST_TEST(names::spellings<E>().size() == every_value.size());  // no alias yet: one spelling each
  BOOST_TEST(names::expected<E>() == expected_list);
  BOOST_TEST(!names::parse<E>("").has_value());
  BOOST_TEST(!names::parse<E>("nonsense").has_value());
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_enum_round_trips) {
  round_trips<cfg::CheckType>({cfg::CheckType::http, cfg::CheckType::tcp}, "http, tcp");
  round_trips<cfg::ExpectRole>({cfg::ExpectRole::automatic, cfg::ExpectRole::primary, cfg::ExpectRole::any},
                               "auto, primary, any");
  round_trips<cfg::Balance>({cfg::Balance::first, cfg::Balance::roundrobin, cfg::Balance::leastconn},
                            "first, roundrobin, leastconn");
  round_trips<cfg::VrrpState>({cfg::VrrpState::master, cfg::VrrpState::backup}, "master, backup");
  round_trips<cfg::AuthType>({cfg::AuthType::pass, cfg::AuthType::none}, "pass, none");
  round_trips<cfg::ChecksumForm>({cfg::ChecksumForm::keepalived, cfg::ChecksumForm::rfc9568}, "keepalived, rfc9568");
}

BOOST_AUTO_TEST_CASE(parse_is_exact_the_loader_lowers_first) {
  BOOST_TEST(!names::parse<cfg::VrrpState>("MASTER").has_value());
  const cfg::Config c = cfg::load_string(
      "vrrp:\n"
      "  - {name: VI_1, interface: eth0, state: MASTER, virtual_router_id: 51, virtual_ipaddresses: [10.0.0.1]}\n",
      "t.yaml");
  BOOST_TEST((c.vrrp.at(0).state == cfg::VrrpState::master));
}

BOOST_AUTO_TEST_CASE(the_loader_lists_the_spellings_when_it_refuses_a_word) {
  try {
    cfg::load_string(
        "proxies:\n"
        "  - {name: pg, listen: '*:5433', balance: random, backends: [{name: a, address: 10.0.0.1:5432}]}\n",
        "t.yaml");
    BOOST_FAIL("balance: random loaded");
  } catch (const cfg::Error& e) {
    BOOST_TEST(std::string(e.what()).find("expected one of first, roundrobin, leastconn, got 'random'") !=
               std::string::npos, e.what());
  }
}
