// cfg::syntax::first_encoding_error as a table: the first byte that keeps a
// file from being UTF-8 text, with its line and column (the loader turns it
// into FILE:LINE:COL; tests/unit/cfg_test.cpp checks that end to end).
#define BOOST_TEST_MODULE cfg_syntax
#include <boost/test/unit_test.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cfg/syntax.h"

using namespace std::string_literals;

BOOST_AUTO_TEST_CASE(first_encoding_error_table) {
  struct Row {
    std::string text;
    int line, column;  // 0: no error
    const char* what;
  };
  const std::vector<Row> rows = {
      {"", 0, 0, ""},
      {"node: a\nproxies: []\n", 0, 0, ""},
      {"\xEF\xBB\xBFnode: a\r\n", 0, 0, ""},                    // BOM and CRLF
      {"node: caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n", 0, 0, ""},  // 2, 3 and 4 bytes
      {"\tkey: v\n", 0, 0, ""},
      {"a\0b"s, 1, 2, "NUL byte"},
      {"ok\nx: \x1b[0m\n", 2, 4, "control character 0x1B"},
      {"x: \x7f", 1, 4, "control character 0x7F"},
      {"x: \xFF\xFE", 1, 4, "invalid UTF-8 byte 0xFF"},
      {"x: \x80", 1, 4, "invalid UTF-8 byte 0x80"},               // a continuation byte first
      {"x: caf\xC3", 1, 7, "invalid UTF-8 byte 0xC3"},           // cut short at the end
      {"x: \xC3(", 1, 4, "invalid UTF-8 sequence starting with 0xC3"},
      {"x: \xC0\xAF", 1, 4, "invalid UTF-8 byte 0xC0"},           // overlong '/'
      {"x: \xE0\x80\xAF", 1, 4, "invalid UTF-8 sequence starting with 0xE0"},  // overlong, 3 bytes
      {"x: \xED\xA0\x80", 1, 4, "invalid UTF-8 sequence starting with 0xED"},  // surrogate
      {"x: \xF4\x90\x80\x80", 1, 4, "invalid UTF-8 sequence starting with 0xF4"},  // above U+10FFFF
      {"\xC3\xA9\xC3\xA9\0"s, 1, 3, "NUL byte"},                // columns count characters
  };
  for (const auto& r : rows) {
    BOOST_TEST_CONTEXT("text of " << r.text.size() << " bytes, expecting '" << r.what << "'") {
      const auto e = cfg::syntax::first_encoding_error(r.text);
      if (r.line == 0) {
        BOOST_TEST(!e.has_value());
      } else {
        BOOST_TEST_REQUIRE(e.has_value());
        BOOST_TEST(e->line == r.line);
        BOOST_TEST(e->column == r.column);
        BOOST_TEST(e->what == r.what);
      }
    }
  }
}
