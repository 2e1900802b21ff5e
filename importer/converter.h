// The converter's parts shared by from_haproxy.cpp and from_keepalived.cpp:
// one Converter gathers the config and the notes of both translations.
// Internal to the importer (importer/convert.h is the interface).
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cfg/config.h"
#include "cfg/load.h"
#include "cfg/syntax.h"
#include "importer/convert.h"

namespace importer::detail {

namespace hp = haproxy;
namespace ka = keepalived;
using namespace std::chrono_literals;
using cfg::duration_text;
using cfg::syntax::is_ipv4;
using cfg::syntax::is_ipv6;

// A name the loader accepts: letters, digits, - _ . @ : (1-64 characters).
std::string safe_name(std::string s);
bool contains_ci(std::string_view hay, std::string_view needle);

class Converter {
 public:
  Converter(const Options& o) : opts_(o) {}

  void haproxy(const hp::Config& h);
  void keepalived(const ka::Config& k);
  Result finish();

 private:
  void note(const std::string& file, int line, std::string text) { notes_.push_back({file, line, std::move(text)}); }
  void hnote(int line, std::string text) { note(opts_.haproxy_file, line, std::move(text)); }
  void knote(int line, std::string text) { note(opts_.keepalived_file, line, std::move(text)); }
  void not_translated(const std::string& file, int line, const std::string& what, const std::string& why) {
    note(file, line, "'" + what + "' not translated: " + why);
  }
  void refuse(const std::string& file, int line, const std::string& what, const std::string& why) {
    refused_.push_back({file, line, "'" + what + "' cannot be translated: " + why});
  }

  // haproxy
  void haproxy_unhandled(const std::vector<Unhandled>& list, bool global);
  std::string haproxy_reason(const std::string& text, bool global) const;
  void proxy(const hp::Section& front, const hp::Section& back, const hp::Config& h);
  bool listen_endpoint(const hp::Bind& b, cfg::Endpoint& out);
  bool server_endpoint(const hp::Server& s, uint16_t listen_port, cfg::Endpoint& out);
  cfg::Check check(const hp::Section& back, const std::vector<hp::Server>& servers);
  const At<Duration>* set_timeout(const hp::Section& s, const std::string& which);
  void client_certificate(const At<std::string>& crt, cfg::TlsCheck& tls);
  // A relative `crt`/`ca-file` PATH as HAProxy reads it: under the global
  // crt-base/ca-base when set, else as is; a note says which.
  std::string under_base(const At<std::string>& path, const char* keyword, const char* base_keyword,
                         const std::optional<At<std::string>>& base, const char* key);
  const hp::Section* global_ = nullptr;  // the haproxy file's global section, if any
  std::set<int> bases_used_;             // lines of the crt-base/ca-base a path was read under

  // keepalived
  std::string keepalived_reason(const std::string& text) const;
  void instance(const ka::Instance& in, const ka::Config& k, std::set<std::string>& used_scripts);

  Options opts_;
  cfg::Config out_;
  std::vector<Note> notes_;
  std::vector<Note> refused_;
};

}  // namespace importer::detail
