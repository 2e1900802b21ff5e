// Where `vipproxy status` / `doctor` find the admin endpoint and its token
// (ctl/admin_client.h): never from argv unless the old --token is used.
#define BOOST_TEST_MODULE ctl_admin_client
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/admin_client.h"

namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(parse_token_file_table) {
  struct Row {
    std::string text;
    std::optional<std::string> token;
  };
  const std::vector<Row> rows = {
      {"s3cret", "s3cret"},
      {"s3cret\n", "s3cret"},            // echo / editors add a newline
      {"s3cret\r\n", "s3cret"},
      {"  s3cret \t\n", "s3cret"},
      {"s3cret\nsecond line\n", "s3cret"},  // only the first line
      {"s3 cret\n", "s3 cret"},          // inner blanks are the token's
      {"", std::nullopt},
      {"\n", std::nullopt},
      {"   \nlater\n", std::nullopt},    // an empty first line is no token
  };
  for (const auto& r : rows) BOOST_TEST((ctl::parse_token_file(r.text) == r.token), "'" << r.text << "'");
}

BOOST_AUTO_TEST_CASE(admin_address_from_listen) {
  cfg::Admin a;
  BOOST_TEST(ctl::admin_address(a) == "127.0.0.1:8405");
  a.listen = {"0.0.0.0", 9000};
  BOOST_TEST(ctl::admin_address(a) == "127.0.0.1:9000");
  a.listen = {"::", 9000};
  BOOST_TEST(ctl::admin_address(a) == "[::1]:9000");
  a.listen = {"10.88.1.151", 8405};
  BOOST_TEST(ctl::admin_address(a) == "10.88.1.151:8405");
  a.listen = {"fd00::1", 8405};
  BOOST_TEST(ctl::admin_address(a) == "[fd00::1]:8405");
}

// --admin as an operator pastes it: the URL the browser shows works too
// (it was taken for a host name: "cannot reach ... http://http://127.0.0.1:8405//status:
// resolve: Host not found").
BOOST_AUTO_TEST_CASE(admin_argument_forms) {
  BOOST_TEST(ctl::admin_argument("127.0.0.1:8405") == "127.0.0.1:8405");
  BOOST_TEST(ctl::admin_argument("[::1]:8405") == "[::1]:8405");
  BOOST_TEST(ctl::admin_argument("http://127.0.0.1:8405/") == "127.0.0.1:8405");
  BOOST_TEST(ctl::admin_argument("HTTP://127.0.0.1:8405/status?x#y") == "127.0.0.1:8405");
  BOOST_TEST(ctl::admin_argument("http://[::1]:9000") == "[::1]:9000");
  BOOST_TEST(ctl::admin_argument("http://catalog01") == "catalog01");
  BOOST_CHECK_THROW(ctl::admin_argument("https://127.0.0.1:8405/"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(resolve_token_precedence) {
  fs::path dir = fs::temp_directory_path() / ("vipproxy-token-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path file = dir / "token";
  std::ofstream(file) << "from-file\n";
  ::chmod(file.c_str(), 0600);
  cfg::Config c;
  c.admin.token = "from-config";

  ::unsetenv("VIPPROXY_TOKEN");
  auto t = ctl::resolve_token(std::nullopt, &c, "/etc/vipproxy/vipproxy.yaml");
  BOOST_TEST(t.value == "from-config");
  BOOST_TEST(t.source == "admin.token of /etc/vipproxy/vipproxy.yaml");
  BOOST_TEST(ctl::resolve_token(std::nullopt, nullptr, "").value.empty());

  ::setenv("VIPPROXY_TOKEN", "from-env", 1);
  t = ctl::resolve_token(std::nullopt, &c, "x.yaml");
  BOOST_TEST(t.value == "from-env");
  BOOST_TEST(t.source == "$VIPPROXY_TOKEN");

  t = ctl::resolve_token(file.string(), &c, "x.yaml");
  BOOST_TEST(t.value == "from-file");
  BOOST_TEST(t.source == "--token-file " + file.string());
  BOOST_TEST(t.warnings.empty());

  // A token file every user can read: used, with a warning naming the fix.
  ::chmod(file.c_str(), 0644);
  t = ctl::resolve_token(file.string(), &c, "x.yaml");
  BOOST_TEST(t.value == "from-file");
  BOOST_TEST_REQUIRE(t.warnings.size() == 1u);
  BOOST_TEST(t.warnings[0].find("mode 644") != std::string::npos);
  BOOST_TEST(t.warnings[0].find("chmod o-r") != std::string::npos);

  // Missing or empty file: an error naming it, never a silent fallback.
  BOOST_CHECK_EXCEPTION(ctl::resolve_token((dir / "absent").string(), &c, "x.yaml"), std::runtime_error,
                        [&](const std::runtime_error& e) {
                          return std::string(e.what()).find((dir / "absent").string()) != std::string::npos;
                        });
  std::ofstream(file, std::ios::trunc) << "\n";
  BOOST_CHECK_THROW(ctl::resolve_token(file.string(), &c, "x.yaml"), std::runtime_error);
  ::unsetenv("VIPPROXY_TOKEN");
  fs::remove_all(dir);
}
