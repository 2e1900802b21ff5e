// The admin endpoint's guard (daemon/admin_guard.h): the token check in its
// accepted forms, base64 (RFC 4648), and which connection gets a slot.
#define BOOST_TEST_MODULE daemon_admin_guard
#include <boost/test/unit_test.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/admin_guard.h"

using namespace daemon_;

BOOST_AUTO_TEST_CASE(constant_time_equal_table) {
  struct Row {
    std::string given, secret;
    bool equal;
  };
  const std::vector<Row> rows = {
      {"s3cret", "s3cret", true},
      {"s3cres", "s3cret", false},
      {"t3cret", "s3cret", false},
      {"s3cre", "s3cret", false},         // a prefix
      {"s3crets3cret", "s3cret", false},  // the secret twice: cyclic reading must not accept it
      {"s3crett", "s3cret", false},
      {"", "s3cret", false},
      {"", "", true},
      {"x", "", false},
      {std::string("s3\0ret", 6), "s3cret", false},
  };
  for (const auto& r : rows) BOOST_TEST(constant_time_equal(r.given, r.secret) == r.equal, r.given << " vs " << r.secret);
}

BOOST_AUTO_TEST_CASE(base64_rfc4648_vectors) {
  // RFC 4648 §10 test vectors.
  const std::vector<std::pair<std::string, std::string>> ok = {
      {"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"},
      {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
  };
  for (const auto& [enc, dec] : ok) {
    auto d = base64_decode(enc);
    BOOST_TEST_REQUIRE(d.has_value(), enc);
    BOOST_TEST(*d == dec, enc);
  }
  for (std::string bad : {"Zg=", "Zg", "Z===", "Zg==Zg==", "Zm9v!", "Zm 9", "=Zm9", "Zg=a"})
    BOOST_TEST(!base64_decode(bad).has_value(), bad);
}

BOOST_AUTO_TEST_CASE(token_forms) {
  struct Row {
    std::string header, token;
    bool ok;
  };
  // base64("admin:s3cret") = YWRtaW46czNjcmV0, base64(":s3cret") = OnMzY3JldA==,
  // base64("admin:s3cret:x") = YWRtaW46czNjcmV0Ong=, base64("admins3cret") = YWRtaW5zM2NyZXQ=
  const std::vector<Row> rows = {
      {"", "", true},                               // no token configured
      {"Bearer whatever", "", true},
      {"Bearer s3cret", "s3cret", true},
      {"bearer s3cret", "s3cret", true},            // scheme is case-insensitive (RFC 9110 §11.1)
      {"BEARER   s3cret  ", "s3cret", true},
      {"Bearer S3CRET", "s3cret", false},           // the token is not
      {"Bearer s3cre", "s3cret", false},
      {"Bearer", "s3cret", false},
      {"Bearers3cret", "s3cret", false},
      {"", "s3cret", false},
      {"s3cret", "s3cret", false},
      {"Basic YWRtaW46czNjcmV0", "s3cret", true},   // any user name, the token as password
      {"basic OnMzY3JldA==", "s3cret", true},       // empty user name
      {"Basic YWRtaW46czNjcmV0Ong=", "s3cret", false},  // password "s3cret:x"
      {"Basic YWRtaW5zM2NyZXQ=", "s3cret", false},  // no colon
      {"Basic czNjcmV0", "s3cret", false},          // "s3cret" without user-id ":"
      {"Basic !!!!", "s3cret", false},
      {"Digest s3cret", "s3cret", false},
  };
  for (const auto& r : rows)
    BOOST_TEST(token_authorizes(r.header, r.token) == r.ok, "'" << r.header << "' token '" << r.token << "'");
}

BOOST_AUTO_TEST_CASE(admission_below_cap_admits) {
  Admission a(3);
  for (uint64_t id = 1; id <= 3; ++id) {
    auto d = a.arrive(id);
    BOOST_TEST(d.admit);
    BOOST_TEST(!d.evict.has_value());
  }
  BOOST_TEST(a.open() == 3u);
  BOOST_TEST(a.waiting() == 3u);
}

BOOST_AUTO_TEST_CASE(admission_at_cap_evicts_the_oldest_waiter) {
  Admission a(3);
  a.arrive(1);
  a.arrive(2);
  a.arrive(3);
  a.answering(1);  // 1 sent its request: never evicted
  auto d = a.arrive(4);
  BOOST_TEST(d.admit);
  BOOST_TEST_REQUIRE(d.evict.has_value());
  BOOST_TEST(*d.evict == 2u);  // the oldest still waiting
  BOOST_TEST(a.open() == 3u);
  a.left(2);                   // its close comes later: already gone, no effect
  BOOST_TEST(a.open() == 3u);
  d = a.arrive(5);
  BOOST_TEST(d.admit);
  BOOST_TEST(*d.evict == 3u);
  BOOST_TEST(a.waiting() == 2u);  // 4, 5
}

// A waiter whose request is in its socket but not read yet (a flood's
// connections accepted in a row before its read ran) is not the one closed:
// the oldest idle waiter is; if every waiter has unread bytes, the oldest.
BOOST_AUTO_TEST_CASE(admission_spares_waiters_with_unread_bytes) {
  struct Row {
    std::set<uint64_t> unread;  // among waiters 1, 2, 3
    uint64_t evicted;
  };
  const Row rows[] = {
      {{}, 1}, {{1}, 2}, {{2}, 1}, {{1, 2}, 3}, {{1, 3}, 2}, {{1, 2, 3}, 1},
  };
  for (const auto& r : rows) {
    Admission a(3);
    a.arrive(1);
    a.arrive(2);
    a.arrive(3);
    auto d = a.arrive(4, [&](uint64_t id) { return r.unread.count(id) > 0; });
    BOOST_TEST(d.admit);
    BOOST_TEST_REQUIRE(d.evict.has_value());
    BOOST_TEST(*d.evict == r.evicted);
    BOOST_TEST(a.open() == 3u);
    BOOST_TEST(a.waiting() == 3u);
  }
}

BOOST_AUTO_TEST_CASE(admission_refuses_when_every_slot_is_answering) {
  Admission a(2);
  a.arrive(1);
  a.arrive(2);
  a.answering(1);
  a.answering(2);
  auto d = a.arrive(3);
  BOOST_TEST(!d.admit);
  BOOST_TEST(!d.evict.has_value());
  BOOST_TEST(a.open() == 2u);
  a.left(3);  // the refused one: unknown, no effect
  a.left(1);
  BOOST_TEST(a.open() == 1u);
  d = a.arrive(4);
  BOOST_TEST(d.admit);
  BOOST_TEST(!d.evict.has_value());
}

BOOST_AUTO_TEST_CASE(admission_a_flood_of_waiters_never_exceeds_the_cap) {
  // 2,000 idle connections in a row: the cap holds, the newest stay.
  Admission a(32);
  size_t evicted = 0;
  for (uint64_t id = 1; id <= 2000; ++id) {
    auto d = a.arrive(id);
    BOOST_TEST_REQUIRE(d.admit);
    if (d.evict) {
      BOOST_TEST(*d.evict == id - 32);
      ++evicted;
    }
    BOOST_TEST_REQUIRE(a.open() <= 32u);
  }
  BOOST_TEST(evicted == 2000u - 32u);
  // A well-behaved client arriving now gets a slot and, once its request is
  // in, keeps it through the next 2,000 idle arrivals.
  a.arrive(5000);
  a.answering(5000);
  for (uint64_t id = 6000; id < 8000; ++id) {
    auto d = a.arrive(id);
    BOOST_TEST_REQUIRE(d.admit);
    BOOST_TEST_REQUIRE(*d.evict != 5000u);
  }
  a.left(5000);
  BOOST_TEST(a.open() == 31u);
}

// A connection that had its answer and waits for its client's close
// (lingering) makes room before any waiter, the oldest first; it counts
// toward the cap until then.
BOOST_AUTO_TEST_CASE(admission_closes_a_lingering_connection_first) {
  Admission a(3);
  a.arrive(1);
  a.arrive(2);
  a.arrive(3);
  a.answering(1);
  a.answering(2);
  a.lingering(2);
  a.lingering(1);
  a.lingering(3);  // still waiting for its request: no effect
  BOOST_TEST(a.open() == 3u);
  BOOST_TEST(a.waiting() == 1u);
  auto d = a.arrive(4);
  BOOST_TEST(d.admit);
  BOOST_TEST_REQUIRE(d.evict.has_value());
  BOOST_TEST(*d.evict == 2u);  // lingering longest, before waiter 3
  d = a.arrive(5);
  BOOST_TEST_REQUIRE(d.evict.has_value());
  BOOST_TEST(*d.evict == 1u);
  d = a.arrive(6);
  BOOST_TEST_REQUIRE(d.evict.has_value());
  BOOST_TEST(*d.evict == 3u);  // then the oldest waiter
  a.answering(4);
  a.lingering(4);
  a.left(4);  // its client closed
  BOOST_TEST(a.open() == 2u);
}
