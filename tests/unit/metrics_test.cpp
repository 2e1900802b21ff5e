// metrics/prometheus: the one writer of the text format. Counters end in
// _total (added when the declared name lacks it), HELP and TYPE come once
// per family, label values are escaped and otherwise kept (an IPv6 address
// keeps its brackets).
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "metrics/prometheus.h"

using metrics::Type;

BOOST_AUTO_TEST_CASE(family_names) {
  struct Row {
    const char* declared;
    Type type;
    const char* exported;
  };
  const std::vector<Row> rows = {
      {"proxy_bytes_in", Type::counter, "proxy_bytes_in_total"},
      {"proxy_sessions_total", Type::counter, "proxy_sessions_total"},
      {"backend_up", Type::gauge, "backend_up"},
      {"proxy_sessions_kernel", Type::gauge, "proxy_sessions_kernel"},
      {"reloads", Type::counter, "reloads_total"},
  };
  for (const auto& r : rows) BOOST_TEST(metrics::family_name(r.declared, r.type) == r.exported);
}

BOOST_AUTO_TEST_CASE(label_values) {
  struct Row {
    std::string in, out;
  };
  const std::vector<Row> rows = {
      {"postgres", "postgres"},
      {"[fd00::2]:5432", "[fd00::2]:5432"},  // brackets kept
      {"fd88:1::160/64", "fd88:1::160/64"},
      {"a\"b", "a\\\"b"},
      {"a\\b", "a\\\\b"},
      {"a\nb", "a\\nb"},
      {"caf\xc3\xa9", "caf\xc3\xa9"},
      {"", ""},
  };
  for (const auto& r : rows) BOOST_TEST(metrics::label(r.in) == r.out);
}

BOOST_AUTO_TEST_CASE(families_and_samples) {
  metrics::Writer w;
  w.family("proxy_bytes_in", Type::counter, "Bytes \\ from clients\nto backends");
  w.sample({{"proxy", "pg"}}, 42);
  w.sample({{"proxy", "p\"2"}}, 0);
  w.family("admin_connections", Type::gauge, "open now").sample(3);
  w.family("vrrp_state", Type::gauge, "state");
  w.sample({{"instance", "VI_1"}, {"state", "MASTER"}}, 1);
  const std::string want =
      "# HELP vipproxy_proxy_bytes_in_total Bytes \\\\ from clients\\nto backends\n"
      "# TYPE vipproxy_proxy_bytes_in_total counter\n"
      "vipproxy_proxy_bytes_in_total{proxy=\"pg\"} 42\n"
      "vipproxy_proxy_bytes_in_total{proxy=\"p\\\"2\"} 0\n"
      "# HELP vipproxy_admin_connections open now\n"
      "# TYPE vipproxy_admin_connections gauge\n"
      "vipproxy_admin_connections 3\n"
      "# HELP vipproxy_vrrp_state state\n"
      "# TYPE vipproxy_vrrp_state gauge\n"
      "vipproxy_vrrp_state{instance=\"VI_1\",state=\"MASTER\"} 1\n";
  BOOST_TEST(w.text() == want);
}
